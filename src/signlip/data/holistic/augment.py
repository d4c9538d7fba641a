"""Batch augmentations for holistic landmark sequences `(B, T, K, 3)` with a padding mask `(B, T)`.

They run on the training device on whole batches, before motion features are computed, on the normalised preset
points that `holistic.select_normalize` caches (nose at the origin, body-size units) — or on the full 543-point
layout with `holistic_mirror_index()`. Each augmentation has its own probability, drawn per sequence. NaN points
(missing detections) stay NaN; padded frames (mask False) are ignored and come back as NaN.

Rotation, scaling and shift reuse `signlip.data.landmarks.augment`; this module adds shear, horizontal flip with
left/right swapping, temporal resampling and frame masking. `HolisticBatchTransform` chains augmentation and
`motion_features_torch` into the `BatchTransform` the `asl_tcn_transformer` task needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from signlip.data.base import BatchTransform
from signlip.data.holistic.features import DEFAULT_PRESET, anchor_index, motion_features_torch, preset_mirror_index
from signlip.data.landmarks import augment as transforms


def _chosen(batch: int, p: float, device: torch.device) -> torch.Tensor:
    """(B,) bool: the sequences an augmentation applies to."""
    return torch.rand(batch, device=device) < p


def _nan_padding(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask[:, :, None, None], x, torch.full((), torch.nan, dtype=x.dtype, device=x.device))


def flip(x: torch.Tensor, p: float, mirror_index: Sequence[int] | np.ndarray | torch.Tensor,
         centre: float = 0.0) -> torch.Tensor:
    """Horizontal flip: x → 2·centre − x and points permuted by `mirror_index` (left/right hands swap, face and
    pose points take their mirror partner's place). `centre` is 0 for nose-centred points, 0.5 for raw image
    coordinates. An involution: flipping twice gives back the input."""
    perm = torch.as_tensor(np.asarray(mirror_index), dtype=torch.long, device=x.device)
    if perm.numel() != x.shape[2]:
        raise ValueError(f"mirror_index has {perm.numel()} entries for {x.shape[2]} points")
    mirrored = x[:, :, perm].clone()
    mirrored[..., 0] = 2 * centre - mirrored[..., 0]
    sel = _chosen(x.shape[0], p, x.device)[:, None, None, None]
    return torch.where(sel, mirrored, x)


def shear(x: torch.Tensor, p: float, max_shear: float) -> torch.Tensor:
    """x += s_x·y, y += s_y·x about the origin, s ~ U(−max_shear, max_shear) per sequence."""
    b = x.shape[0]
    s = (torch.rand(b, 2, device=x.device, dtype=x.dtype) * 2 - 1) * max_shear
    s = s * _chosen(b, p, x.device)[:, None].to(x.dtype)
    sx, sy = s[:, 0, None, None], s[:, 1, None, None]
    nx = x[..., 0] + sx * x[..., 1]
    ny = x[..., 1] + sy * x[..., 0]
    return torch.cat([torch.stack([nx, ny], -1), x[..., 2:]], -1)


def temporal_resample(x: torch.Tensor, mask: torch.Tensor, p: float, low: float = 0.5, high: float = 1.5,
                      max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Play each chosen sequence faster/slower by a factor in [low, high] (linear interpolation between frames).

    Returns the new `(B, T', K, 3)` and prefix mask `(B, T')`; T' = the longest new length (≤ max_len)."""
    b, _t = mask.shape
    lengths = mask.sum(1).clamp_min(1)  # (B,)
    factor = low + torch.rand(b, device=x.device) * (high - low)
    factor = torch.where(_chosen(b, p, x.device), factor, torch.ones_like(factor))
    new_len = (lengths.to(factor.dtype) * factor).round().long().clamp_min(1)
    new_len = torch.where(factor == 1, lengths, new_len)
    if max_len is not None:
        new_len = new_len.clamp_max(max_len)
    t_out = int(new_len.max())
    j = torch.arange(t_out, device=x.device, dtype=x.dtype)[None]  # (1, T')
    step = (lengths - 1).to(x.dtype) / (new_len - 1).clamp_min(1).to(x.dtype)  # (B,)
    src = (j * step[:, None]).clamp_max((lengths - 1).to(x.dtype)[:, None])  # (B, T')
    i0 = src.floor().long()
    i1 = torch.minimum(i0 + 1, (lengths - 1)[:, None])
    w = (src - i0.to(x.dtype))[:, :, None, None]
    k, c = x.shape[2], x.shape[3]
    g0 = torch.gather(x, 1, i0[:, :, None, None].expand(-1, -1, k, c))
    g1 = torch.gather(x, 1, i1[:, :, None, None].expand(-1, -1, k, c))
    out = torch.where(w == 0, g0, g0 * (1 - w) + g1 * w)  # exact copies where no interpolation is needed
    new_mask = j.long() < new_len[:, None]
    return _nan_padding(out, new_mask), new_mask


def frame_mask(x: torch.Tensor, mask: torch.Tensor, p: float, ratio: float = 0.1) -> torch.Tensor:
    """Mark a random `ratio` of the real frames of each chosen sequence as undetected (all points NaN)."""
    drop = (torch.rand(mask.shape, device=x.device) < ratio) & mask & _chosen(mask.shape[0], p, x.device)[:, None]
    return torch.where(drop[:, :, None, None], torch.full((), torch.nan, dtype=x.dtype, device=x.device), x)


class HolisticAugment(torch.nn.Module):
    """All holistic landmark augmentations, each with a probability `p_<augmentation>` (0 disables it) — the keys
    of `data.augment` (conf/data/holistic.yaml) besides `enabled`.

    forward(x (B, T, K, 3), mask (B, T)) → (x (B, T', K, 3), mask (B, T')). Order: horizontal flip, rotate, scale,
    shear, shift, temporal resample, frame masking. Magnitudes are in normalised units (body size ≈ 1)."""

    def __init__(self, mirror_index: Sequence[int] | np.ndarray | None = None, preset: str | list[int] = DEFAULT_PRESET,
                 p_hflip: float = 0.5, p_rotate: float = 0.5, max_degrees: float = 15.0, p_scale: float = 0.5,
                 scale_fraction: float = 0.15, p_shear: float = 0.3, max_shear: float = 0.15, p_shift: float = 0.5,
                 max_shift: float = 0.1, p_resample: float = 0.5, resample_range: Sequence[float] = (0.5, 1.5),
                 p_frame_mask: float = 0.3, frame_mask_ratio: float = 0.1, max_len: int | None = 384,
                 flip_centre: float = 0.0) -> None:
        super().__init__()
        mirror = preset_mirror_index(preset) if mirror_index is None else np.asarray(mirror_index)
        self.register_buffer("mirror_index", torch.as_tensor(mirror, dtype=torch.long), persistent=False)
        self.p_hflip, self.flip_centre = p_hflip, flip_centre
        self.p_rotate, self.max_degrees = p_rotate, max_degrees
        self.p_scale, self.scale_fraction = p_scale, scale_fraction
        self.p_shear, self.max_shear = p_shear, max_shear
        self.p_shift, self.max_shift = p_shift, max_shift
        self.p_resample, self.resample_range = p_resample, tuple(resample_range)
        self.p_frame_mask, self.frame_mask_ratio = p_frame_mask, frame_mask_ratio
        self.max_len = max_len

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        # x: (B, T, K, 3), mask: (B, T)
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        x = _nan_padding(x, mask)  # padding must not move the centroid the affine transforms use
        if self.p_hflip > 0:
            x = flip(x, self.p_hflip, self.mirror_index, self.flip_centre)
        if self.p_rotate > 0 and self.max_degrees:
            x = transforms.rotate(x, self.p_rotate, self.max_degrees)
        if self.p_scale > 0 and self.scale_fraction:
            x = transforms.scale(x, self.p_scale, self.scale_fraction)
        if self.p_shear > 0 and self.max_shear:
            x = shear(x, self.p_shear, self.max_shear)
        if self.p_shift > 0 and self.max_shift:
            x = transforms.translate(x, self.p_shift, self.max_shift)
        if self.p_resample > 0:
            x, mask = temporal_resample(x, mask, self.p_resample, *self.resample_range, max_len=self.max_len)
        if self.p_frame_mask > 0 and self.frame_mask_ratio > 0:
            x = frame_mask(x, mask, self.p_frame_mask, self.frame_mask_ratio)
        return x, mask


class HolisticBatchTransform(BatchTransform):
    """Batch transform of the holistic task: batch["x"] (B, T, K, 3) normalised preset points (NaN = missing)
    + batch["mask"] → augment (training only) → batch["x"] (B, T', K·12) motion features, batch["mask"] (B, T')."""

    def __init__(self, preset: str | list[int] = DEFAULT_PRESET, augment: dict[str, Any] | None = None,
                 max_len: int | None = 384) -> None:
        """`augment`: the arguments of `HolisticAugment` (None: no augmentation); `max_len` caps resampled
        sequences."""
        super().__init__()
        self.augment = HolisticAugment(preset=preset, max_len=max_len, **augment) if augment is not None else None
        self.register_buffer("anchors", torch.as_tensor(anchor_index(preset)), persistent=False)

    def forward(self, batch: dict[str, torch.Tensor], training: bool) -> dict[str, torch.Tensor]:
        x, mask = batch["x"], batch.get("mask")
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        x = x.float()
        if training and self.augment is not None:
            x, mask = self.augment(x, mask)
        out = dict(batch)
        out["x"] = motion_features_torch(x, mask, self.anchors)  # (B, T', K·12)
        out["mask"] = mask
        return out
