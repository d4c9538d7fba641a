"""Optimizers and learning-rate schedules built from plain config dicts.

Schedules step once per optimizer update; ReduceLROnPlateau is the one epoch-level case. An optional linear
warmup scales the learning rate over the first `warmup_steps` updates, in front of any schedule.
"""

from __future__ import annotations

from typing import Any

import torch

from signlip.errors import SignlipError

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("plateau", "cosine", "cosine_warm_restarts", "step", "onecycle", "none")


def build_optimizer(params, name: str, lr: float, weight_decay: float = 0.0, betas=(0.9, 0.999), momentum: float = 0.9,
                    nesterov: bool = False, **_: Any) -> torch.optim.Optimizer:
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas))
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas))
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov)
    raise SignlipError(f"unknown optimizer {name!r} — choose optim= one of {', '.join(OPTIMIZERS)}")


class Schedule:
    """Warmup + one scheduler; `step_update()` after each optimizer step, `step_epoch(metric)` after validation."""

    def __init__(self, optimizer: torch.optim.Optimizer, name: str, steps_per_epoch: int, max_epochs: int,
                 mode: str = "max", warmup_steps: int = 0, **kw: Any):
        self.optimizer = optimizer
        self.name = name
        total = max(1, steps_per_epoch * max_epochs)
        lr = optimizer.param_groups[0]["lr"]
        S = torch.optim.lr_scheduler
        if name == "plateau":
            self.scheduler = S.ReduceLROnPlateau(optimizer, mode=mode, factor=kw.get("factor", 0.5),
                                                 patience=kw.get("patience", 5), min_lr=kw.get("min_lr", 0.0))
        elif name == "cosine":
            self.scheduler = S.CosineAnnealingLR(optimizer, T_max=total, eta_min=kw.get("min_lr", 0.0))
        elif name == "cosine_warm_restarts":
            self.scheduler = S.CosineAnnealingWarmRestarts(
                optimizer, T_0=max(1, int(kw.get("T_0_epochs", 10) * steps_per_epoch)), T_mult=int(kw.get("T_mult", 2)),
                eta_min=lr * kw.get("min_lr_ratio", 0.01))
        elif name == "step":
            self.scheduler = S.StepLR(optimizer, step_size=max(1, int(kw.get("step_epochs", 30) * steps_per_epoch)),
                                      gamma=kw.get("gamma", 0.1))
        elif name == "onecycle":
            self.scheduler = S.OneCycleLR(optimizer, max_lr=lr, total_steps=total, pct_start=kw.get("pct_start", 0.3))
        elif name == "none":
            self.scheduler = None
        else:
            raise SignlipError(f"unknown schedule {name!r} — choose sched= one of {', '.join(SCHEDULES)}")
        self.per_epoch = name == "plateau"
        self.warmup = (S.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup_steps))
                       if warmup_steps > 0 else None)
        self.warmup_steps = warmup_steps
        self.updates = 0

    def step_update(self) -> None:
        self.updates += 1
        if self.warmup is not None and self.updates <= self.warmup_steps:
            self.warmup.step()
        elif self.scheduler is not None and not self.per_epoch:
            self.scheduler.step()

    def step_epoch(self, metric: float | None) -> None:
        if self.per_epoch and metric is not None and (self.warmup is None or self.updates > self.warmup_steps):
            self.scheduler.step(metric)

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates,
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "warmup": self.warmup.state_dict() if self.warmup is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = state["updates"]
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.warmup is not None and state["warmup"] is not None:
            self.warmup.load_state_dict(state["warmup"])
