"""Small measuring helpers shared by the benchmark scripts under scripts/."""

from __future__ import annotations

import statistics
import time

import torch


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
