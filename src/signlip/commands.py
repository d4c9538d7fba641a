"""The Hydra edge: each function receives the composed DictConfig, turns it into plain objects and runs.

SignlipError (a problem the user can fix) becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from omegaconf import DictConfig, OmegaConf

from signlip.errors import SignlipError


def user_errors_exit_2(fn):
    @functools.wraps(fn)
    def wrapper(cfg: DictConfig) -> Any:
        try:
            return fn(cfg)
        except SignlipError as exc:
            print(f"signlip: error: {exc}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("signlip: interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper


def run_dir() -> str:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.output_dir


@user_errors_exit_2
def train(cfg: DictConfig) -> float | None:
    from signlip.pipeline import run_training

    settings = OmegaConf.to_object(cfg.trainer)
    config = OmegaConf.to_container(cfg, resolve=True)
    result = run_training(config, settings, run_dir())
    best = result["summary"]["best"]["value"] if "summary" in result else None
    return best  # Hydra sweepers may optimise on it


@user_errors_exit_2
def evaluate(cfg: DictConfig) -> float:
    from signlip.evaluation import evaluate_checkpoint

    report = evaluate_checkpoint(cfg.ckpt, split=cfg.split, manifest=cfg.data.manifest, out=cfg.out, device=cfg.device,
                                 batch_size=cfg.batch_size)
    return report["accuracy"]


@user_errors_exit_2
def distill(cfg: DictConfig) -> float | None:
    from signlip.distill import distill_objective_factory
    from signlip.pipeline import run_training

    settings = OmegaConf.to_object(cfg.trainer)
    config = OmegaConf.to_container(cfg, resolve=True)
    d = config["distill"]
    # The teacher checkpoint is read and checked here, before any data is prepared; classes and preprocessing are
    # compared with the student's data inside run_training (the factory), the one place that assembles a run.
    factory = distill_objective_factory(config["teacher"]["ckpt"], config["teacher"].get("task"),
                                        temperature=float(d["temperature"]), alpha=float(d["alpha"]),
                                        cache_teacher=bool(d["cache_teacher"]),
                                        label_smoothing=float(config.get("objective", {}).get("label_smoothing", 0.0)),
                                        student_init=config["student"].get("init"))
    result = run_training(config, settings, run_dir(), objective=factory)
    return result["summary"]["best"]["value"] if "summary" in result else None


@user_errors_exit_2
def prepare(cfg: DictConfig) -> None:
    from signlip.logging import console
    from signlip.prepare import PREPARERS
    from signlip.registry import load_all

    load_all()
    data = OmegaConf.to_container(cfg.data, resolve=True)
    name = data.pop("name")
    if name not in PREPARERS:
        raise SignlipError(f"task {cfg.task_name} reads its data directly ({name} .npy files) — nothing to prepare; "
                           f"train with data.manifest=<your manifest>")
    data.pop("workers", None)  # the data module's own setting for preparing on first use; prepare.workers rules here
    result = PREPARERS.get(name)(**data, seed=cfg.seed, workers=cfg.prepare.workers, overwrite=cfg.prepare.overwrite)
    console.print(f"next: signlip train task={cfg.task_name} data.manifest={result.manifest}", soft_wrap=True)


@user_errors_exit_2
def doctor(cfg: DictConfig) -> None:
    from signlip.doctor import run_doctor

    report = run_doctor(OmegaConf.to_container(cfg, resolve=True), OmegaConf.to_object(cfg.trainer), run_dir())
    if not report["ok"]:
        sys.exit(1)
