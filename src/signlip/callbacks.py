"""Small stateful helpers the Trainer calls explicitly: early stopping and the progress broadcast to models."""

from __future__ import annotations

import math
from typing import Any

from torch import nn


class EarlyStopping:
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs — and not before `min_updates`
    optimizer updates: on a small train split an epoch can be a single update, and ten epochs of patience would
    then stop a run that has barely started (measured: 4 classes × 8 samples, batch 32 → stopped after ~20 updates
    at test accuracy 0.60, where 120+ updates reached 0.875)."""

    def __init__(self, mode: str = "max", patience: int = 10, min_delta: float = 0.0, enabled: bool = True,
                 min_updates: int = 0):
        self.mode, self.patience, self.min_delta, self.enabled = mode, patience, min_delta, enabled
        self.min_updates = min_updates
        self.best = -math.inf if mode == "max" else math.inf
        self.best_epoch = -1
        self.bad_epochs = 0
        self.updates = 0  # optimizer updates done when the last value came in

    def improved(self, value: float) -> bool:
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def update(self, value: float, epoch: int, updates: int = 0) -> bool:
        """Record this epoch's value (after `updates` optimizer updates); return True when it is the new best."""
        self.updates = updates
        if self.improved(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.enabled and self.bad_epochs >= self.patience and self.updates >= self.min_updates

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]
        self.updates = state.get("updates", 0)  # checkpoints written before min_updates existed


def broadcast_progress(model: nn.Module, epoch: int, step: int) -> None:
    """Tell every submodule that defines `set_progress(epoch, step)` where training is (e.g. dropout schedules).

    Modules must derive their state from (epoch, step) alone, so that a resumed run behaves identically.
    """
    for module in model.modules():
        hook = getattr(module, "set_progress", None)
        if callable(hook):
            hook(epoch=epoch, step=step)
