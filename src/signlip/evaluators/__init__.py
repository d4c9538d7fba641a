"""Evaluators own validation and test metrics: `reset() / update(outputs, batch) / compute() -> {name: float}`.

`update` accumulates on the device; `compute` reduces across ranks under DDP and returns scalar metrics (the
Trainer logs them as `<split>/<name>`). Each evaluator declares

- `monitor`, `mode`: its default metric for the best checkpoint, early stopping and plateau schedules;
- `headline`: the metrics printed per epoch;
- `check_alarm(epoch, history) -> Alarm | None`: its "the run learns nothing" alarm (stuck at chance, at blank…);
- `images()`: pictures of the last `compute` for TensorBoard;
- `report(split, out_dir, logger, extra) -> dict`: the full report of the last `compute` (tables, PNG, CSV, JSON);
- `state_dict() / load_state_dict()`: what a resumed run must remember (a fired alarm).

Evaluators are built by name from `signlip.registry.EVALUATORS` as `factory(data, **kwargs)`. One file per kind.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Alarm:
    """A loud warning about a run that trains but learns nothing useful; the Trainer prints it in a panel."""

    title: str  # e.g. "STUCK AT CHANCE"
    message: str
    causes: tuple[str, ...] = ()
    # False for a notice ("too little data to judge"): printed, but not a reason for trainer.stop_on_alarm to stop.
    stops: bool = True
