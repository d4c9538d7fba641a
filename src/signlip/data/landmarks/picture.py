"""How the doctor draws one hand-landmark sample: the points as the model gets them + its input heat-map.

`LandmarkTransform` hands the model standardised `(T, F)` features (F = K·3 for `(T, K, 3)` points); undoing the
standardisation gives back the (augmented) points, which are drawn as a skeleton for a MediaPipe hand (K = 21).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from signlip.data.picture import draw_heatmap, draw_points, real_frames, split_cell

# MediaPipe hand: wrist 0, thumb 1–4, index 5–8, middle 9–12, ring 13–16, pinky 17–20.
HAND_EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
              (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20)]


def points_view(x: torch.Tensor, transform: Any) -> np.ndarray | None:
    """(T, F) model input → (T', K, 3) points (K = F / 3) without the frames that are all 0 (missing or padding),
    undoing a per-feature standardisation the transform holds as `mean`/`std`; None when F is not K·3."""
    f = x.shape[-1]
    if f % 3:
        return None
    x = x[(x != 0).any(1)]
    mean, std = getattr(transform, "mean", None), getattr(transform, "std", None)
    if torch.is_tensor(mean) and torch.is_tensor(std) and mean.numel() == f and std.numel() == f:
        x = x * std.detach().cpu().flatten() + mean.detach().cpu().flatten()
    return x.reshape(x.shape[0], f // 3, 3).numpy()


def draw_sample(ax: Any, x: torch.Tensor, mask: torch.Tensor | None, title: str, transform: Any) -> str:
    """One sample `x` (T, F) or (T, K, 3) into the grid cell `ax`: its points (left) and the model input (right)."""
    x = real_frames(x.float(), mask)
    if x.ndim == 3:  # points handed over as they are
        draw_points(ax, x.numpy(), title, HAND_EDGES if x.shape[1] == 21 else None)
        return "points coloured by frame (dark → light = early → late)"
    points_ax, input_ax = split_cell(ax, 2)
    pts = points_view(x, transform)
    if pts is not None:
        draw_points(points_ax, pts, title, HAND_EDGES if pts.shape[1] == 21 else None)
    else:  # features that are not points: only the heat-map says anything
        points_ax.set_title(title, fontsize=7)
        points_ax.set_axis_off()
    draw_heatmap(input_ax, x.numpy(), f"input {tuple(x.shape)} (T→, F↓)")
    return ("left: landmarks coloured by frame (dark → light = early → late), hand skeleton at the first, middle and "
            "last frame; right: the standardised model input")
