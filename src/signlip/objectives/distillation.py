"""Knowledge distillation: a frozen teacher's soft targets train a student (Hinton et al., 2015).

loss = α·T²·KL(softmax(teacher/T) ‖ softmax(student/T)) + (1 − α)·CE(student, labels); the T² keeps the soft
term's gradients on the scale of the hard term's when T changes. Reference defaults: T = 3.0, α = 0.7.

The teacher lives in `DistillObjective`, a plain object, never inside the student: it is not a submodule of
anything the optimizer or the checkpoint sees, it stays in eval mode with `requires_grad=False`, and it runs
under `torch.no_grad` (bf16 autocast when the batch is on CUDA).

Teacher-logit caching (`cache_teacher=True`) computes the teacher's logits once per training sample and reuses
them every epoch. It is valid because the teacher is frozen and deterministic in eval mode (no dropout, BatchNorm
uses running statistics), and it changes the recipe in one way: the soft targets are the teacher's view of the
clean (un-augmented) clip, while the student sees augmented views of it — the usual "consistent teaching" variant.
It is not valid when the teacher should see the same random crop/flip as the student (teacher-on-augmented KD),
when the training clips themselves are resampled differently every epoch (e.g. random temporal crops done by the
dataset — then the cached logits belong to one crop only), or when the teacher changes during training.
Cached logits are keyed by `batch["index"]` (the sample index within the training split) and are used only for
training batches (`model.training`); validation batches always run the teacher.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from signlip.errors import SignlipError


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
            temperature: float = 3.0, alpha: float = 0.7, label_smoothing: float = 0.0) -> dict[str, torch.Tensor]:
    """Distillation loss on (B, C) logits and (B,) int64 labels.

    Returns {"loss": α·kd + (1−α)·ce, "kd": T²·KL(p_teacher ‖ p_student) (batch mean), "ce": cross-entropy}.
    Computed in float32 whatever the logits' dtype (autocast).
    """
    t = float(temperature)
    s_log = F.log_softmax(student_logits.float() / t, dim=-1)
    t_log = F.log_softmax(teacher_logits.float() / t, dim=-1)
    kd = F.kl_div(s_log, t_log, reduction="batchmean", log_target=True) * (t * t)
    ce = F.cross_entropy(student_logits.float(), labels, label_smoothing=label_smoothing)
    return {"loss": alpha * kd + (1.0 - alpha) * ce, "kd": kd, "ce": ce}


def class_list(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(map(str, names[:limit]))
    return f"[{shown}{', …' if len(names) > limit else ''}] ({len(names)} classes)"


def load_teacher(checkpoint: str | Path | Mapping[str, Any], classes: Sequence[str] | None = None,
                 device: str | torch.device | None = None) -> nn.Module:
    """Build the teacher from a signlip checkpoint (path or loaded dict), frozen and in eval mode.

    The checkpoint holds `{"model": {"name", "kwargs"}, "model_state", "classes", ...}`. When `classes` is given
    (the data's class names, in label order) the teacher's classes must equal them, else SignlipError.
    """
    from signlip.build import model_from_checkpoint

    if isinstance(checkpoint, Mapping):
        ckpt, name = checkpoint, "<in-memory checkpoint>"
    else:
        from signlip.checkpoint import load_checkpoint

        ckpt, name = load_checkpoint(checkpoint), str(checkpoint)
    if "model" not in ckpt or "model_state" not in ckpt:
        raise SignlipError(f"teacher checkpoint {name} has no model contract — pass a best.pt/last.pt written by "
                           "signlip train")
    teacher_classes = list(ckpt.get("classes") or [])
    if classes is not None and teacher_classes != list(classes):
        hint = ("same classes in another order — retrain the teacher on this manifest"
                if sorted(map(str, teacher_classes)) == sorted(map(str, classes))
                else "train the teacher on the same labels or pass a matching teacher.ckpt")
        raise SignlipError(f"teacher checkpoint {name} was trained on classes {class_list(teacher_classes)} but the "
                           f"data has {class_list(list(classes))} — {hint}")
    model = model_from_checkpoint(ckpt)
    if device is not None:
        model.to(device)
    return freeze(model)


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode and `requires_grad=False` on every parameter; returns `model`."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class DistillObjective:
    """Objective `(student, batch) -> {"loss", "outputs", "accuracy", "kd_loss", "ce_loss", "agreement",
    "teacher_acc"}` (accuracy: the student's on the labels; agreement: its top-1 equals the teacher's).

    Args:
        teacher: the teacher network; frozen here (eval, no grad) and kept outside the student.
        temperature, alpha, label_smoothing: see `kd_loss`.
        cache_teacher: reuse teacher logits per training sample (see the module docstring for when that is valid).
            Fill the cache with `precompute(...)` before training, or give training batches an un-augmented copy
            `batch["x_clean"]` (same normalisation as "x") so that a sample's logits are computed on first sight.
        renormalize: optional `(student_stats, teacher_stats)`, each `{"mean": [...], "std": [...]}` per channel,
            when the teacher was trained on a different input normalisation than the student's batches use
            (I3D: mean = std = 0.5; MobileNetV3: ImageNet statistics).
    """

    def __init__(self, teacher: nn.Module, temperature: float = 3.0, alpha: float = 0.7, label_smoothing: float = 0.0,
                 cache_teacher: bool = False,
                 renormalize: tuple[Mapping[str, Sequence[float]], Mapping[str, Sequence[float]]] | None = None):
        # A plain attribute of a plain object: no nn.Module ever registers the teacher as a submodule, so it is
        # neither in the student's parameters()/state_dict() nor in the optimizer.
        self.teacher = freeze(teacher)
        self.temperature = temperature
        self.alpha = alpha
        self.label_smoothing = label_smoothing
        self.cache_teacher = cache_teacher
        self._cache: dict[int, torch.Tensor] = {}  # sample index → (C,) float32 logits on CPU
        self._affine: tuple[torch.Tensor, torch.Tensor] | None = None
        if renormalize is not None:
            src, dst = renormalize
            s_mean, s_std = torch.tensor(src["mean"]), torch.tensor(src["std"])
            d_mean, d_std = torch.tensor(dst["mean"]), torch.tensor(dst["std"])
            # x_teacher = (x·s_std + s_mean − d_mean) / d_std = x·scale + shift, per channel.
            self._affine = (s_std / d_std, (s_mean - d_mean) / d_std)

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path | Mapping[str, Any], classes: Sequence[str] | None = None,
                        **kwargs: Any) -> DistillObjective:
        """`load_teacher(checkpoint, classes)` wrapped in an objective; kwargs go to the constructor."""
        return cls(load_teacher(checkpoint, classes), **kwargs)

    def setup(self, trainer: Any) -> None:
        """Called once by `Trainer.fit`: put the teacher on the training device and, with `cache_teacher`, compute
        its logits for every training clip on the un-augmented view (`trainer.transform(..., training=False)`)."""
        import time

        self.teacher.to(trainer.device)
        if not self.cache_teacher:
            return
        started = time.perf_counter()
        train = trainer.data.splits["train"]
        batch_size = getattr(trainer.loaders["train"], "batch_size", None) or 8
        n = self.precompute(train, trainer.transform, batch_size=max(batch_size, 8), device=trainer.device)
        trainer.logger.print(f"distill: cached teacher logits for {n} training clips (un-augmented view) in "
                             f"{time.perf_counter() - started:.1f} s")

    @property
    def cached(self) -> int:
        """Number of samples whose teacher logits are cached."""
        return len(self._cache)

    def clear_cache(self) -> None:
        self._cache.clear()

    @torch.no_grad()
    def teacher_logits(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Run the frozen teacher on x (B, C, T, H, W) → float32 logits (B, num_classes), no graph."""
        teacher = self.teacher
        if teacher.training:  # someone called .train() on it; a frozen teacher stays deterministic
            teacher.eval()
        first = next(teacher.parameters(), None)
        if first is not None and first.device != x.device:
            teacher.to(x.device)
        if self._affine is not None:
            shape = (1, -1) + (1,) * (x.dim() - 2)  # per-channel on dim 1
            scale, shift = (t.to(x.device, x.dtype).view(shape) for t in self._affine)
            x = x * scale + shift
        amp = torch.autocast("cuda", dtype=torch.bfloat16) if x.device.type == "cuda" else nullcontext()
        with amp:
            return teacher(x, mask).float()

    def _cached_logits(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Teacher logits for a training batch from the cache, filling misses from batch["x_clean"]."""
        index = batch["index"].tolist()
        missing = [i for i, k in enumerate(index) if k not in self._cache]
        if missing:
            if "x_clean" not in batch:
                raise SignlipError(f"teacher-logit cache has no entry for training sample {index[missing[0]]} and the "
                                   "batch has no un-augmented 'x_clean' — call DistillObjective.precompute(train data, "
                                   "batch transform) before training, or set distill.cache_teacher=false")
            rows = torch.tensor(missing, device=batch["x_clean"].device)
            mask = batch.get("mask")
            logits = self.teacher_logits(batch["x_clean"][rows], mask[rows] if mask is not None else None)
            for i, row in zip(missing, logits.cpu()):
                self._cache[index[i]] = row
        return torch.stack([self._cache[k] for k in index])

    def __call__(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x, y, mask = batch["x"], batch["y"], batch.get("mask")
        logits = model(x, mask)  # (B, num_classes), with grad
        if self.cache_teacher and model.training:
            t_logits = self._cached_logits(batch).to(logits.device)
        else:
            t_logits = self.teacher_logits(x, mask)
        parts = kd_loss(logits, t_logits, y, self.temperature, self.alpha, self.label_smoothing)
        with torch.no_grad():
            t_pred = t_logits.argmax(-1)
            agreement = (logits.argmax(-1) == t_pred).float().mean()
            teacher_acc = (t_pred == y).float().mean()
            accuracy = (logits.argmax(-1) == y).float().mean()
        return {"loss": parts["loss"], "outputs": logits, "accuracy": accuracy, "kd_loss": parts["kd"].detach(),
                "ce_loss": parts["ce"].detach(), "agreement": agreement, "teacher_acc": teacher_acc}

    @torch.no_grad()
    def precompute(self, source: Any, transform: nn.Module | None = None, batch_size: int = 8,
                   device: str | torch.device | None = None) -> int:
        """Fill the cache from un-augmented training data; returns the number of cached samples.

        `source` is a split dataset with `__getitems__` (see `signlip.data.base.BatchDataset`) or any iterable of
        batch dicts (a DataLoader). `transform` is the data's BatchTransform, called with `training=False` (so no
        augmentation, only conversion and normalisation). Batches must carry "index" (sample index in the split);
        for a dataset without it, the positions used to fetch the batch are taken.
        """
        device = torch.device(device) if device is not None else next(self.teacher.parameters()).device
        for batch in self._batches(source, batch_size):
            batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
            if transform is not None:
                batch = transform(batch, training=False)
            logits = self.teacher_logits(batch["x"], batch.get("mask")).cpu()
            for k, row in zip(batch["index"].tolist(), logits):
                self._cache[int(k)] = row
        return len(self._cache)

    @staticmethod
    def _batches(source: Any, batch_size: int) -> Iterable[dict[str, Any]]:
        if hasattr(source, "__getitems__") and hasattr(source, "__len__"):
            for start in range(0, len(source), batch_size):
                idx = list(range(start, min(start + batch_size, len(source))))
                batch = dict(source.__getitems__(idx))
                batch.setdefault("index", torch.tensor(idx, dtype=torch.int64))
                yield batch
        else:
            yield from source


# --- a teacher checkpoint against the student's data (signlip.objectives.distill_run assembles the run) -------
def check_teacher(ckpt: Mapping[str, Any], path: str, data: Any) -> None:
    """Refuse a teacher whose classes or preprocessing fingerprint differ from the student's data (SignlipError)."""
    from signlip.data.cache import check_fingerprint

    teacher_classes, classes = list(ckpt.get("classes") or []), list(data.classes)
    if teacher_classes != classes:
        hint = ("the same classes in another order — retrain the teacher on this manifest"
                if sorted(map(str, teacher_classes)) == sorted(map(str, classes))
                else "distill on the teacher's data or train a teacher on these labels")
        raise SignlipError(f"teacher checkpoint {path} was trained on classes {class_list(teacher_classes)} but the "
                           f"data has {class_list(classes)} — {hint}")
    boundary = bool((ckpt.get("preprocessing") or {}).get("word_boundary"))
    if boundary != bool(data.preprocessing.get("word_boundary")):
        raise SignlipError(f"teacher checkpoint {path} was trained {'with' if boundary else 'without'} word "
                           f"boundaries but the student's data has them {'off' if boundary else 'on'} — set "
                           f"data.word_boundary={str(boundary).lower()}")
    expected = (ckpt.get("preprocessing") or {}).get("fingerprint")
    found = data.preprocessing.get("fingerprint")
    if expected is not None and found is not None:
        try:
            check_fingerprint(expected, found, "the student's data")
        except SignlipError as exc:
            raise SignlipError(f"teacher checkpoint {path}: {exc} (the teacher must see clips prepared as it was "
                               f"trained: same fps, n_frames, size, colour, ROI)") from None
