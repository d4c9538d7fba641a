"""How the doctor draws one holistic sample: the preset points as the model gets them + the motion-feature heat-map.

`HolisticBatchTransform` hands the model `(T, K·12)` motion features: four groups of K·3 (position, velocity,
acceleration, relative motion; see `signlip.data.holistic.features`). The first group is the (augmented) normalised
points themselves, nose-relative in body-size units, with missing points set to 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from signlip.data.holistic.features import N_MOTION_GROUPS
from signlip.data.picture import draw_heatmap, draw_points, real_frames, split_cell


def draw_sample(ax: Any, x: torch.Tensor, mask: torch.Tensor | None, title: str, transform: Any) -> str:  # noqa: ARG001
    """One sample `x` (T, K·12) into the grid cell `ax`: its points + centroid path (left), the features (right)."""
    x = real_frames(x.float(), mask)
    points_ax, input_ax = split_cell(ax, 2)
    f = x.shape[-1]
    k = f // (3 * N_MOTION_GROUPS) if f % (3 * N_MOTION_GROUPS) == 0 else 0
    if k:
        pts = x[:, : k * 3].reshape(-1, k, 3).numpy().copy()
        pts[(pts == 0).all(-1)] = np.nan  # missing points became exactly 0: leave them out, not at the origin
        draw_points(points_ax, pts, title)
    else:
        points_ax.set_title(title, fontsize=7)
        points_ax.set_axis_off()
    group = k * 3 if k else 0
    draw_heatmap(input_ax, x.numpy(), f"input {tuple(x.shape)} (T→, F↓)",
                 bounds=[group * g for g in range(1, N_MOTION_GROUPS)] if group else ())
    return (f"left: the {k} normalised points coloured by frame (dark → light = early → late), black: the path of "
            f"their centroid; right: the motion features, top to bottom position | velocity | acceleration | "
            f"relative motion")
