"""Connectionist temporal classification: gloss sequences from per-frame outputs (continuous recognition).

The model returns (B, T', V+1) logits (blank = 0); its output length per sample is its input length (batch "mask")
divided by its temporal stride (`model.output_lengths(lengths)` when it has one, else the same lengths). A sentence
whose output is shorter than its target — counting the blank CTC needs between two equal neighbours — would make
the loss infinite: `setup` checks every train and val sentence before the first step, so the run stops with one
line naming the sample and the fix instead of turning NaN; in a batch, a sentence that augmentation (temporal
resampling) made too short — or one of new data being evaluated — is left out of the loss and counted
(`ctc_left_out`), and the WER still scores it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from signlip.data.glosses import BLANK
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
        """The length pre-flight over the train and val splits, before any step."""
        for split in ("train", "val"):
            if split in trainer.data.splits:
                check_lengths(trainer.model, trainer.data.splits[split], trainer.transform, trainer.device,
                              len(trainer.data.classes))

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.from_logits(model, batch, model(batch["x"], batch.get("mask")))

    def from_logits(self, model: nn.Module, batch: dict[str, torch.Tensor],
                    logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """The objective on `model`'s (B, T', V+1) logits of `batch`, already computed (sequence distillation).

        A sentence whose output is shorter than CTC needs is left out of the loss and counted in `ctc_left_out`:
        the pre-flight (`setup`) has refused such sentences of the un-augmented train and val splits with one line,
        so here it is augmentation (temporal resampling) that shortened one, or new data being evaluated — whose
        WER still counts it."""
        log_probs = logits.float().log_softmax(-1)
        lengths = output_lengths(model, batch, log_probs.shape[1]).cpu()
        y, y_lengths = batch["y"].cpu(), batch["y_lengths"].cpu()
        v = log_probs.shape[-1] - 1
        # Glosses beyond the model's vocabulary (only in val/test) cannot be learnt: left out of the loss (the WER
        # counts them).
        valid = (torch.arange(y.shape[1])[None, :] < y_lengths[:, None]) & (y >= 1) & (y <= v)
        target_lengths = valid.sum(1)
        keep = lengths >= needed_frames(y, valid)
        kept = keep & (target_lengths > 0)
        if bool(kept.any()):
            rows = kept.nonzero().squeeze(1)
            loss = F.ctc_loss(log_probs[rows.to(log_probs.device)].transpose(0, 1), y[rows][valid[rows]].to(
                log_probs.device), lengths[rows], target_lengths[rows], blank=BLANK, reduction="mean",
                zero_infinity=self.zero_infinity)
        else:  # nothing learnable in this batch: a zero loss that keeps the graph
            loss = log_probs.sum() * 0.0
        outputs, real = blank_padding(log_probs, lengths)
        with torch.no_grad():
            blank_share = ((log_probs.argmax(-1) == BLANK) & real).sum() / real.sum().clamp(min=1)
        return {"loss": loss, "outputs": outputs, "blank_share": blank_share.float(),
                "ctc_left_out": (~keep).float().mean()}


def needed_frames(y: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(B,) output frames CTC needs per padded target row (`required_frames`, vectorised): its valid glosses plus a
    blank between equal neighbours."""
    repeats = (y[:, 1:] == y[:, :-1]) & valid[:, 1:] & valid[:, :-1]
    return valid.sum(1) + repeats.sum(1)


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


def decoder_input(logits: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T', V+1) logits and each sample's output length → what the objective hands the evaluator and decoders:
    log-probabilities, every step past a sample's length a certain blank."""
    return blank_padding(logits.float().log_softmax(-1), lengths)[0]


def check_lengths(model: nn.Module, dataset: Any, transform: Any, device: torch.device,
                  n_glosses: int | None = None, chunk: int = 64) -> None:
    """Every sample of `dataset` gets at least the output frames its glosses (ids 1..`n_glosses`: the ones the model
    can emit) need; else one SignlipError naming the first such file (and how many there are). Output lengths come
    from the model's `output_lengths` when it has one, else from running it."""
    short: list[str] = []
    first = ""
    inner = getattr(model, "module", model)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(dataset), chunk):
                idx = list(range(start, min(start + chunk, len(dataset))))
                raw = dataset.__getitems__(idx)
                batch = transform({k: v.to(device) for k, v in raw.items()}, training=False)
                if hasattr(inner, "output_lengths") and batch.get("mask") is not None:
                    lengths = inner.output_lengths(batch["mask"].sum(1)).cpu()
                else:
                    lengths = output_lengths(model, batch, model(batch["x"], batch.get("mask")).shape[1]).cpu()
                y, y_lengths = raw["y"], raw["y_lengths"]
                valid = torch.arange(y.shape[1])[None, :] < y_lengths[:, None]
                if n_glosses is not None:
                    valid &= (y >= 1) & (y <= n_glosses)
                needed = needed_frames(y, valid)
                for row in (lengths < needed).nonzero().squeeze(1).tolist():
                    path = dataset.paths[idx[row]]
                    short.append(path)
                    if not first:
                        first = short_message(path, int(lengths[row]), int(needed[row]), int(valid[row].sum()))
    finally:
        model.train(was_training)
    if short:
        more = f" ({len(short) - 1} more sample(s) too short)" if len(short) > 1 else ""
        raise SignlipError(first + more)
