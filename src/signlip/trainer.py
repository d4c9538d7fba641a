"""The one training loop for every task: objects in, no task-specific branches.

`Trainer.fit()` runs epochs of `train_one_epoch` + `validate`, keeps `last.pt`/`best.pt`, stops early, restores
the best weights and reports. Everything arrives as plain objects: a model, an objective, an optimizer and a
`Schedule`, a `DataBundle` with its loaders, and `TrainerSettings`. Hydra never reaches this module.
"""

from __future__ import annotations

import copy
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from signlip import distributed as dist
from signlip.callbacks import CHANCE_CAUSES, ChanceAlarm, EarlyStopping, broadcast_progress
from signlip.checkpoint import FORMAT_VERSION, capture_rng, load_checkpoint, restore_rng, save_checkpoint
from signlip.config import TrainerSettings
from signlip.data.base import DataBundle
from signlip.errors import SignlipError
from signlip.logging import RunLogger
from signlip.metrics import classification_report
from signlip.optim import Schedule


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


@torch.inference_mode()
def predict_logits(model: nn.Module, transform, loader, device: torch.device, amp_dtype: torch.dtype | None = None,
                   channels_last: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode logits and targets over a loader, in dataset order; gathered and de-duplicated across ranks."""
    model.eval()
    logits_all, y_all, idx_all = [], [], []
    for batch in loader:
        batch = model_input(batch, transform, device, channels_last, training=False)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(batch["x"], batch.get("mask"))
        logits_all.append(logits.float())
        y_all.append(batch["y"])
        idx_all.append(batch["index"])
    logits = dist.all_gather_cat(torch.cat(logits_all))
    y = dist.all_gather_cat(torch.cat(y_all))
    idx = dist.all_gather_cat(torch.cat(idx_all))
    # DistributedSampler pads with repeated samples: keep each sample once, in dataset order.
    order = torch.argsort(idx)
    keep = torch.ones_like(order, dtype=torch.bool)
    keep[1:] = idx[order][1:] != idx[order][:-1]
    return logits[order][keep].cpu().numpy(), y[order][keep].cpu().numpy()


class NonFiniteLoss(SignlipError):
    pass


class Trainer:
    """Fit a model with one objective; rank-0 logging and checkpoints under DDP."""

    def __init__(self, model: nn.Module, objective, optimizer: torch.optim.Optimizer, schedule: Schedule,
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
        if dist.world_size() > 1:
            self.forward_model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if settings.compile:
            self.forward_model = torch.compile(self.forward_model)
        self.objective = objective
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
                                   settings.early_stopping.enabled)
        a = settings.chance_alarm
        self.chance_alarm = ChanceAlarm(len(data.classes), a.after_epochs, a.margin, a.collapse_fraction, a.enabled)
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

    def train_one_epoch(self) -> dict[str, float]:
        model, loader, accum = self.forward_model, self.loaders["train"], self.settings.grad_accum_steps
        model.train()
        broadcast_progress(self.model, self.epoch, self.step)
        for sampler in (loader.sampler, loader.batch_sampler):
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(self.epoch)
        n_batches = len(loader) if self.settings.limit_train_batches is None else min(
            len(loader), self.settings.limit_train_batches)
        sums = {"loss": torch.zeros((), device=self.device), "correct": torch.zeros((), device=self.device)}
        seen = 0
        self.logger.start_bar("train", f"epoch {self.epoch + 1}/{self.settings.max_epochs}", n_batches)
        t0 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        for i, batch in enumerate(loader):
            if i >= n_batches:
                break
            batch = model_input(batch, self.transform, self.device, self.settings.channels_last, training=True)
            update = (i + 1) % accum == 0 or i + 1 == n_batches
            with self.autocast():
                out = self.objective(model, batch)
            loss = out["loss"]
            if not self._finite(loss, batch):
                self.optimizer.zero_grad(set_to_none=True)
                continue
            self.scaler.scale(loss / accum).backward()
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
            n = batch["y"].shape[0]
            seen += n
            sums["loss"] += loss.detach().float() * n
            sums["correct"] += (out["logits"].detach().argmax(1) == batch["y"]).sum()
            for key, value in out.items():
                if key not in ("loss", "logits") and torch.is_tensor(value) and value.ndim == 0:
                    sums[key] = sums.get(key, torch.zeros((), device=self.device)) + value.detach().float() * n
            self.logger.advance_bar("train", f"{seen / (time.perf_counter() - t0):.0f} samples/s")
            if self.stop_requested:
                break
        elapsed = time.perf_counter() - t0
        total = dist.all_reduce_sum(torch.tensor(float(seen), device=self.device)).item()
        reduced = {k: dist.all_reduce_sum(v).item() / max(total, 1) for k, v in sums.items()}
        metrics = {"train/loss": reduced.pop("loss"), "train/accuracy": reduced.pop("correct"),
                   "train/samples_per_s": total / max(elapsed, 1e-9), "lr": self.optimizer.param_groups[0]["lr"]}
        metrics.update({f"train/{k}": v for k, v in reduced.items()})
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

    def predict(self, split: str) -> tuple[np.ndarray, np.ndarray, float]:
        """Logits, targets (in dataset order) and mean loss over a split; gathered across ranks."""
        logits, y = predict_logits(self.forward_model, self.transform, self.loaders[split], self.device,
                                   self.amp_dtype, self.settings.channels_last)
        loss = self.objective.loss(torch.from_numpy(logits), torch.from_numpy(y)).item()
        return logits, y, loss

    def validate(self, split: str = "val") -> tuple[dict[str, float], dict[str, Any]]:
        logits, y, loss = self.predict(split)
        report = classification_report(logits, y, self.data.classes, ci=False)
        metrics = {f"{split}/loss": loss, f"{split}/accuracy": report["accuracy"],
                   f"{split}/balanced_accuracy": report["balanced_accuracy"], f"{split}/macro_f1": report["macro_f1"]}
        return metrics, report

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
            while self.epoch < s.max_epochs and not self.stop_requested:
                train_metrics = self.train_one_epoch()
                if self.stop_requested:
                    self.logger.print(f"{self.stop_requested}: stopped in epoch {self.epoch + 1}; last.pt keeps the "
                                      f"state after epoch {self.epoch} — resume with trainer.resume="
                                      f"{self.ckpt_dir / 'last.pt'} (or auto) to redo that epoch")
                    break
                val_metrics, report = self.validate("val")
                self.epoch += 1
                metrics = {**train_metrics, **val_metrics}
                if s.monitor not in metrics:
                    raise SignlipError(f"trainer.monitor={s.monitor} is not a logged metric — choose one of "
                                       f"{', '.join(sorted(metrics))}")
                value = metrics[s.monitor]
                self.schedule.step_epoch(value)
                improved = self.early.update(value, self.epoch)
                self.history.append({"epoch": self.epoch, **metrics})
                self.logger.log_epoch(self.epoch, metrics)
                self.logger.log_confusion("val/confusion", np.asarray(report["confusion_matrix"]), self.epoch)
                self._print_epoch(metrics, improved)
                stuck = self._check_chance(report)
                if improved:
                    self.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in self.model.state_dict().items()})
                    self.save("best.pt")
                self.save("last.pt")
                if stuck and s.stop_on_chance:
                    self.logger.print("stopping: trainer.stop_on_chance=true")
                    break
                if self.early.should_stop:
                    self.logger.print(f"early stopping: {s.monitor} has not improved for {self.early.patience} "
                                      f"epochs (best {self.early.best:.4f} at epoch {self.early.best_epoch})")
                    break
        finally:
            self.logger.close_bars()
            self._restore_signal_handlers()
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)  # early stopping restores the best weights
        return self.summary()

    def _check_chance(self, report: dict[str, Any]) -> bool:
        cm = np.asarray(report["confusion_matrix"])
        message = self.chance_alarm.check(self.epoch, report["accuracy"], report["n_samples"], cm.sum(0).tolist(),
                                          cm.sum(1).tolist(), [h["train/loss"] for h in self.history])
        if message is None:
            return False
        from rich.panel import Panel

        causes = "\n".join(f"  • {c}" for c in CHANCE_CAUSES)
        self.logger.print(Panel(f"[bold]{message}[/bold]\nLikely causes:\n{causes}\nRun `signlip doctor "
                                f"task={self.contract.get('task')}` (same data overrides) to check the pipeline.",
                                title="STUCK AT CHANCE", border_style="red"))
        return True

    def summary(self) -> dict[str, Any]:
        return {"epochs": self.epoch, "updates": self.step, "best_epoch": self.early.best_epoch,
                "best": {"monitor": self.settings.monitor, "value": self.early.best},
                "interrupted": self.stop_requested, "skipped_nonfinite_batches": self.skipped_batches,
                "alarms": [self.chance_alarm.fired] if self.chance_alarm.fired else [],
                "wall_time_s": time.time() - self.started}

    def _print_epoch(self, m: dict[str, float], improved: bool) -> None:
        self.logger.print(f"epoch {self.epoch:>3}/{self.settings.max_epochs}  loss {m['train/loss']:.4f}  "
                          f"acc {m['train/accuracy']:.3f}  val_loss {m['val/loss']:.4f}  "
                          f"val_acc {m['val/accuracy']:.3f}"
                          f"  lr {m['lr']:.2e}  {m['train/samples_per_s']:.0f} samples/s" + ("  *" if improved else ""))

    # --- checkpoints --------------------------------------------------------------------------------------
    def checkpoint_payload(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            **self.contract,
            "model_state": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "classes": list(self.data.classes),
            "preprocessing": self.data.preprocessing,
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "early_stopping": self.early.state_dict(),
            "chance_alarm": self.chance_alarm.state_dict(),
            "rng": capture_rng(),
            "history": self.history,
            "seed": self.seed,
        }

    def save(self, name: str) -> Path | None:
        if not dist.is_main():
            return None
        return save_checkpoint(self.checkpoint_payload(), self.ckpt_dir / name)

    def resume(self, path: str | Path) -> None:
        """Continue from a checkpoint: weights, optimizer, schedule, scaler, counters, early stopping, RNG."""
        ckpt = load_checkpoint(path)
        if ckpt.get("task") != self.contract.get("task") or ckpt["model"] != self.contract["model"]:
            raise SignlipError(f"cannot resume from {path}: it was trained as task {ckpt.get('task')} with model "
                               f"{ckpt['model']['name']} {ckpt['model']['kwargs']} — resume with the same task "
                               f"and model")
        if list(ckpt["classes"]) != list(self.data.classes):
            raise SignlipError(f"cannot resume from {path}: its classes differ from the data's — resume on the "
                               f"same data")
        self.model.load_state_dict(ckpt["model_state"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["schedule"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.early.load_state_dict(ckpt["early_stopping"])
        self.chance_alarm.load_state_dict(ckpt.get("chance_alarm", {}))
        self.epoch, self.step, self.history = ckpt["epoch"], ckpt["step"], list(ckpt["history"])
        restore_rng(ckpt["rng"])
        best = Path(path).with_name("best.pt")
        if best.is_file():
            best_ckpt = load_checkpoint(best)
            self.best_state = best_ckpt["model_state"]
            if dist.is_main() and best.resolve() != (self.ckpt_dir / "best.pt").resolve():
                save_checkpoint(best_ckpt, self.ckpt_dir / "best.pt")  # the new run folder is self-contained
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
