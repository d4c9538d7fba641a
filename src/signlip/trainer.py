"""The one training loop for every task: objects in, no task-specific branches.

`Trainer.fit()` runs epochs of `train_one_epoch` + `evaluate("val")`, keeps `last.pt`/`best.pt`, stops early and
restores the best weights. Everything arrives as plain objects (built by `signlip.build`): a model, an objective
(the loss), an evaluator (the metrics, the monitor and the alarm), an optimizer and a `Schedule`, a `DataBundle` with
its loaders, and `TrainerSettings`. Hydra never reaches this module.
"""

from __future__ import annotations

import copy
import signal
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn

from signlip import distributed as dist
from signlip.callbacks import EarlyStopping, broadcast_progress
from signlip.checkpoint import (
    FORMAT_VERSION,
    capture_rng,
    copy_checkpoint,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from signlip.config import TrainerSettings
from signlip.data.base import DataBundle
from signlip.errors import SignlipError
from signlip.optim import Schedule
from signlip.run_logger import RunLogger


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SignlipError(f"trainer.device={name} but no CUDA device is visible — use trainer.device=cpu or auto")
    return torch.device(name)


def autocast_dtype(precision: str) -> torch.dtype | None:
    choices = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}
    if precision not in choices:
        raise SignlipError(f"trainer.precision={precision} — choose one of 32, bf16, 16")
    return choices[precision]


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    # .to restrides even where .contiguous sees nothing to do (one channel), which would leave conv layers in mixed
    # layouts (measured on lip_cnnlstm: copies and slow pooling cost 25% of a training step).
    return t.to(memory_format=torch.channels_last if t.ndim == 4 else torch.channels_last_3d)


def to_channels_last(model: nn.Module) -> None:
    """Conv weights (4D/5D parameters) to the channels-last layout, in place (optimizers keep their parameters)."""
    for p in model.parameters():
        if p.ndim in (4, 5):
            p.data = _channels_last(p.data)


def model_input(batch: dict[str, torch.Tensor], transform, device: torch.device, channels_last: bool,
                training: bool) -> dict[str, torch.Tensor]:
    """Move a loader batch to the device, apply the data's batch transform there, then the model's memory layout —
    after the transform, which builds the model's (B, C, [T,] H, W) input from the stored layout."""
    batch = transform({k: v.to(device, non_blocking=True) for k, v in batch.items()}, training=training)
    x = batch["x"]
    if channels_last and x.ndim in (4, 5):
        batch = {**batch, "x": _channels_last(x)}
    return batch


def batch_size_of(batch: dict[str, torch.Tensor]) -> int:
    return int(batch["index"].shape[0])  # every data module numbers its samples


