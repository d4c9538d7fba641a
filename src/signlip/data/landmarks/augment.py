"""Batch-tensor augmentations for landmark sequences `(B, T, K, 3)`.

They run on the training device on whole batches (no per-sample Python), each with its own probability
(`p_<augmentation>`), sampled per sequence and constant over its frames. NaN points (missing landmarks) stay NaN.
"""

from __future__ import annotations

import math

import torch


def _chosen(batch: int, p: float, like: torch.Tensor) -> torch.Tensor:
    """(B, 1, 1, 1) float: 1 for the sequences this augmentation applies to."""
    return (torch.rand(batch, 1, 1, 1, device=like.device) < p).to(like.dtype)


def _centre(x: torch.Tensor) -> torch.Tensor:
    """Per-sequence centroid of the x/y coordinates over real points: (B, 1, 1, 2)."""
    return torch.nanmean(x[..., :2].flatten(1, 2), dim=1)[:, None, None, :]


def rotate(x: torch.Tensor, p: float, max_degrees: float) -> torch.Tensor:
    """In-plane rotation about each sequence's centroid by up to ±max_degrees."""
    angle = (torch.rand(x.shape[0], device=x.device) * 2 - 1) * math.radians(max_degrees)
    angle = angle * _chosen(x.shape[0], p, x).flatten()
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    c = _centre(x)
    xy = x[..., :2] - c
    rx = cos * xy[..., 0] - sin * xy[..., 1]
    ry = sin * xy[..., 0] + cos * xy[..., 1]
    return torch.cat([torch.stack([rx, ry], -1) + c, x[..., 2:]], -1)


def scale(x: torch.Tensor, p: float, max_fraction: float) -> torch.Tensor:
    """Uniform scaling about each sequence's centroid by a factor in 1 ± max_fraction."""
    factor = 1 + (torch.rand(x.shape[0], 1, 1, 1, device=x.device) * 2 - 1) * max_fraction
    factor = 1 + (factor - 1) * _chosen(x.shape[0], p, x)
    c = torch.cat([_centre(x), torch.zeros_like(_centre(x)[..., :1])], -1)
    return (x - c) * factor + c


def translate(x: torch.Tensor, p: float, max_shift: float) -> torch.Tensor:
    """Shift x/y by up to ±max_shift (image units)."""
    shift = (torch.rand(x.shape[0], 1, 1, 2, device=x.device) * 2 - 1) * max_shift * _chosen(x.shape[0], p, x)
    return torch.cat([x[..., :2] + shift, x[..., 2:]], -1)


def jitter(x: torch.Tensor, p: float, std: float) -> torch.Tensor:
    """Gaussian noise on every coordinate."""
    return x + torch.randn_like(x) * std * _chosen(x.shape[0], p, x)


def augment_landmarks(x: torch.Tensor, p_rotate: float = 0.0, rotation_degrees: float = 15.0, p_scale: float = 0.0,
                      scale_fraction: float = 0.1, p_shift: float = 0.0, shift: float = 0.05, p_noise: float = 0.0,
                      noise_std: float = 0.005) -> torch.Tensor:
    """Rotation, scaling, translation and noise, each with its own probability (0, the default, leaves it out) and
    magnitude — the keys of `data.augment` (conf/data/landmarks.yaml). x: (B, T, K, 3)."""
    if p_rotate > 0 and rotation_degrees:
        x = rotate(x, p_rotate, rotation_degrees)
    if p_scale > 0 and scale_fraction:
        x = scale(x, p_scale, scale_fraction)
    if p_shift > 0 and shift:
        x = translate(x, p_shift, shift)
    if p_noise > 0 and noise_std:
        x = jitter(x, p_noise, noise_std)
    return x
