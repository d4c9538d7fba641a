"""Assemble and run a training job from a plain (resolved) config dict — no Hydra here, usable from notebooks.

`run_training(config, settings, run_dir)` is what `signlip train` calls after Hydra composed the config.
"""

from __future__ import annotations

import math
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from signlip import distributed as dist
from signlip.checkpoint import find_latest
from signlip.config import TrainerSettings
from signlip.data.base import DataBundle
from signlip.data.loaders import make_loaders
from signlip.errors import SignlipError
from signlip.logging import RunLogger, environment_info
from signlip.optim import Schedule, build_optimizer
from signlip.registry import OBJECTIVES, build_data, build_model, load_all

LOADER_KEYS = ("batch_size", "eval_batch_size", "num_workers", "stratified", "pin_memory")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def split_data_config(data_cfg: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(data module name, its kwargs, loader kwargs) from the `data` config node."""
    cfg = dict(data_cfg)
    name = cfg.pop("name")
    loader = {k: cfg.pop(k) for k in LOADER_KEYS if k in cfg}
    return name, cfg, loader


def model_kwargs(model_cfg: dict[str, Any], data: DataBundle) -> tuple[str, dict[str, Any]]:
    cfg = dict(model_cfg)
    name = cfg.pop("name")
    # Facts about the data (input size, class count) win over config defaults.
    return name, {**cfg, **data.model_kwargs, "num_classes": len(data.classes)}


def build_objective(objective_cfg: dict[str, Any], data: DataBundle):
    cfg = dict(objective_cfg)
    name = cfg.pop("name", "classify")
    if cfg.get("class_weights") == "balanced":
        counts = np.bincount(data.splits["train"].labels, minlength=len(data.classes)).astype(float)
        cfg["class_weights"] = (counts.sum() / (len(counts) * np.maximum(counts, 1))).tolist()
    elif isinstance(cfg.get("class_weights"), list) and len(cfg["class_weights"]) != len(data.classes):
        raise SignlipError(f"objective.class_weights has {len(cfg['class_weights'])} weights for {len(data.classes)} "
                           f"classes ({', '.join(data.classes)}) — give one per class, or class_weights=balanced")
    load_all()
    return OBJECTIVES.build(name, **cfg)


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def resolve_resume(resume: str | None, outputs_root: Path, task: str, logger: RunLogger) -> Path | None:
    if not resume:
        return None
    if resume == "auto":
        found = find_latest(outputs_root, task)
        if found is None:
            logger.print(f"trainer.resume=auto: no last.pt of task {task} under {outputs_root}; starting fresh")
        return found
    path = Path(resume).expanduser()
    if not path.is_file():
        raise SignlipError(f"trainer.resume={resume}: no such checkpoint — give a last.pt path or 'auto'")
    return path


def _number(value: Any, integer: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        return False
    return math.isfinite(value)


def check_config(config: dict[str, Any], settings: TrainerSettings, device: torch.device) -> None:
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
                          ("trainer.mode", s.mode in ("max", "min"), "max or min"),
                          ("trainer.nan_policy", s.nan_policy in ("stop", "skip"), "stop or skip")):
        if not ok:
            raise SignlipError(f"{key}={getattr(s, key.split('.')[1])!r} — it must be {must}")
    if s.precision == "16" and device.type != "cuda":
        raise SignlipError("trainer.precision=16 (float16 autocast) needs a CUDA device — use trainer.precision=bf16 "
                           "or 32 on CPU")


_MISSING = object()


def built(what: str, hint: str, factory, *args: Any, **kwargs: Any) -> Any:
    """Construct an object from config; a constructor rejecting its arguments is a bad setting, not a crash."""
    try:
        return factory(*args, **kwargs)
    except SignlipError:
        raise
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        reason = (str(exc).strip().splitlines() or [""])[0]
        raise SignlipError(f"{what} rejected its settings ({type(exc).__name__}: {reason}) — fix the {hint} "
                           f"overrides (`signlip train --cfg job` shows them)") from exc


def run_training(config: dict[str, Any], settings: TrainerSettings, run_dir: str | Path,
                 outputs_root: str | Path = "outputs", objective: Any = None) -> dict[str, Any]:
    """Build data, model, objective, optimizer and schedule from `config`, train, save, report.

    `objective`: None → built from `config["objective"]`; a ready objective (anything with `.loss`); or a factory
    `(data, model) -> objective`, called once both are built (e.g. distillation: load the teacher, check it
    against the data's classes, optionally initialise the student).
    """
    from signlip.evaluation import report_predictions
    from signlip.trainer import Trainer, select_device

    started = time.time()
    run_dir = Path(run_dir)
    task = config.get("task_name", "custom")
    device = select_device(settings.device)
    check_config(config, settings, device)
    seed = int(config.get("seed", 0))
    dist.setup(device)
    if device.type == "cuda" and dist.world_size() > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
        settings.device = str(device)
    logger = RunLogger(run_dir, enabled=dist.is_main(), tensorboard=config.get("logger", {}).get("tensorboard", True),
                       progress=config.get("logger", {}).get("progress", True))
    seed_everything(seed)
    try:
        data_name, data_kwargs, loader_kwargs = split_data_config(config["data"])
        data = build_data(data_name, **data_kwargs, seed=seed)
        model_name, kwargs = model_kwargs(config["model"], data)
        model = built(f"model {model_name}", "model.*", build_model, model_name, **kwargs)
        if objective is None:
            objective = built("the objective", "objective.*", build_objective, config.get("objective", {}), data)
        elif not hasattr(objective, "loss"):
            objective = objective(data, model)
        if loader_kwargs.get("batch_size") == "auto":
            from signlip.batch_size import auto_batch_size
            from signlip.trainer import autocast_dtype

            loader_kwargs["batch_size"] = auto_batch_size(model, objective, data, device,
                                                          autocast_dtype(settings.precision), report=logger.print)
        loaders = make_loaders(data, seed=seed, pin_memory=device.type == "cuda", **loader_kwargs)
        optim_cfg = dict(config["optim"])
        optimizer = built("the optimizer", "optim.*", build_optimizer, model.parameters(), optim_cfg.pop("name"),
                          **optim_cfg)
        sched_cfg = dict(config["sched"])
        steps_per_epoch = -(-min(len(loaders["train"]), settings.limit_train_batches or 10**12)
                            // settings.grad_accum_steps)
        schedule = built("the schedule", "sched.*", Schedule, optimizer, sched_cfg.pop("name"), steps_per_epoch,
                         settings.max_epochs, mode=settings.mode, **sched_cfg)
        contract = {"task": task, "model": {"name": model_name, "kwargs": kwargs}, "config": config}
        trainer = Trainer(model, objective, optimizer, schedule, data, loaders, settings, run_dir, contract, logger,
                          seed)
        n_params = parameter_count(model)
        sizes = ", ".join(f"{s} {len(ds)}" for s, ds in data.splits.items())
        logger.print(f"[bold]signlip train[/bold] task={task} model={model_name} ({n_params:,} parameters) on "
                     f"{trainer.device} · {len(data.classes)} classes · {sizes}")
        logger.print(f"run folder: {run_dir}", soft_wrap=True)
        resume_from = resolve_resume(settings.resume, Path(outputs_root), task, logger)
        if resume_from is not None:
            trainer.resume(resume_from)
        summary = trainer.fit()
        results: dict[str, Any] = {"summary": summary}
        if settings.evaluate_test and "test" in loaders and not summary["interrupted"]:
            logits, y, _ = trainer.predict("test")
            if dist.is_main():
                results["test"] = report_predictions(logits, y, data.classes, "test", trainer.ckpt_dir / "best.pt",
                                                     run_dir, logger)
        if dist.is_main():
            manifest = {"task": task, "model": {"name": model_name, "kwargs": kwargs, "parameters": n_params},
                        "config": config, "history": trainer.history, "results": results,
                        "resumed_from": str(resume_from) if resume_from else None,
                        "environment": environment_info(), "world_size": dist.world_size(),
                        "wall_time_s": time.time() - started}
            path = logger.write_json("run.json", manifest)
            best = (f"{summary['best']['value']:.4f} (epoch {summary['best_epoch']})" if summary["best_epoch"] > 0
                    else "— (no epoch completed)")
            logger.summary_table("signlip train — " + (f"interrupted ({summary['interrupted']})"
                                                        if summary["interrupted"] else "done"), [
                ("best " + settings.monitor, best),
                ("test accuracy", f"{results['test']['accuracy']:.4f}" if "test" in results else "—"),
                ("epochs / updates", f"{summary['epochs']} / {summary['updates']}"),
                ("wall time", f"{time.time() - started:.1f} s")])
            logger.print(f"checkpoints: {trainer.ckpt_dir}  (best.pt, last.pt)\n"
                         f"metrics:     {logger.csv_path}, {path}\n"
                         f"tensorboard: tensorboard --logdir {run_dir / 'tensorboard'}\n"
                         f"evaluate:    signlip evaluate ckpt={trainer.ckpt_dir / 'best.pt'}", soft_wrap=True)
        if summary["interrupted"]:
            # Checkpoint and run.json are written: now stop the process (a sweep too) the way the signal asks.
            if summary["interrupted"] == "SIGINT":
                raise KeyboardInterrupt
            raise SystemExit(128 + int(getattr(signal, summary["interrupted"], signal.SIGTERM)))  # SIGTERM → 143
        return {**results, "run_dir": str(run_dir), "checkpoint_dir": str(trainer.ckpt_dir)}
    finally:
        logger.close()
        dist.teardown()
