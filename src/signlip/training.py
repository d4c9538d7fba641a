"""A whole training run from a plain (resolved) config — no Hydra here, usable from notebooks.

`run_training(config, settings, run_dir)` is what `signlip train` (and `signlip distill`) call after Hydra composed
the config: build the run, resume if asked, fit, report the best model on the test split, write `run.json`.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import torch

from signlip import distributed as dist
from signlip.build import build_run, make_trainer, seed_everything
from signlip.checkpoint import find_latest
from signlip.config import TrainerSettings
from signlip.errors import SignlipError
from signlip.run_logger import RunLogger, environment_info
from signlip.trainer import select_device


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
                 outputs_root: str | Path = "outputs", objective: Any = None, command: str = "train") -> dict[str, Any]:
    """Build the run from `config`, train, save, report. `objective`: see `signlip.build.build_run`."""
    started = time.time()
    run_dir = Path(run_dir)
    task = config.get("task_name", "custom")
    device = select_device(settings.device)
    seed = int(config.get("seed", 0))
    dist.setup(device)
    if device.type == "cuda" and dist.world_size() > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
        settings.device = str(device)
    logger = RunLogger(run_dir, enabled=dist.is_main(), tensorboard=config.get("logger", {}).get("tensorboard", True),
                       progress=config.get("logger", {}).get("progress", True), log_name=f"{command}.log")
    seed_everything(seed)
    try:
        run = build_run(config, settings, device, objective=objective, report=logger.print)
        trainer = make_trainer(run, run_dir, logger)
        logger.print(header(command, run, trainer.device))
        if run.adapted:
            logger.print(run.adapted)
        logger.print(f"run folder: {run_dir}", soft_wrap=True)
        resume_from = resolve_resume(settings.resume, Path(outputs_root), task, logger)
        if resume_from is not None:
            trainer.resume(resume_from)
        summary = trainer.fit()
        results: dict[str, Any] = {"summary": summary}
        if settings.evaluate_test and "test" in run.loaders and not summary["interrupted"]:
            metrics = trainer.evaluate("test")
            if dist.is_main():
                results["test"] = run.evaluator.report("test", run_dir, logger,
                                                       {"checkpoint": str(trainer.ckpt_dir / "best.pt"),
                                                        "loss": metrics["test/loss"]})
        if dist.is_main():
            manifest = {"task": task, "model": {**run.contract["model"], "parameters": run.parameters},
                        "config": config, "history": trainer.history, "results": results,
                        "resumed_from": str(resume_from) if resume_from else None, "small_data": run.adapted,
                        "environment": environment_info(), "world_size": dist.world_size(),
                        "wall_time_s": time.time() - started}
            path = logger.write_json("run.json", manifest)
            curves = learning_curves(manifest, run_dir, logger)
            best = (f"{summary['best']['value']:.4f} (epoch {summary['best_epoch']})" if summary["best_epoch"] > 0
                    else "— (no epoch completed)")
            headline = run.evaluator.summary(results["test"]) if "test" in results else ("test", "—")
            logger.summary_table(f"signlip {command} — " + (f"interrupted ({summary['interrupted']})"
                                                            if summary["interrupted"] else "done"), [
                ("best " + summary["best"]["monitor"], best),
                headline,
                ("epochs / updates", f"{summary['epochs']} / {summary['updates']}"),
                ("wall time", f"{time.time() - started:.1f} s")])
            where = [("checkpoints", f"{trainer.ckpt_dir}  (best.pt, last.pt)"),
                     ("metrics", f"{logger.csv_path}, {path}"), ("curves", curves), ("log", logger.log_path),
                     ("tensorboard", f"tensorboard --logdir {run_dir / 'tensorboard'}" if logger.tb else None),
                     ("evaluate", f"signlip evaluate ckpt={trainer.ckpt_dir / 'best.pt'}")]
            logger.print("\n".join(f"{k + ':':<12} {v}" for k, v in where if v), soft_wrap=True, markup=False)
        if summary["interrupted"]:
            # Checkpoint and run.json are written: now stop the process (a sweep too) the way the signal asks.
            if summary["interrupted"] == "SIGINT":
                raise KeyboardInterrupt
            raise SystemExit(128 + int(getattr(signal, summary["interrupted"], signal.SIGTERM)))  # SIGTERM → 143
        return {**results, "run_dir": str(run_dir), "checkpoint_dir": str(trainer.ckpt_dir)}
    finally:
        logger.close()
        dist.teardown()


def header(command: str, run, device: torch.device) -> str:
    """The run's first line: command, task, model, device, DDP (world size and backend), classes, split sizes."""
    sizes = ", ".join(f"{s} {len(ds)}" for s, ds in run.data.splits.items())
    ddp = ""
    if dist.world_size() > 1:
        ddp = f" · DDP: world size {dist.world_size()}, backend {torch.distributed.get_backend()}"
    return (f"[bold]signlip {command}[/bold] task={run.task} model={run.contract['model']['name']} "
            f"({run.parameters:,} parameters) on {device}{ddp} · {len(run.data.classes)} "
            f"{'glosses' if getattr(run.data, 'target', '') == 'glosses' else 'classes'} · {sizes}")


def learning_curves(manifest: dict[str, Any], run_dir: Path, logger: RunLogger) -> Path | None:
    """The run's learning curves (monitored metric and train loss per epoch) as `signlip report` draws a sweep's."""
    from signlip.sweep import plot_curves

    if not manifest["history"]:
        return None
    try:
        return plot_curves([{**manifest, "_dir": run_dir.name}], run_dir / "learning_curves.png")
    except (OSError, ValueError, RuntimeError) as exc:  # a picture must never cost the run its results
        logger.print(f"[yellow]warning:[/yellow] no learning_curves.png ({type(exc).__name__}: {exc})")
        return None
