"""The doctor's picture of what the model sees: a grid of training samples per class, after preprocessing *and*
augmentation (the bundle's `batch_transform(training=True)`), labelled with the class the model is trained with.

This module chooses the samples, titles them, lays out and saves the grid; how one sample is drawn is the data
module's business (`DataBundle.draw_sample`: a skeleton for hand landmarks, points + motion features for holistic
landmarks, a frame strip for clips), so the picture reads the way its modality does.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from signlip.data.base import BatchTransform, DataBundle
from signlip.doctor.check import Check

CELL = (4.2, 2.1)  # inches per sample: room for two panels (points + heat-map); a draw function may size its own
DPI = 80


def draw_values(ax: Any, x: torch.Tensor, mask: torch.Tensor | None, title: str, transform: Any) -> str:  # noqa: ARG001
    """The fallback for data modules that draw nothing of their own: the sample's values in order."""
    ax.set_axis_on()
    ax.plot(x.flatten().float().numpy(), lw=0.5)
    ax.set_title(title, fontsize=7)
    ax.tick_params(labelsize=5)
    return "the model input's values in memory order"


def pick_samples(labels: np.ndarray, n_classes: int, per_class: int, max_classes: int, seed: int
                 ) -> tuple[np.ndarray, list[int]]:
    """(classes shown: up to `max_classes` spread over the class list, the training rows drawn: up to `per_class`
    of each, at random)."""
    shown = np.unique(np.linspace(0, n_classes - 1, min(max_classes, n_classes)).round().astype(int))
    rng = np.random.default_rng(seed)
    picks: list[int] = []
    for c in shown:
        rows = np.flatnonzero(labels == c)
        picks += [int(i) for i in rng.choice(rows, size=min(per_class, len(rows)), replace=False)]
    return shown, picks


def picture(data: DataBundle, transform: BatchTransform, device: torch.device, out: Path, cfg: dict[str, Any],
            seed: int) -> Check:
    """Draw the grid (one row per class shown, `cfg["per_class"]` samples each) into `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = data.splits["train"]
    classes = data.classes
    shown, picks = pick_samples(ds.labels, len(classes), cfg["per_class"], cfg["max_classes"], seed)
    torch.manual_seed(seed)  # the same augmentation draws on every run
    raw = ds.__getitems__(picks)
    batch = transform({k: v.to(device) for k, v in raw.items()}, training=True)
    x = batch["x"].detach().float().cpu()
    mask = batch.get("mask")
    mask = mask.cpu().bool() if mask is not None and mask.shape == x.shape[:2] else None  # (B, T) prefix masks only
    draw = data.draw_sample or draw_values
    cols = cfg["per_class"]
    # A modality that must be seen at its own resolution (video frames) says how big its cell is: `draw.cell`.
    cell = draw.cell(x[0], DPI) if callable(getattr(draw, "cell", None)) and len(x) else CELL
    # Constrained layout makes room for the (wrapped) title and handles the cells a data module splits into panels.
    fig, axes = plt.subplots(len(shown), cols, figsize=(cell[0] * cols, cell[1] * len(shown)), squeeze=False,
                             layout="constrained")
    for ax in axes.flat:
        ax.set_axis_off()
    slot: dict[int, int] = defaultdict(int)
    row_of = {int(c): r for r, c in enumerate(shown)}
    legend = ""
    for j, sample in enumerate(picks):
        label = int(batch["y"][j])
        r = row_of.get(label, 0)
        col = slot[r]
        slot[r] += 1
        legend = draw(axes[r, col], x[j], mask[j] if mask is not None else None,
                      f"{classes[label]} (y={label}) #{sample}", transform)
    head = (f"what the model sees: train split after preprocessing + augmentation ({len(shown)} of {len(classes)} "
            f"classes); {legend}")
    # Characters across the figure at this font size (≈ 14 per inch at 8 pt and 80 dpi, with a margin): the title
    # wraps inside the figure instead of running off its edges.
    width = max(40, int(cell[0] * cols * 14))
    fig.suptitle("\n".join(textwrap.wrap(head, width)), fontsize=8)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return Check("picture", "what the model sees", "info", f"{len(picks)} samples of {len(shown)} classes → {out}",
                 {"path": str(out)})
