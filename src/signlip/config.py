"""Typed schema for the trainer's runtime settings, registered in Hydra's ConfigStore.

`conf/trainer/default.yaml` extends `trainer/schema`, so a typo such as `trainer.max_epoch=5` fails at start
with a clear message instead of being silently ignored. Kept free of torch imports: the CLI loads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class EarlyStoppingSettings:
    enabled: bool = True
    patience: int = 10
    min_delta: float = 0.0


@dataclass
class ChanceAlarmSettings:
    enabled: bool = True
    after_epochs: int = 5  # first epoch at which the alarm may fire
    margin: float = 0.05  # accuracy within chance + max(margin, 2 standard errors) counts as chance
    collapse_fraction: float = 0.9  # share of predictions on one class that counts as collapse


@dataclass
class TrainerSettings:
    max_epochs: int = 100
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "32"  # 32 | bf16 | 16 (fp16 with GradScaler)
    compile: bool = False  # torch.compile the model
    channels_last: bool = False  # conv models: channels-last memory format
    grad_accum_steps: int = 1
    grad_clip_norm: float = 1.0  # 0 disables clipping
    monitor: str = "val/accuracy"  # metric for best checkpoint, early stopping and plateau schedules
    mode: str = "max"  # max | min
    early_stopping: EarlyStoppingSettings = field(default_factory=EarlyStoppingSettings)
    resume: Optional[str] = None  # path to a checkpoint, or "auto" for the newest last.pt of this task
    checkpoint_dir: Optional[str] = None  # default: <run folder>/checkpoints
    nan_policy: str = "stop"  # stop | skip (skip the batch and count it)
    deterministic: bool = False  # torch.use_deterministic_algorithms
    limit_train_batches: Optional[int] = None  # cap batches per epoch (quick checks)
    evaluate_test: bool = True  # after training, report the best model on the test split (never used to select)
    chance_alarm: ChanceAlarmSettings = field(default_factory=ChanceAlarmSettings)
    stop_on_chance: bool = False  # stop the run when the stuck-at-chance alarm fires


def register_schemas() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group="trainer", name="schema", node=TrainerSettings)
