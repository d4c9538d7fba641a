"""Clip augmentation on the batch tensor, on the training device: float `(B, C, T, H, W)` in [0, 1].

Every random parameter is drawn once per clip and applied identically to all its frames (a flipped, brighter
or cropped clip stays a consistent video). All ops work on the batch tensor — never a Python loop over frames; the
only loop is one whole-clip flip per flipped clip; the random resized crop is one `F.grid_sample` over
`(B, C·T, H, W)`.

Random numbers come from torch's CPU generator (seeded by `seed_everything`, or the `generator` argument) and are
moved to the device: a handful of scalars per clip, so runs are reproducible whatever the device.

Used by `ClipTransform` (signlip.data.clips.datamodule) with the keys of `data.augment` in the config — a probability
`p_<augmentation>` beside each augmentation's magnitude — e.g. the lip recipe::

    augment_clips(x, p_hflip=0.5, brightness=0.15, p_brightness=0.7, contrast=(0.9, 1.1), p_contrast=0.5)

and for RGB sign video additionally `resized_crop={"scale": (0.6, 1.0), "ratio": (3/4, 4/3)}, p_resized_crop=1.0`
and `saturation=(0.8, 1.2)`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

# ITU-R BT.601 luma weights (the same as OpenCV's RGB→gray), for contrast and saturation on RGB clips.
_LUMA = (0.299, 0.587, 0.114)


def _rand(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=generator).to(device, non_blocking=True)


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return lo + (hi - lo) * _rand(n, generator, device)


def _view(v: torch.Tensor) -> torch.Tensor:
    return v.view(-1, 1, 1, 1, 1)  # (B,) → (B, 1, 1, 1, 1) to broadcast over (B, C, T, H, W)


def _apply(x: torch.Tensor, p: float, factor: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Per clip: with probability p use `factor`, else 1 (no change)."""
    use = _rand(x.shape[0], generator, x.device) < p
    return torch.where(use, factor, torch.ones_like(factor))


def _range(value: float | Sequence[float], name: str, around_one: bool) -> tuple[float, float]:
    """`0.15` → (0.85, 1.15) for multiplicative factors; `(lo, hi)` as given."""
    if isinstance(value, (int, float)):
        v = float(value)
        if v < 0:
            raise ValueError(f"{name} must be >= 0, got {v}")
        return (1 - v, 1 + v) if around_one else (-v, v)
    lo, hi = (float(v) for v in value)
    if lo > hi:
        raise ValueError(f"{name} range must be (low, high), got {value}")
    return lo, hi


