"""Automatic batch size for CUDA: the largest batch that survives a full training step, found by backing off.

    size = find_batch_size(model, objective, make_batch, device, start=256)

Tries `start`, and on `torch.cuda.OutOfMemoryError` halves the size (frees the cache, tries again) until a
training step — forward through the objective, backward — fits; bisects `refine_steps` times between the size that
fitted and the one that did not; then keeps `headroom` of it (default 0.9, rounded down to a multiple of 8 from 16
on) because the allocator fragments over a run. A `start` that fits at once is returned unchanged. The model's
weights and gradients are left as they were: the probe runs under a saved state and zeroes the gradients it made.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from signlip.errors import SignlipError


def _is_oom(exc: BaseException) -> bool:
    # torch.cuda.OutOfMemoryError exists from torch 1.13; older builds raise RuntimeError("CUDA out of memory").
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(exc, oom)) or "out of memory" in str(exc).lower()


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def try_step(model: nn.Module, objective: Callable[[nn.Module, dict[str, torch.Tensor]], dict[str, torch.Tensor]],
             batch: dict[str, torch.Tensor], amp_dtype: torch.dtype | None = None) -> None:
    """One forward + backward of `objective(model, batch)` (what one training step allocates)."""
    device_type = batch["x"].device.type
    with torch.autocast(device_type, dtype=amp_dtype, enabled=amp_dtype is not None):
        loss = objective(model, batch)["loss"]
    loss.backward()


def find_batch_size(model: nn.Module, objective: Callable[[nn.Module, dict[str, torch.Tensor]], dict[str, Any]],
                    make_batch: Callable[[int], dict[str, torch.Tensor]], device: torch.device | str,
                    start: int = 256, minimum: int = 1, headroom: float = 0.9,
                    amp_dtype: torch.dtype | None = None, refine_steps: int = 3,
                    report: Callable[[str], None] | None = print) -> int:
    """Largest batch size ≤ `start` for which one training step does not run out of device memory.

    make_batch(bs) must return a batch dict on `device` as the training loop sees it (after the batch transform,
    worst case: the longest sequences). Returns the chosen size (≥ `minimum`), reported through `report`.
    SignlipError when even `minimum` does not fit."""
    device = torch.device(device)
    if start < minimum or minimum < 1:
        raise ValueError(f"need 1 ≤ minimum ≤ start, got minimum={minimum}, start={start}")
    was_training = model.training
    state = copy.deepcopy(model.state_dict())  # BatchNorm running statistics change in a training forward
    model.train()
    failed: list[int] = []

    def fits(bs: int) -> bool:
        try:
            try_step(model, objective, make_batch(bs), amp_dtype)
            return True
        except Exception as exc:
            if not _is_oom(exc):
                raise
            failed.append(bs)
            return False
        finally:
            model.zero_grad(set_to_none=True)
            _free(device)

    try:
        bs = start
        while not fits(bs):  # halve until one step fits
            if bs <= minimum:
                raise SignlipError(f"even batch size {minimum} runs out of memory on {device} — use a smaller "
                                   f"model, shorter sequences (data.max_len) or trainer.precision=bf16")
            bs = max(minimum, bs // 2)
        if failed:  # the limit lies in [bs, 2·bs): bisect a few times
            low, high = bs, min(failed)
            for _ in range(refine_steps):
                if high - low <= 1:
                    break
                mid = (low + high) // 2
                low, high = (mid, high) if fits(mid) else (low, mid)
            bs = low
    finally:
        model.load_state_dict(state)
        model.train(was_training)
    chosen = bs
    if failed and headroom < 1:  # right at the limit: keep a margin for fragmentation and longer batches
        chosen = max(minimum, int(bs * headroom))
        if chosen >= 16:
            chosen -= chosen % 8
    if report is not None:
        backed = f" (out of memory at {', '.join(map(str, failed))})" if failed else ""
        report(f"batch size finder: {chosen} on {device}{backed}")
    return chosen


def worst_case_batches(data, device: torch.device | str) -> Callable[[int], dict[str, torch.Tensor]]:
    """make_batch(bs) for `find_batch_size` from a DataBundle: the longest training samples (by their `lengths`
    when the dataset has them), repeated to bs, moved to `device` and passed through the training batch transform
    (augmentation included, which may lengthen sequences)."""
    import numpy as np

    train = data.splits["train"]
    lengths = getattr(train, "lengths", None)
    order = np.argsort(-np.asarray(lengths), kind="stable") if lengths is not None else np.arange(len(train))
    transform = data.batch_transform.to(device)

    def make_batch(bs: int) -> dict[str, torch.Tensor]:
        idx = [int(order[i % len(order)]) for i in range(bs)]
        batch = {k: v.to(device) for k, v in train.__getitems__(idx).items()}
        return transform(batch, training=True)

    return make_batch


def auto_batch_size(model: nn.Module, objective, data, device: torch.device | str, amp_dtype: torch.dtype | None,
                    start: int = 256, fallback: int = 32, report: Callable[[str], None] | None = print) -> int:
    """`data.batch_size=auto`: on CUDA the finder's choice for the worst-case batch of `data`; elsewhere
    `fallback` (host memory is not the limit there, and larger batches do not run faster on a CPU)."""
    device = torch.device(device)
    if device.type != "cuda":
        if report is not None:
            report(f"data.batch_size=auto: {fallback} on {device} (the finder runs on CUDA devices only)")
        return fallback
    model.to(device)
    return find_batch_size(model, objective, worst_case_batches(data, device), device, start=start,
                           amp_dtype=amp_dtype, report=report)