def scalar_extras(out: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The objective's per-batch scalars besides the loss and outputs (e.g. a distillation's kd_loss)."""
    return {k: v.detach().float() for k, v in out.items()
            if k not in ("loss", "outputs") and torch.is_tensor(v) and v.ndim == 0}


@torch.inference_mode()
def run_evaluation(model: nn.Module, objective, evaluator, loader, transform, device: torch.device,
                   amp_dtype: torch.dtype | None = None, channels_last: bool = False) -> dict[str, float]:
    """Eval-mode pass over a loader through the objective: mean loss and objective scalars, then the evaluator's
    metrics (which take precedence on a shared name). Reduced across ranks."""
    model.eval()
    evaluator.reset()
    sums: dict[str, torch.Tensor] = {}
    seen = 0
    for batch in loader:
        batch = model_input(batch, transform, device, channels_last, training=False)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = objective(model, batch)
        n = batch_size_of(batch)
        seen += n
        for key, value in {"loss": out["loss"].detach().float(), **scalar_extras(out)}.items():
            sums[key] = sums.get(key, torch.zeros((), device=device)) + value * n
        evaluator.update(out["outputs"], batch)
    total = dist.all_reduce_sum(torch.tensor(float(seen), device=device)).item()
    metrics = {k: dist.all_reduce_sum(v).item() / max(total, 1) for k, v in sums.items()}
    metrics.update(evaluator.compute())
    return metrics


class NonFiniteLoss(SignlipError):
    pass


class Trainer:
    """Fit a model with one objective, scored by one evaluator; rank-0 logging and checkpoints under DDP.

    `contract`: the plain data every checkpoint carries besides the training state (task, model and objective
    specs, the output vocabulary, preprocessing, the resolved config) — built by `signlip.build`."""

    def __init__(self, model: nn.Module, objective, evaluator, optimizer: torch.optim.Optimizer, schedule: Schedule,
                 data: DataBundle, loaders: dict[str, Any], settings: TrainerSettings, run_dir: str | Path,
                 contract: dict[str, Any], logger: RunLogger | None = None, seed: int = 0):
        self.settings = settings
        self.device = select_device(settings.device)
        self.amp_dtype = autocast_dtype(settings.precision)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = not settings.deterministic
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        if settings.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        self.model = model.to(self.device)  # the raw module: what checkpoints hold
        if settings.channels_last:
            to_channels_last(self.model)
        self.forward_model: nn.Module = self.model
        self.ddp = dist.world_size() > 1
        if self.ddp:
            self.forward_model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self._ddp_module = self.forward_model  # no_sync lives on the DDP wrapper, not on a compiled one
        if settings.compile:
            self.forward_model = torch.compile(self.forward_model)
        self.objective = objective
        self.evaluator = evaluator
        self.monitor = settings.monitor or f"val/{evaluator.monitor}"
        self.optimizer = optimizer
        self.schedule = schedule
        self.data = data
        self.transform = data.batch_transform.to(self.device)
        self.loaders = loaders
        self.run_dir = Path(run_dir)
        self.ckpt_dir = Path(settings.checkpoint_dir) if settings.checkpoint_dir else self.run_dir / "checkpoints"
        self.contract = contract
        self.logger = logger or RunLogger(self.run_dir, enabled=False)
        self.seed = seed
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=settings.precision == "16")
        self.early = EarlyStopping(settings.mode, settings.early_stopping.patience, settings.early_stopping.min_delta,
                                   settings.early_stopping.enabled,
                                   settings.small_data.min_updates if settings.small_data.enabled else 0)
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer updates done
        self.history: list[dict[str, float]] = []
        self.best_state: dict[str, torch.Tensor] | None = None
        self.skipped_batches = 0
        self.stop_requested: str | None = None
        self.started = time.time()

    # --- the loop ------------------------------------------------------------------------------------------
    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def train_step(self, batch: dict[str, torch.Tensor], update: bool = True, accum: int = 1) -> dict[str, Any] | None:
        """One micro-step on a device batch: forward through the objective, backward; with `update`, unscale, clip,
        optimizer step, schedule. Under DDP the gradient all-reduce runs only on updating micro-steps. Returns the
        objective's output, or None for a non-finite loss that `trainer.nan_policy=skip` dropped."""
        sync = self._ddp_module.no_sync() if self.ddp and not update else nullcontext()
        with sync:
            with self.autocast():
                out = self.objective(self.forward_model, batch)
            if not self._finite(out["loss"], batch):
                self.optimizer.zero_grad(set_to_none=True)
                return None
            self.scaler.scale(out["loss"] / accum).backward()
        if update:
            self.scaler.unscale_(self.optimizer)
            if self.settings.grad_clip_norm > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip_norm)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            self.schedule.step_update()
            self.step += 1
            broadcast_progress(self.model, self.epoch, self.step)
        return out

    def train_one_epoch(self) -> dict[str, float]:
        loader, accum = self.loaders["train"], self.settings.grad_accum_steps
        self.forward_model.train()
        broadcast_progress(self.model, self.epoch, self.step)
        for sampler in (loader.sampler, loader.batch_sampler):
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(self.epoch)
        n_batches = len(loader) if self.settings.limit_train_batches is None else min(
            len(loader), self.settings.limit_train_batches)
        sums = {"loss": torch.zeros((), device=self.device)}
        seen = 0
        self.logger.start_bar("train", f"epoch {self.epoch + 1}/{self.settings.max_epochs}", n_batches)
        t0 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        for i, batch in enumerate(loader):
            if i >= n_batches:
                break
            batch = model_input(batch, self.transform, self.device, self.settings.channels_last, training=True)
            out = self.train_step(batch, update=(i + 1) % accum == 0 or i + 1 == n_batches, accum=accum)
            if out is None:
                continue
            n = batch_size_of(batch)
            seen += n
            for key, value in {"loss": out["loss"].detach().float(), **scalar_extras(out)}.items():
                sums[key] = sums.get(key, torch.zeros((), device=self.device)) + value * n
            self.logger.advance_bar("train", f"{seen / (time.perf_counter() - t0):.0f} samples/s")
            if self.stop_requested:
                break
        elapsed = time.perf_counter() - t0
        total = dist.all_reduce_sum(torch.tensor(float(seen), device=self.device)).item()
        metrics = {f"train/{k}": dist.all_reduce_sum(v).item() / max(total, 1) for k, v in sums.items()}
        metrics.update({"train/samples_per_s": total / max(elapsed, 1e-9), "lr": self.optimizer.param_groups[0]["lr"]})
        return metrics

    def _finite(self, loss: torch.Tensor, batch: dict[str, torch.Tensor]) -> bool:
        bad = torch.tensor(float(not torch.isfinite(loss.detach()).all()), device=self.device)
        if dist.all_reduce_sum(bad).item() == 0:
            return True
        if self.settings.nan_policy == "skip":
            self.skipped_batches += 1
            return False
        # Only now (off the hot path) look at the inputs, to say whether the data or the optimisation is at fault.
        x = batch["x"]
        if x.is_floating_point() and not torch.isfinite(x).all():
            rows = (~torch.isfinite(x.reshape(x.shape[0], -1))).any(1).nonzero().flatten().cpu()
            paths = getattr(self.data.splits["train"], "paths", None)
            ids = [paths[int(i)] if paths else str(int(i)) for i in batch["index"].cpu()[rows][:3]]
            raise NonFiniteLoss(f"the input batch holds NaN/inf after the data transform ({len(rows)} sample(s), e.g. "
                                f"{', '.join(ids)}) at epoch {self.epoch + 1}, update {self.step} — training stopped; "
                                f"the last good checkpoint is kept in {self.ckpt_dir}. Fix those samples (signlip "
                                f"doctor lists them) or set trainer.nan_policy=skip")
        raise NonFiniteLoss(f"loss became {loss.item()} at epoch {self.epoch + 1}, update {self.step} — training "
                            f"stopped; the last good checkpoint is kept in {self.ckpt_dir}. Lower optim.lr, check the "
                            f"inputs for NaN/inf (signlip doctor), or set trainer.nan_policy=skip")

    def evaluate(self, split: str = "val") -> dict[str, float]:
        """`<split>/<metric>` over a split: the objective's loss and scalars, then the evaluator's metrics."""
        metrics = run_evaluation(self.forward_model, self.objective, self.evaluator, self.loaders[split],
                                 self.transform, self.device, self.amp_dtype, self.settings.channels_last)
        return {f"{split}/{k}": v for k, v in metrics.items()}

    def fit(self) -> dict[str, Any]:
        """Train until max_epochs or early stopping; restore the best weights; return the final summary."""
        s = self.settings
        if hasattr(self.objective, "setup"):  # e.g. distillation precomputes teacher logits once
            self.objective.setup(self)
        self._install_signal_handlers()
        try:
            # last.pt always holds an epoch boundary: the start state now, then the end of every epoch. An interrupted
            # epoch (SIGINT/SIGTERM, kill -9) is discarded and redone from it on resume, exactly as it would have run.
            self.save("last.pt")
            finished = self.finished()
            if finished:
                self.logger.print(f"nothing to train: {finished}")
            while self.epoch < s.max_epochs and not self.stop_requested and not finished:
                train_metrics = self.train_one_epoch()
                if self.stop_requested:
                    self.logger.print(f"{self.stop_requested}: stopped in epoch {self.epoch + 1}; last.pt keeps the "
                                      f"state after epoch {self.epoch} — resume with trainer.resume="
                                      f"{self.ckpt_dir / 'last.pt'} (or auto) to redo that epoch")
                    break
                val_metrics = self.evaluate("val")
                self.epoch += 1
                metrics = {**train_metrics, **val_metrics}
                if self.monitor not in metrics:
                    raise SignlipError(f"trainer.monitor={self.monitor} is not a logged metric — choose one of "
                                       f"{', '.join(sorted(metrics))}")
                value = metrics[self.monitor]
                sched_monitor = self.schedule.monitor or self.monitor
                if sched_monitor not in metrics:
                    raise SignlipError(f"sched.monitor={sched_monitor} is not a logged metric — choose one of "
                                       f"{', '.join(sorted(metrics))}")
                self.schedule.step_epoch(metrics[sched_monitor])
                improved = self.early.update(value, self.epoch, self.step)
                self.history.append({"epoch": self.epoch, **metrics})
                self.logger.log_epoch(self.epoch, metrics)
                for tag, image in self.evaluator.images().items():
                    self.logger.log_image(f"val/{tag}", image, self.epoch)
                self._print_epoch(metrics, improved)
                alarm = self.evaluator.check_alarm(self.epoch, self.history)
                if alarm is not None:
                    self._print_alarm(alarm)
                self.save("last.pt")
                if improved:
                    self.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in self.model.state_dict().items()})
                    self.copy_checkpoint("last.pt", "best.pt")  # serialised once, written twice
                if alarm is not None and alarm.stops and s.stop_on_alarm:
                    self.logger.print("stopping: trainer.stop_on_alarm=true")
                    break
                if self.early.should_stop:
                    self.logger.print(f"early stopping: {self.monitor} has not improved for {self.early.bad_epochs} "
                                      f"epochs (best {self.early.best:.4f} at epoch {self.early.best_epoch}; "
                                      f"{self.step} updates)")
                    break
        finally:
            self.logger.close_bars()
            self._restore_signal_handlers()
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)  # early stopping restores the best weights
        return self.summary()

    def _print_alarm(self, alarm) -> None:
        from rich.panel import Panel

        causes = "\n".join(f"  • {c}" for c in alarm.causes)
        notice = not getattr(alarm, "stops", True)
        body = (f"[bold]{alarm.message}[/bold]\n" + (f"What to do:\n{causes}" if notice else
                f"Likely causes:\n{causes}\nRun `signlip doctor task={self.contract.get('task')}` (same data "
                f"overrides) to check the pipeline."))
        # soft_wrap=False: the logger's default (long lines stay whole) would crop a panel's lines at its border.
        self.logger.print(Panel(body, title=alarm.title, border_style="yellow" if notice else "red"), soft_wrap=False)

    def finished(self) -> str | None:
        """Why a resumed run has nothing left to train (all its epochs done, or it early-stopped), or None."""
        if self.epoch >= self.settings.max_epochs:
            return (f"all {self.settings.max_epochs} epochs are done (trainer.max_epochs) — raise trainer.max_epochs "
                    f"to train on")
        if self.epoch > 0 and self.early.should_stop:
            return (f"the run early-stopped after epoch {self.epoch} ({self.monitor} best {self.early.best:.4f} at "
                    f"epoch {self.early.best_epoch}, no improvement for {self.early.bad_epochs} epochs) — raise "
                    f"trainer.early_stopping.patience to train on")
        return None

    def summary(self) -> dict[str, Any]:
        return {"epochs": self.epoch, "updates": self.step, "best_epoch": self.early.best_epoch,
                "best": {"monitor": self.monitor, "value": self.early.best},
                "interrupted": self.stop_requested, "skipped_nonfinite_batches": self.skipped_batches,
                "alarms": self.evaluator.fired_alarms(), "wall_time_s": time.time() - self.started}

    def _print_epoch(self, m: dict[str, float], improved: bool) -> None:
        def short(key: str) -> str:
            return key.split("/", 1)[1]

        train = [k for k in m if k.startswith("train/") and k not in ("train/loss", "train/samples_per_s")]
        val = ["val/loss", *(f"val/{h}" for h in self.evaluator.headline)]
        if self.monitor not in val:
            val.append(self.monitor)
        # The objective's own scalars on val too (distillation: kd_loss, ce_loss, teacher–student agreement).
        val += [f"val/{short(k)}" for k in train]
        parts = [f"loss {m['train/loss']:.4f}", *(f"{short(k)} {m[k]:.3f}" for k in train),
                 *(f"val_{short(k)} {m[k]:.4f}" for k in dict.fromkeys(val) if k in m)]
        parts += [f"lr {m['lr']:.2e}", f"{m['train/samples_per_s']:.0f} samples/s", *(["*"] if improved else [])]
        self.logger.print(f"epoch {self.epoch:>3}/{self.settings.max_epochs}  " + "  ".join(parts))

    # --- checkpoints --------------------------------------------------------------------------------------
    def checkpoint_payload(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            **self.contract,
            "model_state": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "early_stopping": self.early.state_dict(),
            "evaluator_state": self.evaluator.state_dict(),
            "rng": capture_rng(),
            "history": self.history,
            "seed": self.seed,
        }

    def save(self, name: str) -> Path | None:
        if not dist.is_main():
            return None
        return save_checkpoint(self.checkpoint_payload(), self.ckpt_dir / name)

    def copy_checkpoint(self, source: str, name: str) -> Path | None:
        if not dist.is_main():
            return None
        return copy_checkpoint(self.ckpt_dir / source, self.ckpt_dir / name)

    def resume(self, path: str | Path) -> None:
        """Continue from a checkpoint: weights, optimizer, schedule, scaler, counters, early stopping, RNG."""
        ckpt = load_checkpoint(path)
        for key, value in self.contract.items():
            if key in RESUME_MAY_DIFFER or key not in ckpt or ckpt[key] == value:
                continue
            raise SignlipError(f"cannot resume from {path}: its {key} differs from this run's ({_brief(ckpt[key])} vs "
                               f"{_brief(value)}) — resume with the same task, model and data")
        self.model.load_state_dict(ckpt["model_state"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["schedule"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.early.load_state_dict(ckpt["early_stopping"])
        self.evaluator.load_state_dict(ckpt["evaluator_state"])
        self.epoch, self.step, self.history = ckpt["epoch"], ckpt["step"], list(ckpt["history"])
        self.logger.log_history(self.history)  # the new run folder's metrics.csv holds every epoch, not only the new
        restore_rng(ckpt["rng"])
        best = Path(path).with_name("best.pt")
        if best.is_file():
            self.best_state = load_checkpoint(best)["model_state"]
            if dist.is_main() and best.resolve() != (self.ckpt_dir / "best.pt").resolve():
                copy_checkpoint(best, self.ckpt_dir / "best.pt")  # the new run folder is self-contained
        self.logger.print(f"resumed from {path} at epoch {self.epoch}, update {self.step}")


    # --- signals: finish the step, save, exit cleanly --------------------------------------------------------
    def _install_signal_handlers(self) -> None:
        self._previous_handlers = {}

        def handler(signum, _frame):
            self.stop_requested = signal.Signals(signum).name
            self.logger.print(f"{self.stop_requested} received: finishing this step, then stopping (last.pt keeps the "
                              f"last finished epoch)")

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous_handlers[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread
                pass

    def _restore_signal_handlers(self) -> None:
        for sig, previous in self._previous_handlers.items():
            signal.signal(sig, previous)


# Contract entries a resumed run may change: the composed config (e.g. more epochs) and where the data lives.
RESUME_MAY_DIFFER = ("config", "preprocessing")


def _brief(value: Any, limit: int = 80) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"