def gray(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) → luma (B, 1, T, H, W); gray input is returned as is."""
    if x.shape[1] == 1:
        return x
    w = x.new_tensor(_LUMA).view(1, 3, 1, 1, 1)
    return (x * w).sum(1, keepdim=True)


def random_resized_crop_params(n: int, scale: Sequence[float], ratio: Sequence[float], aspect: float,
                               generator: torch.Generator | None = None) -> torch.Tensor:
    """Per clip (w, h, cx, cy) of a crop in normalised [-1, 1] coordinates: area fraction ~ U(scale), aspect ratio
    (relative to the frame's) log-uniform in `ratio` (torchvision's RandomResizedCrop, without rejection loops: the
    crop is clamped to the frame). Returns (n, 4)."""
    area = scale[0] + (scale[1] - scale[0]) * torch.rand(n, generator=generator)
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * torch.rand(n, generator=generator)
    r = torch.exp(log_r) / aspect  # ratio is W/H in pixels; normalised coordinates remove the frame's aspect
    w = torch.sqrt(area * r).clamp(max=1.0)  # width as a fraction of the frame width
    h = torch.sqrt(area / r).clamp(max=1.0)
    cx = (1 - w) * (2 * torch.rand(n, generator=generator) - 1)  # keep the crop inside the frame
    cy = (1 - h) * (2 * torch.rand(n, generator=generator) - 1)
    return torch.stack([w, h, cx, cy], dim=1)


def resized_crop(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Crop each clip at its (w, h, cx, cy) (normalised, see `random_resized_crop_params`) and resize the crop back
    to (H, W) bilinearly; the same crop for every frame and channel of a clip. x: (B, C, T, H, W)."""
    b, c, t, h, w = x.shape
    p = params.to(x.device, x.dtype)
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = p[:, 0], p[:, 1], p[:, 2], p[:, 3]
    grid = F.affine_grid(theta, [b, c * t, h, w], align_corners=False)  # (B, H, W, 2)
    out = F.grid_sample(x.reshape(b, c * t, h, w), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.view(b, c, t, h, w)


def augment_clips(
    x: torch.Tensor,
    p_hflip: float = 0.0,
    brightness: float | Sequence[float] = 0.0,
    p_brightness: float = 1.0,
    contrast: float | Sequence[float] = 0.0,
    p_contrast: float = 1.0,
    saturation: float | Sequence[float] = 0.0,
    p_saturation: float = 1.0,
    resized_crop: Mapping[str, Sequence[float]] | None = None,
    p_resized_crop: float = 1.0,
    noise_std: float = 0.0,
    generator: torch.Generator | None = None,
    inplace: bool = False,
) -> torch.Tensor:
    """Augment a batch of clips, each clip with its own random parameters shared by all its frames.

    x: float (B, C, T, H, W) in [0, 1], C = 1 (gray) or 3 (RGB). Returns a tensor of the same shape in [0, 1]: a new
    one, or `x` itself modified when `inplace` (for callers that own a freshly converted batch).

    - p_hflip: probability of a horizontal (left-right) flip.
    - brightness: multiply by a factor ~ U(1 − b, 1 + b) (or a (low, high) factor range), with probability
      p_brightness. The lip recipe: 0.15, p 0.7.
    - contrast: blend with the clip's mean luma by a factor ~ U(low, high) (a float c means (1 − c, 1 + c)), with
      probability p_contrast. The lip recipe: (0.9, 1.1), p 0.5. Brightness and contrast are fused into one affine
      pass with a single clamp at the end (torchvision clamps in between; the difference is only at saturation).
    - saturation: RGB only — blend each pixel with its luma by a factor ~ U(low, high), with probability
      p_saturation; gray clips ignore it.
    - resized_crop: None, or {"scale": (0.6, 1.0), "ratio": (3/4, 4/3)} — a random crop of `scale` × the frame area
      with aspect `ratio` (W/H), resized back to (H, W), with probability p_resized_crop.
    - noise_std: Gaussian pixel noise (per pixel and frame — it is the one deliberately per-frame term).
    """
    if x.ndim != 5:
        raise ValueError(f"augment_clips expects (B, C, T, H, W), got shape {tuple(x.shape)}")
    b, device = x.shape[0], x.device
    if resized_crop:
        if set(resized_crop) != {"scale", "ratio"}:
            raise ValueError(f"resized_crop takes scale and ratio, got {', '.join(map(str, resized_crop))}")
        params = random_resized_crop_params(b, resized_crop["scale"], resized_crop["ratio"],
                                            aspect=x.shape[-1] / x.shape[-2], generator=generator)
        use = torch.rand(b, generator=generator) < float(p_resized_crop)
        params[~use] = torch.tensor([1.0, 1.0, 0.0, 0.0])  # identity crop
        x = _crop(x, params)  # a new tensor
    elif not inplace:
        x = x.clone()
    # Brightness (x·b) then contrast ((x − m)·c + m, m the clip's mean luma after brightness) are one affine map per
    # clip, x·(b·c) + m·(1 − c), applied in place over the batch (the transform is memory-bound).
    scale = torch.ones(b, device=device)
    shift = torch.zeros(b, device=device)
    if brightness:
        lo, hi = _range(brightness, "brightness", around_one=True)
        scale = _apply(x, p_brightness, _uniform(b, lo, hi, generator, device), generator)
    if contrast:
        lo, hi = _range(contrast, "contrast", around_one=True)
        factor = _apply(x, p_contrast, _uniform(b, lo, hi, generator, device), generator)
        mean = gray(x).mean(dim=(1, 2, 3, 4)) * scale  # one mean per clip, so every frame gets the same map
        shift = mean * (1 - factor)
        scale = scale * factor
    if brightness or contrast:
        x.mul_(_view(scale)).add_(_view(shift))  # in place: 5× faster on CPU than addcmul's broadcasting kernel
    if p_hflip > 0:
        # Flip only the chosen clips (a flip commutes with the per-clip affine map above); whole-clip copies are
        # ~5× faster on CPU than a gather/scatter over the batch.
        for i in (_rand(b, generator, device) < p_hflip).nonzero().flatten().tolist():
            x[i] = x[i].flip(-1)
    if saturation and x.shape[1] == 3:
        lo, hi = _range(saturation, "saturation", around_one=True)
        factor = _view(_apply(x, p_saturation, _uniform(b, lo, hi, generator, device), generator))
        luma = gray(x)
        x = (x - luma) * factor + luma
    if noise_std > 0:
        x = x + noise_std * torch.randn(x.shape, generator=generator).to(device)
    return x.clamp_(0.0, 1.0)


_crop = resized_crop  # the function; the keyword argument of augment_clips shadows its name
