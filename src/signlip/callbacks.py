"""Small stateful helpers the Trainer calls explicitly: early stopping and the progress broadcast to models."""

from __future__ import annotations

import math
from typing import Any

from torch import nn


class EarlyStopping:
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs."""

    def __init__(self, mode: str = "max", patience: int = 10, min_delta: float = 0.0, enabled: bool = True):
        self.mode, self.patience, self.min_delta, self.enabled = mode, patience, min_delta, enabled
        self.best = -math.inf if mode == "max" else math.inf
        self.best_epoch = -1
        self.bad_epochs = 0

    def improved(self, value: float) -> bool:
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def update(self, value: float, epoch: int) -> bool:
        """Record this epoch's value; return True when it is the new best."""
        if self.improved(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.enabled and self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]


def broadcast_progress(model: nn.Module, epoch: int, step: int) -> None:
    """Tell every submodule that defines `set_progress(epoch, step)` where training is (e.g. dropout schedules).

    Modules must derive their state from (epoch, step) alone, so that a resumed run behaves identically.
    """
    for module in model.modules():
        hook = getattr(module, "set_progress", None)
        if callable(hook):
            hook(epoch=epoch, step=step)


CHANCE_CAUSES = ("labels not aligned with inputs (shuffled or mis-joined manifest)", "inputs constant, all-NaN or "
                 "wrongly normalised", "frames or landmarks in the wrong order or layout", "learning rate far too "
                 "high or too low", "val classes or speakers unlike train (leakage or a broken split)")


class ChanceAlarm:
    """Detect a run that learns nothing useful: validation accuracy near chance while the training loss falls,
    or predictions collapsed onto one class. Fires once; the Trainer reports it and may stop."""

    def __init__(self, num_classes: int, after_epochs: int = 5, margin: float = 0.05, collapse_fraction: float = 0.9,
                 enabled: bool = True):
        self.chance = 1.0 / num_classes
        self.num_classes = num_classes
        self.after_epochs, self.margin, self.collapse_fraction, self.enabled = (
            after_epochs, margin, collapse_fraction, enabled)
        self.fired: str | None = None

    def check(self, epoch: int, val_accuracy: float, n_val: int, predicted_counts, true_counts,
              train_losses: list[float]) -> str | None:
        """Return the alarm message the first time the run looks stuck, else None."""
        if not self.enabled or self.fired or epoch < self.after_epochs or self.num_classes < 2:
            return None
        # Within the margin, or within two standard errors of chance on a small validation set.
        band = max(self.margin, 2 * math.sqrt(self.chance * (1 - self.chance) / max(n_val, 1)))
        loss_falls = len(train_losses) >= 2 and train_losses[-1] < 0.9 * train_losses[0]
        top_share = max(predicted_counts) / max(sum(predicted_counts), 1)
        true_share = max(true_counts) / max(sum(true_counts), 1)
        if val_accuracy <= self.chance + band and loss_falls:
            self.fired = (f"validation accuracy {val_accuracy:.3f} is still at chance ({self.chance:.3f} ± {band:.3f}) "
                          f"after {epoch} epochs while the training loss fell from {train_losses[0]:.3f} to "
                          f"{train_losses[-1]:.3f}")
        elif top_share >= self.collapse_fraction and top_share > true_share + 0.2:
            self.fired = (f"predictions collapsed onto one class: {top_share:.0%} of validation predictions are the "
                          f"same class after {epoch} epochs")
        return self.fired

    def state_dict(self) -> dict[str, Any]:
        return {"fired": self.fired}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.fired = state.get("fired")
