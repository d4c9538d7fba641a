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
