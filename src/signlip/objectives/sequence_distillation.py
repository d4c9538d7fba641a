"""Sequence-level distillation: a frozen CTC teacher's per-frame posteriors train a CTC student (continuous signing).

loss = α·T²·KL(p_teacher ‖ p_student) + (1 − α)·CTC(student, glosses), the KL taken per student frame on the
softmaxes at temperature T and averaged over the real (unpadded) student frames; T = 3.0, α = 0.7 (the reference's
distillation recipe). The CTC term and the padding are `CTCObjective`'s (`from_logits`: loss, length check, blank
padding of the outputs, `output_lengths` through the model's stride); the teacher is frozen, in eval mode and run
without grad by the classification distillation's `DistillObjective.teacher_logits`.

Time alignment. Teacher and student may emit at different strides (I3D: one output per 8 frames; MobileNetV3: one
per frame). Each sample's teacher distributions over its Lt real steps are resampled onto the student's Ls real
steps by linear interpolation with frame centres aligned (`F.interpolate(mode="linear", align_corners=False)`
semantics: student step j reads teacher position (j + ½)·Lt/Ls − ½, clamped to the ends) and renormalised. The
probabilities (at temperature T) are interpolated, not the log-probabilities: a mixture of two distributions is a
distribution (the renormalisation only removes rounding), and at a gloss boundary it says "half this gloss, half
the next" — the geometric mean that interpolating log-probabilities gives would push both spikes of CTC's peaky
posteriors down and hand the mass to whatever the two frames happen to agree on. Equal lengths map frame to frame.

Teacher-output cache (`cache_teacher=True`, `distill.cache_teacher=true`): the teacher runs once over the train
split before the first step, on the un-augmented sentences batched by length, and each sentence's real output steps
(Lt, V+1) are kept under its sample index; training batches then read them instead of running the teacher (it costs
several times the student: docs/benchmarks.md). Valid because the teacher is frozen and deterministic, and the
alignment above needs only each sample's real steps: spatial augmentation does not change a sentence's length, and
temporal resampling (landmark augmentation) stretches it uniformly, which the linear alignment follows. As for
classification it is "consistent teaching" (the teacher sees the clean view, the student an augmented one).
Validation batches always run the teacher.

`signlip distill ... task=<a task of gloss sentences>` builds this objective (`signlip.objectives.distill_run`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from signlip.errors import SignlipError
from signlip.objectives.ctc import CTCObjective, check_lengths, output_lengths
from signlip.objectives.distillation import DistillObjective, check_teacher, load_teacher
from signlip.registry import OBJECTIVES


def align_time(probs: torch.Tensor, lengths: torch.Tensor, target_lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """Resample per-sample distributions over time: probs (B, Tt, V) with `lengths` (B,) real steps → (B, steps, V)
    whose first `target_lengths` (B,) steps are the linear interpolation (frame centres aligned) of the real ones,
    renormalised; steps past a sample's target length repeat its last real step (the objective masks them)."""
    b, t_in, _ = probs.shape
    src = lengths.to(probs.device, torch.float32).clamp(min=1)[:, None]
    dst = target_lengths.to(probs.device, torch.float32).clamp(min=1)[:, None]
    j = torch.arange(steps, device=probs.device, dtype=torch.float32)[None, :]
    pos = ((j + 0.5) * src / dst - 0.5).clamp(min=0)
    pos = torch.minimum(pos, src - 1)  # (B, steps), in [0, Lt − 1]
    left = pos.floor().long().clamp(max=t_in - 1)
    right = (left + 1).clamp(max=(src.long() - 1).clamp(max=t_in - 1))
    w = (pos - left.float())[..., None]
    rows = torch.arange(b, device=probs.device)[:, None]
    mixed = probs[rows, left] * (1 - w) + probs[rows, right] * w
    return mixed / mixed.sum(-1, keepdim=True).clamp_min(1e-12)


