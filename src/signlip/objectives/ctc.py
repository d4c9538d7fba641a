"""Connectionist temporal classification: gloss sequences from per-frame outputs (continuous recognition).

The model returns (B, T', V+1) logits (blank = 0); its output length per sample is its input length (batch "mask")
divided by its temporal stride (`model.output_lengths(lengths)` when it has one, else the same lengths). A sentence
whose output is shorter than its target — counting the blank CTC needs between two equal neighbours — would make
the loss infinite: `setup` checks every training sentence before the first step and each batch is checked again,
so the run stops with one line naming the sample and the fix instead of turning NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from signlip.data.glosses import BLANK, required_frames
from signlip.errors import SignlipError
from signlip.registry import OBJECTIVES


def output_lengths(model: nn.Module, batch: dict[str, torch.Tensor], t_out: int) -> torch.Tensor:
    """(B,) output frames per sample: the input lengths through the model's stride, capped at its output length."""
    mask = batch.get("mask")
    lengths = mask.sum(1) if mask is not None else torch.full((batch["x"].shape[0],), t_out, dtype=torch.long)
    inner = getattr(model, "module", model)  # DDP / compiled wrappers keep the model in .module
    if hasattr(inner, "output_lengths"):
        lengths = inner.output_lengths(lengths)
    return lengths.to(torch.long).clamp(max=t_out)


def too_short(lengths: torch.Tensor | np.ndarray, targets: list[np.ndarray]) -> list[tuple[int, int, int]]:
    """(row, output frames, frames needed) of the samples CTC cannot align."""
    lengths = np.asarray(lengths)
    return [(i, int(n), required_frames(t)) for i, (n, t) in enumerate(zip(lengths, targets)) if n < required_frames(t)]


def short_message(what: str, frames: int, needed: int, n_glosses: int) -> str:
    return (f"{what}: the model emits {frames} output frame(s) for {n_glosses} gloss(es), fewer than the {needed} CTC "
            f"needs — use a model with less temporal striding, or longer clips / fewer glosses per sample, or remove "
            f"it")


@OBJECTIVES.register("ctc")
class CTCObjective:
    """`torch.nn.CTCLoss` (mean over sentences of the loss per target gloss) on log-softmax outputs.

    Returns {"loss", "outputs": (B, T', V+1) log-probabilities with frames past each output length set to a certain
    blank (so any decoder reads them as nothing), "blank_share": share of frames whose best output is the blank}."""

    def __init__(self, zero_infinity: bool = False):
        # zero_infinity=True hides a sentence CTC cannot align (its loss becomes 0); the length check makes that
        # case an error instead, so it stays False unless a user asks for it.
        self.zero_infinity = zero_infinity

    def setup(self, trainer: Any) -> None:
        """The length pre-flight over the whole train split, before any step."""
        check_lengths(trainer.model, trainer.data.splits["train"], trainer.transform, trainer.device)

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.from_logits(model, batch, model(batch["x"], batch.get("mask")))

    def from_logits(self, model: nn.Module, batch: dict[str, torch.Tensor],
                    logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """The objective on `model`'s (B, T', V+1) logits of `batch`, already computed (sequence distillation)."""
        log_probs = logits.float().log_softmax(-1)
        lengths = output_lengths(model, batch, log_probs.shape[1])
        v = log_probs.shape[-1] - 1
        # Glosses beyond the model's vocabulary (only in val/test) cannot be learnt: left out of the loss (the WER
        # counts them).
        targets = [row[:n][(row[:n] >= 1) & (row[:n] <= v)] for row, n in zip(batch["y"], batch["y_lengths"])]
        bad = too_short(lengths.cpu(), [t.cpu().numpy() for t in targets])
        if bad:
            row, frames, needed = bad[0]
            index = int(batch["index"][row]) if "index" in batch else row
            raise SignlipError(short_message(f"sample {index} of this batch", frames, needed, len(targets[row])))
        target_lengths = torch.as_tensor([len(t) for t in targets], dtype=torch.long)
        flat = torch.cat(targets) if targets else torch.zeros(0, dtype=torch.long)
        if int(target_lengths.sum()) == 0:  # nothing learnable in this batch (all glosses unseen): a zero loss
            loss = log_probs.sum() * 0.0
        else:
            loss = F.ctc_loss(log_probs.transpose(0, 1), flat.to(log_probs.device), lengths.cpu(),
                              target_lengths, blank=BLANK, reduction="mean", zero_infinity=self.zero_infinity)
        outputs, real = blank_padding(log_probs, lengths)
        with torch.no_grad():
            blank_share = ((log_probs.argmax(-1) == BLANK) & real).sum() / real.sum().clamp(min=1)
        return {"loss": loss, "outputs": outputs, "blank_share": blank_share.float()}


PADDED = -1e4  # log-probability of every non-blank output on a padded frame (`blank_padding`; `is_padded` reads it)


def is_padded(log_probs: torch.Tensor) -> torch.Tensor:
    """(…, T') True on the frames `blank_padding` made a certain blank."""
    return (log_probs[..., 1:] == PADDED).all(-1)


def blank_padding(log_probs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probabilities with every frame past its sentence's output length a certain blank — so any decoder reads
    the padded batch as the sentences alone —, the (B, T') mask of real frames)."""
    real = torch.arange(log_probs.shape[1], device=log_probs.device)[None, :] < lengths.to(log_probs.device)[:, None]
    certain_blank = torch.full_like(log_probs, PADDED)
    certain_blank[..., BLANK] = 0.0
    return torch.where(real[..., None], log_probs, certain_blank), real


def check_lengths(model: nn.Module, dataset: Any, transform: Any, device: torch.device, chunk: int = 64) -> None:
    """Every sample of `dataset` gets at least the output frames its target needs; else one SignlipError naming the
    first such file (and how many there are). The model runs once over each chunk to learn its output length."""
    short: list[str] = []
    first = ""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(dataset), chunk):
                idx = list(range(start, min(start + chunk, len(dataset))))
                raw = dataset.__getitems__(idx)
                batch = transform({k: v.to(device) for k, v in raw.items()}, training=False)
                t_out = model(batch["x"], batch.get("mask")).shape[1]
                lengths = output_lengths(model, batch, t_out).cpu()
                targets = [row[:n].numpy() for row, n in zip(raw["y"], raw["y_lengths"])]
                for row, frames, needed in too_short(lengths, targets):
                    path = dataset.paths[idx[row]]
                    short.append(path)
                    if not first:
                        first = short_message(path, frames, needed, len(targets[row]))
    finally:
        model.train(was_training)
    if short:
        more = f" ({len(short) - 1} more sample(s) too short)" if len(short) > 1 else ""
        raise SignlipError(first + more)
