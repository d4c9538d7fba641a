"""Assemble and run a training job from a plain (resolved) config dict — no Hydra here, usable from notebooks.

`run_training(config, settings, run_dir)` is what `signlip train` calls after Hydra composed the config.
"""

from __future__ import annotations

import os
import random
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


def run_training(config: dict[str, Any], settings: TrainerSettings, run_dir: str | Path,
                 outputs_root: str | Path = "outputs") -> dict[str, Any]:
    """Build data, model, objective, optimizer and schedule from `config`, train, save, report."""
    from signlip.evaluation import report_predictions
    from signlip.trainer import Trainer, select_device

    started = time.time()
    run_dir = Path(run_dir)
    task = config.get("task_name", "custom")
    seed = int(config.get("seed", 0))
    device = select_device(settings.device)
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
        model = build_model(model_name, **kwargs)
        loaders = make_loaders(data, seed=seed, pin_memory=device.type == "cuda", **loader_kwargs)
        optim_cfg = dict(config["optim"])
        optimizer = build_optimizer(model.parameters(), optim_cfg.pop("name"), **optim_cfg)
        sched_cfg = dict(config["sched"])
        steps_per_epoch = -(-min(len(loaders["train"]), settings.limit_train_batches or 10**12)
                            // settings.grad_accum_steps)
        schedule = Schedule(optimizer, sched_cfg.pop("name"), steps_per_epoch, settings.max_epochs,
                            mode=settings.mode, **sched_cfg)
        contract = {"task": task, "model": {"name": model_name, "kwargs": kwargs}, "config": config}
        trainer = Trainer(model, build_objective(config.get("objective", {}), data), optimizer, schedule, data, loaders,
                          settings, run_dir, contract, logger, seed)
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
            logger.summary_table("signlip train — done", [
                ("best " + settings.monitor, f"{summary['best']['value']:.4f} (epoch {summary['best_epoch']})"),
                ("test accuracy", f"{results['test']['accuracy']:.4f}" if "test" in results else "—"),
                ("epochs / updates", f"{summary['epochs']} / {summary['updates']}"),
                ("wall time", f"{time.time() - started:.1f} s")])
            logger.print(f"checkpoints: {trainer.ckpt_dir}  (best.pt, last.pt)\n"
                         f"metrics:     {logger.csv_path}, {path}\n"
                         f"tensorboard: tensorboard --logdir {run_dir / 'tensorboard'}\n"
                         f"evaluate:    signlip evaluate ckpt={trainer.ckpt_dir / 'best.pt'}", soft_wrap=True)
        return {**results, "run_dir": str(run_dir), "checkpoint_dir": str(trainer.ckpt_dir)}
    finally:
        logger.close()
        dist.teardown()
