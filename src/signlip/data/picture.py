"""Drawing helpers shared by the data modules' `draw_sample` functions (the doctor's picture of what the model sees).

A data module's `draw_sample(ax, x, mask, title, transform) -> str` draws one sample, as the model gets it, into one
grid cell `ax` and returns the figure's legend for its modality. The helpers here are the parts that several
modalities share: splitting a cell into panels, a point cloud coloured by frame, a feature heat-map.

matplotlib is imported by the caller (the doctor's grid) and here only inside functions, so importing a data module
stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def split_cell(ax: Any, panels: int) -> list[Any]:
    """Replace one grid cell by `panels` side-by-side axes (a sample drawn as points + heat-map uses two)."""
    if panels == 1:
        return [ax]
    fig = ax.figure
    grid = ax.get_subplotspec().subgridspec(1, panels, wspace=0.35)
    ax.remove()
    return [fig.add_subplot(grid[0, i]) for i in range(panels)]


def real_frames(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The real (unpadded) frames of one (T, ...) sample: a prefix mask gives their count."""
    return x[: int(mask.sum())] if mask is not None else x


def draw_points(ax: Any, pts: np.ndarray, title: str, edges: Sequence[tuple[int, int]] | None = None) -> None:
    """(T, K, ≥2) points, coloured by frame (viridis: dark → light = early → late); with `edges` the skeleton at the
    first, middle and last frame, otherwise the path of the points' centroid over time (black)."""
    import matplotlib.pyplot as plt

    ax.set_axis_on()
    t = pts.shape[0]
    colours = plt.cm.viridis(np.linspace(0, 1, max(t, 2)))
    for i in range(t):
        ax.scatter(pts[i, :, 0], pts[i, :, 1], s=2, color=colours[i], linewidths=0)
    if edges is not None and t:
        for i in sorted({0, t // 2, t - 1}):
            for a, b in edges:
                ax.plot(pts[i, [a, b], 0], pts[i, [a, b], 1], color=colours[i], lw=0.7)
    elif t:
        with np.errstate(all="ignore"):
            centre = np.nanmean(pts[..., :2], axis=1)
        ax.plot(centre[:, 0], centre[:, 1], color="k", lw=0.5)
    ax.invert_yaxis()  # image coordinates: y grows downwards
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(title, fontsize=7)
    ax.tick_params(labelsize=5)


def draw_heatmap(ax: Any, x: np.ndarray, title: str, bounds: Sequence[int] = ()) -> None:
    """(T, F) features as an image, time to the right and features downwards, on a symmetric colour scale (99th
    percentile, so that one outlier does not wash out the rest); `bounds` draws lines between feature groups."""
    ax.set_axis_on()
    shown = x.T
    scale = float(np.percentile(np.abs(shown), 99)) if shown.size else 1.0
    ax.imshow(shown, aspect="auto", cmap="coolwarm", vmin=-scale or -1, vmax=scale or 1, interpolation="nearest")
    for b in bounds:
        ax.axhline(b - 0.5, color="k", lw=0.4)
    ax.set_title(title, fontsize=6)
    ax.tick_params(labelsize=5)
