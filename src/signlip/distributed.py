"""torch.distributed helpers for runs under `torchrun` (DDP); a single process needs none of this."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device) -> None:
    """Join the process group torchrun prepared (NCCL on CUDA, gloo on CPU)."""
    if launched_by_torchrun() and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """Rank 0 runs the block first — preparing caches, generating the synthetic data, writing manifests — while the
    other ranks wait; then they run it on the finished files (all reused), with the console quiet, so nothing is
    prepared twice at once and nothing is printed once per rank. One process: the block as it is."""
    if world_size() == 1:
        yield
        return
    if not is_main():
        dist.barrier()  # until rank 0 has finished the block (or failed in it: then the others fail on their own)
        from signlip.run_logger import console

        quiet, console.quiet = console.quiet, True
        try:
            yield
        finally:
            console.quiet = quiet
        return
    try:
        yield
    finally:
        dist.barrier()


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_gather_cat(t: torch.Tensor) -> torch.Tensor:
    """Concatenate equally-sized tensors from all ranks along dim 0."""
    if world_size() == 1:
        return t
    parts = [torch.empty_like(t) for _ in range(world_size())]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts)


def gather_samples(index: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per-sample tensors from every rank, each sample once, in dataset order: (index, *tensors).

    DistributedSampler pads ranks to equal length with repeated samples; they are dropped by their index."""
    index = all_gather_cat(index)
    tensors = tuple(all_gather_cat(t) for t in tensors)
    order = torch.argsort(index)
    keep = torch.ones_like(order, dtype=torch.bool)
    keep[1:] = index[order][1:] != index[order][:-1]
    return (index[order][keep], *(t[order][keep] for t in tensors))
