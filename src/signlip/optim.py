"""Optimizers and learning-rate schedules built from plain config dicts.

One function per optimizer and per schedule, each taking exactly the keys of its conf/optim/<name>.yaml or
conf/sched/<name>.yaml and no defaults of its own: the YAML is the one place a default lives, and a key the function
does not know (or one it lacks) is an error, never silently ignored.

Schedules step once per optimizer update; ReduceLROnPlateau is the one epoch-level case. An optional linear
warmup scales the learning rate over the first `warmup_steps` updates, in front of any schedule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from signlip.errors import SignlipError

Params = Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]]
S = torch.optim.lr_scheduler


# --- optimizers (conf/optim) -------------------------------------------------------------------------------------
def adam(params: Params, *, lr: float, weight_decay: float, betas: Sequence[float]) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, betas=(betas[0], betas[1]))


def adamw(params: Params, *, lr: float, weight_decay: float, betas: Sequence[float]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=(betas[0], betas[1]))


def sgd(params: Params, *, lr: float, weight_decay: float, momentum: float, nesterov: bool) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov)


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {"adam": adam, "adamw": adamw, "sgd": sgd}


def build_optimizer(params: Params, name: str, **settings: Any) -> torch.optim.Optimizer:
    """The optimizer `name` over `params`; `settings` are the other keys of its `optim` group — exactly the
    arguments of `adam`, `adamw` or `sgd` (a missing or unknown one is a TypeError naming it)."""
    if name not in OPTIMIZERS:
        raise SignlipError(f"unknown optimizer {name!r} — choose optim= one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](params, **settings)


# --- schedules (conf/sched) --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Steps:
    """What a schedule is fitted to: optimizer updates per epoch and in the whole run, the monitor's mode."""

    per_epoch: int
    total: int
    mode: str


def plateau(optimizer: torch.optim.Optimizer, steps: Steps, *, factor: float, patience: int,
            min_lr: float) -> S.LRScheduler:
    """ReduceLROnPlateau on the monitored metric, stepped once per epoch."""
    return S.ReduceLROnPlateau(optimizer, mode=steps.mode, factor=factor, patience=patience, min_lr=min_lr)


def cosine(optimizer: torch.optim.Optimizer, steps: Steps, *, min_lr: float) -> S.LRScheduler:
    """Cosine decay over all optimizer updates."""
    return S.CosineAnnealingLR(optimizer, T_max=steps.total, eta_min=min_lr)


def cosine_warm_restarts(optimizer: torch.optim.Optimizer, steps: Steps, *, T_0_epochs: float, T_mult: int,
                         min_lr_ratio: float) -> S.LRScheduler:
    """Cosine with warm restarts: the first cycle lasts T_0_epochs, each next one T_mult times longer."""
    lr = optimizer.param_groups[0]["lr"]
    return S.CosineAnnealingWarmRestarts(optimizer, T_0=max(1, int(T_0_epochs * steps.per_epoch)), T_mult=int(T_mult),
                                         eta_min=lr * min_lr_ratio)


def step(optimizer: torch.optim.Optimizer, steps: Steps, *, step_epochs: float, gamma: float) -> S.LRScheduler:
    """Multiply the learning rate by gamma every step_epochs epochs."""
    return S.StepLR(optimizer, step_size=max(1, int(step_epochs * steps.per_epoch)), gamma=gamma)


def onecycle(optimizer: torch.optim.Optimizer, steps: Steps, *, pct_start: float) -> S.LRScheduler:
    """The one-cycle policy, peaking at the optimizer's learning rate."""
    return S.OneCycleLR(optimizer, max_lr=optimizer.param_groups[0]["lr"], total_steps=steps.total,
                        pct_start=pct_start)


def none(optimizer: torch.optim.Optimizer, steps: Steps) -> None:  # noqa: ARG001
    """A constant learning rate (after the optional warmup)."""
    return None


SCHEDULES: dict[str, Callable[..., S.LRScheduler | None]] = {
    "plateau": plateau, "cosine": cosine, "cosine_warm_restarts": cosine_warm_restarts, "step": step,
    "onecycle": onecycle, "none": none}


class Schedule:
    """Warmup + one scheduler; `step_update()` after each optimizer step, `step_epoch(metric)` after validation.

    `params` are the keys of the `sched` group besides `name` and `warmup_steps` — exactly the keyword arguments
    of the schedule's function above (`plateau`, `cosine`, ...)."""

    def __init__(self, optimizer: torch.optim.Optimizer, name: str, steps_per_epoch: int, max_epochs: int,
                 mode: str, warmup_steps: int, monitor: str | None = None, hold_updates: int = 0, **params: Any):
        """`monitor`/`mode`: the metric an epoch-level schedule (plateau) steps on and its direction; None: the
        Trainer's own monitor (then `mode` is the trainer's). `hold_updates`: an epoch-level schedule sees no metric
        before this many updates (`trainer.small_data.min_updates`), so its patience, counted in epochs, cannot
        halve the lr of a small-data run every few updates."""
        if name not in SCHEDULES:
            raise SignlipError(f"unknown schedule {name!r} — choose sched= one of {', '.join(SCHEDULES)}")
        self.optimizer = optimizer
        self.name = name
        self.monitor = monitor
        steps = Steps(per_epoch=steps_per_epoch, total=max(1, steps_per_epoch * max_epochs), mode=mode)
        self.scheduler = SCHEDULES[name](optimizer, steps, **params)
        self.per_epoch = name == "plateau"
        self.warmup = (S.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup_steps))
                       if warmup_steps > 0 else None)
        self.warmup_steps = warmup_steps
        self.hold_updates = hold_updates
        self.updates = 0

    def step_update(self) -> None:
        self.updates += 1
        if self.warmup is not None and self.updates <= self.warmup_steps:
            self.warmup.step()
        elif self.scheduler is not None and not self.per_epoch:
            self.scheduler.step()

    def step_epoch(self, metric: float | None) -> None:
        if (self.per_epoch and metric is not None and (self.warmup is None or self.updates > self.warmup_steps)
                and self.updates >= self.hold_updates):
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
