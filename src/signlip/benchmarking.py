"""Small measuring helpers shared by the benchmark scripts under scripts/."""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F


def latency_ms(model: torch.nn.Module, x: torch.Tensor, runs: int = 100, warmup: int = 10) -> float:
    """Median wall time of one eval-mode forward pass, in milliseconds."""
    model.eval()
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        for _ in range(runs):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def bare_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
              mask: torch.Tensor | None = None, label_smoothing: float = 0.0, clip: float = 1.0) -> None:
    """The minimal training step the Trainer is measured against: forward, loss, backward, clip, optimizer step."""
    loss = F.cross_entropy(model(x, mask), y, label_smoothing=label_smoothing)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
