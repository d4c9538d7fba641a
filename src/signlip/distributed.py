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


_WAIT_GROUP = None


def _wait_group():
    """A gloo group for waiting on rank 0, with a timeout long enough for a whole preparation (hours of MediaPipe
    for WLASL or PHOENIX): the default process group gives up after 10 (NCCL) to 30 (gloo) minutes."""
    global _WAIT_GROUP
    if _WAIT_GROUP is None:
        from datetime import timedelta

        _WAIT_GROUP = dist.new_group(backend="gloo", timeout=timedelta(days=2))
    return _WAIT_GROUP


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """Rank 0 runs the block first — preparing caches, generating the synthetic data, writing manifests — while the
    other ranks wait; then they run it one after another on the finished files (all reused), with the console quiet,
    so nothing is prepared twice at once and nothing is printed once per rank. If rank 0 fails in the block, the
    others stop with one line pointing at its error. One process: the block as it is."""
    if world_size() == 1:
        yield
        return
    from signlip.errors import SignlipError
    from signlip.run_logger import console

    group, me, n = _wait_group(), rank(), world_size()
    done = torch.zeros(1, dtype=torch.int64)
    if me == 0:
        try:
            yield
            done += 1
        finally:
            dist.broadcast(done, src=0, group=group)  # success or failure: never leave the others waiting
        for _ in range(1, n):  # the others' turns
            dist.barrier(group=group)
        return
    dist.broadcast(done, src=0, group=group)
    if not int(done):
        raise SignlipError("rank 0 stopped while preparing the data (its error is printed above) — fix that and "
                           "start the run again")
    failure: BaseException | None = None
    for turn in range(1, n):
        if turn == me:
            quiet, console.quiet = console.quiet, True
            try:
                yield
            except BaseException as exc:  # noqa: BLE001 - re-raised below, after the remaining turns
                failure = exc
            finally:
                console.quiet = quiet
        dist.barrier(group=group)
    if failure is not None:
        raise failure


def teardown() -> None:
    """Destroy every process group while the interpreter is fully alive. Our own reference to the wait group goes
    first: a gloo group still alive at interpreter exit joins its worker threads during finalization, and that
    aborted a process in 4 of 30 two-process runs here ("terminate called without an active exception", exit -6)."""
    global _WAIT_GROUP
    _WAIT_GROUP = None
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
