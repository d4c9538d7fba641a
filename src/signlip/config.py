"""Typed config schemas (registered in Hydra's ConfigStore) and the start-up checks of config values.

`conf/trainer/default.yaml` extends `trainer/schema`, so a typo such as `trainer.max_epoch=5` fails at start
with a clear message instead of being silently ignored. Kept free of torch imports: the CLI loads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

from signlip.errors import SignlipError


@dataclass
class EarlyStoppingSettings:
    enabled: bool = True
    patience: int = 10
    min_delta: float = 0.0


@dataclass
class TrainerSettings:
    max_epochs: int = 100
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "32"  # 32 | bf16 | 16 (fp16 with GradScaler)
    compile: bool = False  # torch.compile the model
    channels_last: bool = False  # conv models: channels-last memory format
    grad_accum_steps: int = 1
    grad_clip_norm: float = 1.0  # 0 disables clipping
    monitor: Optional[str] = None  # metric for best checkpoint, early stopping and plateau schedules; None: evaluator's
    mode: Optional[str] = None  # max | min; None: the evaluator's for its monitor, min for a *loss, else max
    early_stopping: EarlyStoppingSettings = field(default_factory=EarlyStoppingSettings)
    resume: Optional[str] = None  # path to a checkpoint, or "auto" for the newest last.pt of this task
    checkpoint_dir: Optional[str] = None  # default: <run folder>/checkpoints
    nan_policy: str = "stop"  # stop | skip (skip the batch and count it)
    deterministic: bool = False  # torch.use_deterministic_algorithms
    limit_train_batches: Optional[int] = None  # cap batches per epoch (quick checks)
    evaluate_test: bool = True  # after training, report the best model on the test split (never used to select)
    stop_on_alarm: bool = False  # stop the run when the evaluator's alarm (e.g. stuck at chance) fires


def register_schemas() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group="trainer", name="schema", node=TrainerSettings)


def _number(value: Any, integer: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        return False
    return math.isfinite(value)


def check_config(config: dict[str, Any], settings: TrainerSettings, device) -> None:
    """Values the pipeline itself consumes, checked up front (the data/model/optim groups are untyped), so that a
    bad override is one line naming the key instead of a traceback from deep inside torch."""
    def get(path: str) -> Any:
        node: Any = config
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return _MISSING
            node = node[part]
        return node

    rules = [  # key, test, what it must be
        ("seed", lambda v: _number(v, True), "an integer"),
        ("optim.lr", lambda v: _number(v) and v > 0, "a number > 0"),
        ("optim.weight_decay", lambda v: _number(v) and v >= 0, "a number ≥ 0"),
        ("data.batch_size", lambda v: v == "auto" or (_number(v, True) and v >= 1),
         "an integer ≥ 1, or auto (largest that fits on the GPU)"),
        ("data.eval_batch_size", lambda v: v is None or (_number(v, True) and v >= 1), "an integer ≥ 1 or null"),
        ("data.num_workers", lambda v: _number(v, True) and v >= 0, "an integer ≥ 0"),
        ("data.stratified", lambda v: isinstance(v, bool), "true or false"),
        ("data.sequence_length", lambda v: _number(v, True) and 1 <= v <= 100_000, "an integer in 1..100000"),
        ("data.max_len", lambda v: _number(v, True) and 1 <= v <= 100_000, "an integer in 1..100000"),
        ("objective.label_smoothing", lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
        ("objective.focal_gamma", lambda v: _number(v) and v >= 0, "a number ≥ 0"),
        ("objective.class_weights", lambda v: v is None or v == "balanced" or (
            isinstance(v, list) and v and all(_number(w) and w >= 0 for w in v)), "null, balanced or [w0, w1, ...]"),
        ("sched.warmup_steps", lambda v: _number(v, True) and v >= 0, "an integer ≥ 0"),
    ]
    augment = get("data.augment")
    if isinstance(augment, dict):
        for key, value in augment.items():
            if key.startswith("p") and not isinstance(value, bool):
                rules.append((f"data.augment.{key}", lambda v: _number(v) and 0 <= v <= 1, "a probability in [0, 1]"))
            elif not isinstance(value, (bool, list, dict)):
                rules.append((f"data.augment.{key}", lambda v: _number(v), "a number"))
    for key, test, must in rules:
        value = get(key)
        if value is not _MISSING and not test(value):
            raise SignlipError(f"{key}={value!r} — it must be {must}")
    s = settings
    for key, ok, must in (("trainer.max_epochs", s.max_epochs >= 1, "≥ 1"),
                          ("trainer.grad_accum_steps", s.grad_accum_steps >= 1, "≥ 1"),
                          ("trainer.grad_clip_norm", math.isfinite(s.grad_clip_norm) and s.grad_clip_norm >= 0,
                           "a number ≥ 0 (0 = off)"),
                          ("trainer.limit_train_batches", s.limit_train_batches is None or s.limit_train_batches >= 1,
                           "null or ≥ 1"),
                          ("trainer.mode", s.mode in (None, "max", "min"), "max, min or null (the evaluator's)"),
                          ("trainer.nan_policy", s.nan_policy in ("stop", "skip"), "stop or skip")):
        if not ok:
            raise SignlipError(f"{key}={getattr(s, key.split('.')[1])!r} — it must be {must}")
    if s.precision == "16" and device.type != "cuda":
        raise SignlipError("trainer.precision=16 (float16 autocast) needs a CUDA device — use trainer.precision=bf16 "
                           "or 32 on CPU")


_MISSING = object()
