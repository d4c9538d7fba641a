"""How the doctor draws one video clip: a strip of frames spread evenly over the clip, as the model gets them.

`ClipTransform` hands the model float `(C, T, H, W)` clips (gray mouth crops: C = 1; RGB sign video: C = 3),
augmented when training and normalised with the data's mean/std; undoing the normalisation shows the pixels in
[0, 1] as augmented, so a too-dark, washed-out or blank input is visible as such.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

FRAMES = 8  # frames shown per clip
PER_ROW = 4  # the strip wraps after this many frames, so that a cell is not 8 frames wide and a sliver high
ZOOM = 2  # screen pixels per clip pixel: a 64×96 mouth crop shown 1:1 or smaller cannot be read without zooming


def frame_strip(clip: torch.Tensor, transform: Any, n: int = FRAMES, per_row: int = PER_ROW
                ) -> tuple[np.ndarray, np.ndarray]:
    """(C, T, H, W) → ((rows·H, cols·W[, C]) image in [0, 1], the frame indexes shown)."""
    c, t, h, w = clip.shape
    idx = np.unique(np.linspace(0, t - 1, min(n, t)).round().astype(int))
    frames = clip[:, idx].float()  # (C, n, H, W)
    mean, std = getattr(transform, "mean", None), getattr(transform, "std", None)
    if torch.is_tensor(mean) and torch.is_tensor(std) and mean.numel() == c and std.numel() == c:
        frames = frames * std.detach().cpu().view(c, 1, 1, 1) + mean.detach().cpu().view(c, 1, 1, 1)
    else:  # no statistics to undo: stretch to the sample's own range
        lo, hi = frames.min(), frames.max()
        frames = (frames - lo) / max(float(hi - lo), 1e-6)
    frames = frames.clamp(0, 1)
    cols = min(per_row, len(idx))
    rows = math.ceil(len(idx) / cols)
    blank = torch.ones(c, rows * cols - len(idx), h, w)  # white after the last frame
    grid = torch.cat([frames, blank], dim=1).reshape(c, rows, cols, h, w)
    image = grid.permute(1, 3, 2, 4, 0).reshape(rows * h, cols * w, c).numpy()  # (rows·H, cols·W, C)
    return (image[..., 0] if c == 1 else image[..., :3]), idx


def cell_inches(x: torch.Tensor, dpi: float) -> tuple[float, float]:
    """The grid cell (width, height in inches) that shows the strip of clip `x` (C, T, H, W) at `ZOOM` screen
    pixels per pixel, with room for its title: the doctor's grid sizes itself from it."""
    n = min(FRAMES, x.shape[1])
    cols = min(PER_ROW, n)
    rows = math.ceil(n / cols)
    return ZOOM * cols * x.shape[3] / dpi + 0.3, ZOOM * rows * x.shape[2] / dpi + 0.45


def draw_sample(ax: Any, x: torch.Tensor, mask: torch.Tensor | None, title: str, transform: Any) -> str:  # noqa: ARG001
    """One clip `x` (C, T, H, W) into the grid cell `ax` as a strip of frames (cell size: `cell_inches`). With word
    boundaries (its last channel, `ClipTransform`) the word's frames are named in the title."""
    word = ""
    if getattr(transform, "word_boundary", False):
        x, on = x[:-1], np.flatnonzero(x[-1, :, 0, 0].detach().cpu().numpy() > 0.5)
        word = f"\nword frames {on[0]}–{on[-1]}" if len(on) else "\nno word frames"
    image, idx = frame_strip(x, transform)
    ax.set_axis_on()
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    h, w = x.shape[2:]
    for col in range(1, image.shape[1] // w):  # frame borders: neighbouring frames of a still mouth look alike
        ax.axvline(col * w - 0.5, color="tab:red", lw=0.5)
    for row in range(1, image.shape[0] // h):
        ax.axhline(row * h - 0.5, color="tab:red", lw=0.5)
    ax.set_title(f"{title} · frames {', '.join(str(i) for i in idx)}{word}", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    channels = "gray" if x.shape[0] == 1 else "RGB"
    return (f"{min(FRAMES, x.shape[1])} of {x.shape[1]} {channels} frames per clip ({x.shape[2]}×{x.shape[3]}), left "
            f"→ right then top → bottom, pixels as augmented (normalisation undone)")


draw_sample.cell = cell_inches  # type: ignore[attr-defined] — read by signlip.doctor.picture
