"""DataLoaders over `BatchDataset`s: seeded per-epoch order (so resume replays the same order), DDP sharding,
an optional class-stratified batch sampler, length-bucketed batches for whole sentences, deterministic worker
seeding."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler, SequentialSampler

from signlip import distributed as dist
from signlip.data.base import DataBundle, collate_batch
from signlip.errors import SignlipError


class EpochShuffleSampler(Sampler[int]):
    """A permutation that depends only on (seed, epoch): an interrupted run replays the same order."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


class StratifiedBatchSampler(Sampler[list[int]]):
    """Batches that mix classes evenly: classes are interleaved round-robin from per-class shuffled queues."""

    def __init__(self, labels: np.ndarray, batch_size: int, seed: int):
        self.labels, self.batch_size, self.seed, self.epoch = np.asarray(labels), batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng(self.seed * 100_003 + self.epoch)
        queues = [rng.permutation(np.flatnonzero(self.labels == c)).tolist() for c in np.unique(self.labels)]
        order: list[int] = []
        while any(queues):
            for c in rng.permutation(len(queues)):
                if queues[c]:
                    order.append(queues[c].pop())
        for start in range(0, len(order), self.batch_size):
            yield order[start:start + self.batch_size]

    def __len__(self) -> int:
        return (len(self.labels) + self.batch_size - 1) // self.batch_size


class LengthBucketSampler(Sampler[list[int]]):
    """Batches of similar length (continuous signing keeps whole sentences, 2–6 signs long: random batches would be
    half padding). Per (seed, epoch): shuffle, cut into pools of 50 batches, sort each pool by length, batch it, and
    shuffle the batches. Under DDP each rank takes every world-th batch (the list is padded with repeats to a
    multiple of the world size, so every rank steps equally often)."""

    POOL_BATCHES = 50

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, rank: int = 0, world: int = 1,
                 shuffle: bool = True):
        self.lengths, self.batch_size, self.seed, self.epoch = np.asarray(lengths), batch_size, seed, 0
        self.rank, self.world, self.shuffle = rank, world, shuffle

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        if not self.shuffle:  # evaluation: one fixed order, shortest first (a bidirectional model sees little padding)
            order = np.argsort(self.lengths, kind="stable")
            batches = [order[i:i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)]
            return batches  # (single process: under DDP evaluation keeps its DistributedSampler)
        rng = np.random.default_rng(self.seed * 100_003 + self.epoch)
        order = rng.permutation(len(self.lengths))
        pool = self.batch_size * self.POOL_BATCHES
        batches = []
        for start in range(0, len(order), pool):
            chunk = order[start:start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i:i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size)]
        batches = [batches[i] for i in rng.permutation(len(batches))]
        while len(batches) % self.world:
            batches.append(batches[0])  # a repeat: every rank steps equally often
        return batches[self.rank::self.world]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        n = -(-len(self.lengths) // self.batch_size)
        return -(-n // self.world)


def _seed_worker(worker_id: int) -> None:
    # Each worker's numpy/random seed follows torch's per-worker seed (itself derived from the loader's generator).
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    import random

    random.seed(seed)


def make_loaders(data: DataBundle, batch_size: int, eval_batch_size: int | None = None, num_workers: int = 0,
                 seed: int = 0, stratified: bool = False, pin_memory: bool = False) -> dict[str, DataLoader]:
    """Loaders for every split in the bundle. Under DDP each rank gets its shard."""
    eval_batch_size = eval_batch_size or batch_size
    loaders = {}
    common = {"num_workers": num_workers, "collate_fn": collate_batch, "pin_memory": pin_memory,
              "worker_init_fn": _seed_worker if num_workers else None,
              "generator": torch.Generator().manual_seed(seed), "persistent_workers": num_workers > 0}
    for split, ds in data.splits.items():
        if len(ds) == 0:
            raise SignlipError(f"the {split} split is empty — add samples to it")
        train = split == "train"
        if data.target == "glosses" and hasattr(ds, "lengths") and (train or dist.world_size() == 1):
            # Whole sentences: batches of similar length. Evaluation under DDP keeps its DistributedSampler.
            sampler = LengthBucketSampler(ds.lengths, batch_size if train else eval_batch_size, seed, dist.rank(),
                                          dist.world_size(), shuffle=train)
            loaders[split] = DataLoader(ds, batch_sampler=sampler, **common)
            continue
        if train and stratified:
            if dist.world_size() > 1:
                raise SignlipError("data.stratified=true is not supported under torchrun — use data.stratified=false")
            loaders[split] = DataLoader(ds, batch_sampler=StratifiedBatchSampler(ds.labels, batch_size, seed), **common)
            continue
        if dist.world_size() > 1:
            sampler = DistributedSampler(ds, shuffle=train, seed=seed, drop_last=False)
        else:
            sampler = EpochShuffleSampler(len(ds), seed) if train else SequentialSampler(ds)
        loaders[split] = DataLoader(ds, batch_size=batch_size if train else eval_batch_size, sampler=sampler, **common)
    return loaders