@OBJECTIVES.register("sequence_distill")
class SequenceDistillObjective:
    """Objective `(student, batch) -> {"loss", "outputs", "blank_share", "kd_loss", "ctc_loss", "agreement"}`
    (outputs and blank_share as `CTCObjective`'s; agreement: share of real student frames whose best output is the
    aligned teacher's).

    Args:
        teacher: a CTC teacher (a module, or a signlip checkpoint path / loaded dict of a sequence-output model over
            the same glosses); frozen here and kept outside the student.
        temperature, alpha: T and α of the loss above.
        zero_infinity: `CTCObjective`'s.
        renormalize: `DistillObjective`'s (a teacher trained on another input normalisation).
        cache_teacher: run the teacher once over the train split and reuse its outputs (the module docstring).
    """

    def __init__(self, teacher: nn.Module | str | Path | Mapping[str, Any] | None = None, temperature: float = 3.0,
                 alpha: float = 0.7, zero_infinity: bool = False,
                 renormalize: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None, cache_teacher: bool = False):
        if teacher is None:
            raise SignlipError("objective=sequence_distill has no teacher — pass objective.teacher=<best.pt of a "
                               "signlip train run with model.output=sequence and objective=ctc>")
        if not 0.0 <= alpha <= 1.0:
            raise SignlipError(f"objective.alpha={alpha} — choose a value in [0, 1]")
        if temperature <= 0:
            raise SignlipError(f"objective.temperature={temperature} — choose a value > 0")
        self._teacher_ckpt: tuple[Mapping[str, Any], str] | None = None
        if not isinstance(teacher, nn.Module):
            from signlip.checkpoint import load_checkpoint

            ckpt = teacher if isinstance(teacher, Mapping) else load_checkpoint(teacher)
            self._teacher_ckpt = (ckpt, "<in-memory checkpoint>" if isinstance(teacher, Mapping) else str(teacher))
            teacher = load_teacher(ckpt)
        # The classification distillation's teacher handling: frozen, eval mode, no grad, follows the batch's device.
        self.teaching = DistillObjective(teacher, temperature=temperature, alpha=alpha, renormalize=renormalize)
        self.teacher = self.teaching.teacher
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.ctc = CTCObjective(zero_infinity=zero_infinity)
        self.cache_teacher = bool(cache_teacher)
        self._cache: dict[int, torch.Tensor] = {}  # train sample index → (Lt, V+1) float32 teacher logits on CPU

    def setup(self, trainer: Any) -> None:
        """The teacher must know the data's glosses; then CTC's length pre-flight for the student, and for the
        teacher too (its stride may be coarser)."""
        if self._teacher_ckpt is not None:
            check_teacher(*self._teacher_ckpt, trainer.data)
        self.teaching.setup(trainer)  # teacher onto the training device
        self.ctc.setup(trainer)
        check_lengths(self.teacher, trainer.data.splits["train"], trainer.transform, trainer.device,
                      len(trainer.data.classes))
        if self.cache_teacher:
            import time

            started = time.perf_counter()
            n = self.precompute(trainer.data.splits["train"], trainer.transform, trainer.device)
            trainer.logger.print(f"distill: cached teacher outputs for {n} training sentences (un-augmented) in "
                                 f"{time.perf_counter() - started:.1f} s")

    @torch.no_grad()
    def precompute(self, dataset: Any, transform: Any, device: torch.device, batch_size: int = 8) -> int:
        """Teacher outputs of every sample of `dataset` (a split with `__getitems__`; `lengths` when it has them,
        so that batches hold sentences of similar length), un-augmented; returns how many are cached."""
        lengths = getattr(dataset, "lengths", None)
        order = sorted(range(len(dataset)), key=lambda i: int(lengths[i])) if lengths is not None \
            else list(range(len(dataset)))
        for start in range(0, len(order), batch_size):
            idx = order[start: start + batch_size]
            batch = transform({k: v.to(device) for k, v in dataset.__getitems__(idx).items()}, training=False)
            logits = self.teaching.teacher_logits(batch["x"], batch.get("mask"))
            steps = output_lengths(self.teacher, batch, logits.shape[1]).cpu()
            for row, i in enumerate(idx):
                self._cache[i] = logits[row, : int(steps[row])].cpu()
        return len(self._cache)

    def _teacher_outputs(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(teacher logits (B, Tt, V+1), their real steps (B,)): from the cache for training batches, else run."""
        if self.cache_teacher and model.training and self._cache:
            rows = [self._cache[i] for i in batch["index"].tolist()]
            steps = torch.as_tensor([len(r) for r in rows], dtype=torch.long)
            logits = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
            return logits.to(batch["x"].device), steps
        t_logits = self.teaching.teacher_logits(batch["x"], batch.get("mask"))  # (B, Tt, V+1), no grad
        return t_logits, output_lengths(self.teacher, batch, t_logits.shape[1])

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = model(batch["x"], batch.get("mask"))  # (B, Ts, V+1), with grad
        result = self.ctc.from_logits(model, batch, logits)
        t_logits, t_lengths = self._teacher_outputs(model, batch)
        if t_logits.shape[-1] != logits.shape[-1]:
            raise SignlipError(f"the teacher emits {t_logits.shape[-1]} outputs per frame but the student "
                               f"{logits.shape[-1]} — distil from a teacher trained on the same glosses")
        s_lengths = output_lengths(model, batch, logits.shape[1]).to(logits.device)
        t_lengths = t_lengths.to(logits.device)
        t = self.temperature
        s_log = (logits.float() / t).log_softmax(-1)
        with torch.no_grad():
            p_teacher = align_time((t_logits / t).softmax(-1), t_lengths, s_lengths, logits.shape[1])
        real = torch.arange(logits.shape[1], device=logits.device)[None, :] < s_lengths[:, None]  # (B, Ts)
        # KL(p_t ‖ p_s) per frame; xlogy gives 0·log 0 = 0 for outputs the teacher rules out.
        kl = (torch.xlogy(p_teacher, p_teacher) - p_teacher * s_log).sum(-1)
        kd = (kl * real).sum() / real.sum().clamp(min=1) * (t * t)
        ctc_loss = result["loss"]
        with torch.no_grad():
            agree = ((logits.argmax(-1) == p_teacher.argmax(-1)) & real).sum() / real.sum().clamp(min=1)
        return {"loss": self.alpha * kd + (1.0 - self.alpha) * ctc_loss, "outputs": result["outputs"],
                "blank_share": result["blank_share"], "kd_loss": kd.detach(), "ctc_loss": ctc_loss.detach(),
                "agreement": agree.float()}
