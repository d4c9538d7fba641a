"""The contract between data modules and the Trainer.

A data module (registered in `signlip.registry.DATASETS`) turns a plain config dict into a `DataBundle`:
split datasets that hand out whole batches as dicts of tensors, plus a `BatchTransform` that runs on the
training device (uint8 → float, augmentation, normalisation). Heavy work (decoding, MediaPipe) belongs in
`prepare`; datasets only index cached arrays.

Batch dict keys: "x" (model input), "y" (int64 labels), "index" (int64 sample index within its split),
optionally "mask" (bool, True = real time step). Shapes: video (B, C, T, H, W), landmarks (B, T, K, 3) or (B, T, F).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

SPLITS = ("train", "val", "test")


class BatchDataset(Protocol):
    """A map-style dataset that can also fetch a whole batch at once (`DataLoader` uses `__getitems__`)."""

    labels: np.ndarray  # (N,) int64 class indices
    groups: np.ndarray  # (N,) speaker / signer ids as strings ("" when unknown)
    paths: list[str]  # (N,) source files, for reports

    def __len__(self) -> int: ...

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]: ...


class BatchTransform(torch.nn.Module):
    """Runs on the device on a whole batch: `forward(batch, training) -> batch`. Identity by default."""

    def forward(self, batch: dict[str, torch.Tensor], training: bool) -> dict[str, torch.Tensor]:  # noqa: ARG002
        return batch


@dataclass
class DataBundle:
    """Everything the Trainer and evaluate need from the data side."""

    classes: list[str]
    splits: dict[str, BatchDataset]
    batch_transform: BatchTransform
    # Plain data stored in every checkpoint: fingerprint of the preprocessing + normalisation statistics.
    preprocessing: dict[str, Any] = field(default_factory=dict)
    # Model constructor kwargs implied by the data (input size, num_classes = the output size), merged over the
    # model config: facts about the data win over config defaults.
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    # `draw_sample(ax, x, mask, title, transform) -> legend`: draws one transformed sample (x without the batch axis,
    # mask (T,) or None) into a matplotlib cell, the way this modality reads (the doctor's picture of what the model
    # sees); returns the figure legend for it. None: the doctor plots the raw values.
    draw_sample: Callable[..., str] | None = None
    # "label": one class per sample (batch "y" (B,)); "glosses": a gloss sequence per sample (batch "y" (B, L) and
    # "y_lengths"; `classes` is then the output vocabulary without the blank, `signlip.data.glosses`).
    target: str = "label"
    unseen: list[str] = field(default_factory=list)  # glosses only val/test hold, encoded after `classes`


class SampleReader(Protocol):
    """Reads one new input (a video, a landmark file) the way a checkpoint's data was prepared — through the very
    functions `signlip prepare` and the data module use — for `signlip predict`. Registered in
    `signlip.registry.READERS` under the preprocessing kind, built as `reader(preprocessing, data_config,
    models_dir=None)` from a checkpoint's contract."""

    suffixes: tuple[str, ...]  # the file kinds it reads (".npy", ".mp4", …)
    transform: BatchTransform  # the checkpoint's evaluation-time batch transform

    # Optional `check(paths)`: a setup problem that would fail every input (a missing model) raised once, up front.

    def read(self, path: str) -> dict[str, torch.Tensor]:
        """One sample as a batch of one in the stored form the dataset hands out ("x", optionally "mask");
        SignlipError naming the problem for an input it cannot use (no face, no hand, wrong layout)."""
        ...


def stack_samples(samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Batches of one → one batch; variable-length samples (those with a "mask") are padded with zeros to the
    longest along time, as the holistic dataset pads its batches. Word boundaries (B, T) go along, all ones for a
    sample without one (a word of unknown length, as in training)."""
    if "mask" not in samples[0]:
        x = torch.cat([s["x"] for s in samples])
        if not any("boundary" in s for s in samples):
            return {"x": x}
        return {"x": x, "boundary": torch.cat([s.get("boundary", torch.ones(1, x.shape[1])) for s in samples])}
    t = max(s["x"].shape[1] for s in samples)
    x = samples[0]["x"].new_zeros((len(samples), t, *samples[0]["x"].shape[2:]))
    mask = torch.zeros((len(samples), t), dtype=torch.bool)
    for i, s in enumerate(samples):
        n = s["x"].shape[1]
        x[i, :n], mask[i, :n] = s["x"][0], s["mask"][0]
    return {"x": x, "mask": mask}


def collate_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`DataLoader` collate for datasets whose `__getitems__` already returns a batch."""
    return batch
