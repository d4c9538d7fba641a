"""Word (gloss) error rate for continuous recognition — jiwer's alignment, not a hand-written edit distance.

Figures: WER with a bootstrap 95% interval over sentences, substitutions / deletions / insertions, sentence error
rate, the share of sentences decoded as nothing, a per-gloss error table, and the WER of the trivial baseline that
answers every sentence with the train split's most frequent one. The stuck-at-blank alarm is CTC's stuck-at-chance:
the model emits (almost) only blanks, or its WER stays at or above 100%, while the training loss falls.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from signlip import distributed as dist
from signlip.data.glosses import beam_decode, greedy_decode, to_text
from signlip.errors import SignlipError
from signlip.evaluators import Alarm
from signlip.objectives.ctc import is_padded
from signlip.registry import EVALUATORS

BLANK_CAUSES = ("the model's output is too short or too strided for its sentences (CTC then prefers blanks)",
                "learning rate too low (or too high) for CTC, or too few epochs: CTC starts by emitting only blanks "
                "and breaks out later", "inputs constant, all-NaN or wrongly normalised",
                "glosses not aligned with their videos (a mis-joined manifest)")
COUNTS = ("hits", "substitutions", "deletions", "insertions")
ALIGNMENT_EXAMPLES = 4  # sentences drawn in alignment_<split>.png


def sentence_counts(refs: list[str], hyps: list[str]) -> np.ndarray:
    """(N, 4) hits, substitutions, deletions, insertions per sentence (jiwer)."""
    import jiwer

    out = np.zeros((len(refs), 4), np.int64)
    for i, (r, h) in enumerate(zip(refs, hyps)):
        if not r.strip():  # jiwer refuses an empty reference; every hypothesis word is then an insertion
            out[i, 3] = len(h.split())
            continue
        o = jiwer.process_words(r, h)
        out[i] = (o.hits, o.substitutions, o.deletions, o.insertions)
    return out


def wer_of(counts: np.ndarray) -> float:
    ref_words = counts[:, :3].sum()
    return float(counts[:, 1:].sum() / ref_words) if ref_words else 0.0


def bootstrap_interval(counts: np.ndarray, n_boot: int = 1000, seed: int = 0) -> list[float]:
    """95% percentile interval of the WER over sentences resampled with replacement (errors and reference words are
    summed per resample: long sentences weigh more, as in the WER itself)."""
    if len(counts) == 0:
        return [0.0, 0.0]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(counts), (n_boot, len(counts)))
    errors = counts[:, 1:].sum(1)[idx].sum(1)
    words = counts[:, :3].sum(1)[idx].sum(1)
    wers = errors / np.maximum(words, 1)
    return [float(np.percentile(wers, 2.5)), float(np.percentile(wers, 97.5))]


def per_gloss_errors(refs: list[str], hyps: list[str]) -> dict[str, dict[str, int]]:
    """Per reference gloss: occurrences, substituted, deleted; per hypothesis gloss: inserted."""
    import jiwer

    table: dict[str, Counter] = {}
    for r, h in zip(refs, hyps):
        if not r.strip():
            continue
        o = jiwer.process_words(r, h)
        ref, hyp = o.references[0], o.hypotheses[0]
        for g in ref:
            table.setdefault(g, Counter())["count"] += 1
        for chunk in o.alignments[0]:
            if chunk.type == "substitute":
                for g in ref[chunk.ref_start_idx:chunk.ref_end_idx]:
                    table[g]["substituted"] += 1
            elif chunk.type == "delete":
                for g in ref[chunk.ref_start_idx:chunk.ref_end_idx]:
                    table[g]["deleted"] += 1
            elif chunk.type == "insert":
                for g in hyp[chunk.hyp_start_idx:chunk.hyp_end_idx]:
                    table.setdefault(g, Counter())["inserted"] += 1
    keys = ("count", "substituted", "deleted", "inserted")
    return {g: {k: int(c[k]) for k in keys} for g, c in sorted(table.items())}


def alignment_figure(examples: list[tuple[np.ndarray, str, str]], classes: list[str], out: Path) -> Path:
    """What the model sees over time: per sentence, the CTC posteriors (outputs × frames, blank at the top row) with
    the reference and the decoding in the title — a model stuck at blank shows one bright top row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(examples), 1, figsize=(10, 2.2 * len(examples) + 0.4), squeeze=False)
    labels = ["<blank>", *classes]
    for ax, (probs, ref, hyp) in zip(axes[:, 0], examples):
        ax.imshow(probs.T, aspect="auto", cmap="magma", vmin=0, vmax=1, interpolation="nearest")
        ax.set_yticks(range(len(labels)), labels if len(labels) <= 30 else [""] * len(labels), fontsize=5)
        ax.set_title(f"reference: {ref}\ndecoded:   {hyp or '(nothing)'}", fontsize=7, loc="left", family="monospace")
    axes[-1, 0].set_xlabel("output frame")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


class BlankAlarm:
    """Fires once when, from `after_epochs` on, the training loss has fallen but the validation output is (almost)
    empty (`empty_fraction` of sentences decoded as nothing) or its WER is ≥ 100% — and no epoch so far has done
    better than `1 − progress` WER. CTC runs begin by emitting only blanks and break out later (seen: epoch 9 of the
    built-in sentences, still 98% blank at epoch 11); a run whose WER has started to fall is on its way, not stuck."""

    def __init__(self, after_epochs: int = 10, empty_fraction: float = 0.9, progress: float = 0.05,
                 enabled: bool = True):
        self.after_epochs, self.empty_fraction, self.progress, self.enabled = (
            after_epochs, empty_fraction, progress, enabled)
        self.fired: str | None = None

    def check(self, epoch: int, wer: float, empty_share: float, train_losses: list[float],
              best_wer: float | None = None) -> str | None:
        if not self.enabled or self.fired or epoch < self.after_epochs:
            return None
        if not (len(train_losses) >= 2 and train_losses[-1] < 0.9 * train_losses[0]):
            return None
        if min(wer, best_wer if best_wer is not None else wer) < 1 - self.progress:
            return None
        if empty_share >= self.empty_fraction:
            self.fired = (f"the model decodes {empty_share:.0%} of validation sentences as nothing (only blanks) after "
                          f"{epoch} epochs while the training loss fell from {train_losses[0]:.3f} to "
                          f"{train_losses[-1]:.3f}")
        elif wer >= 1.0:
            self.fired = (f"validation WER {wer:.1%} is still ≥ 100% after {epoch} epochs while the training loss fell "
                          f"from {train_losses[0]:.3f} to {train_losses[-1]:.3f}")
        return self.fired


@EVALUATORS.register("wer")
class WerEvaluator:
    """Decodes (B, T', V+1) CTC log-probabilities — greedily (best path) or by beam search (`decoder="beam"`, the
    most probable gloss sequence summed over its paths; needs signlip[ctc]) — and scores them against batch["y"]."""

    monitor, mode = "wer", "min"
    headline = ("wer",)

    def __init__(self, data: Any, alarm: dict[str, Any] | None = None, bootstrap: int = 1000,
                 decoder: str = "greedy", beam_width: int = 10):
        self.classes = list(data.classes)
        self.names = self.classes + list(getattr(data, "unseen", []))  # references may hold unseen glosses
        self.alarm = BlankAlarm(**(alarm or {}))
        self.bootstrap = bootstrap
        if decoder not in ("greedy", "beam"):
            raise SignlipError(f"evaluator.decoder={decoder!r} is not a CTC decoder — use greedy or beam")
        self.decoder, self.beam_width = decoder, beam_width
        if decoder == "beam":  # a missing library stops the run here, before training, not at the first validation
            beam_decode(torch.zeros(1, 1, len(self.classes) + 1), beam_width)
        self.baseline = self._most_frequent_sentence(data)
        self.last: dict[str, Any] | None = None
        self.reset()

    def _most_frequent_sentence(self, data: Any) -> str | None:
        """The train split's most frequent sentence (from the data's preprocessing, so a checkpoint keeps it)."""
        return (getattr(data, "preprocessing", None) or {}).get("most_frequent_sentence") or None

    def reset(self) -> None:
        self._hyp_ids: list[list[int]] = []
        self._ref_ids: list[list[int]] = []
        self._index: list[torch.Tensor] = []
        self._examples: list[tuple[np.ndarray, str, str]] = []  # the first sentences' posteriors, for the picture
        self._refs: list[str] = []  # of the last compute(), every rank's sentences in dataset order
        self._hyps: list[str] = []

    def update(self, outputs: torch.Tensor, batch: dict[str, torch.Tensor]) -> None:
        decoded = beam_decode(outputs, self.beam_width) if self.decoder == "beam" else greedy_decode(outputs)
        refs = [row[:n].tolist() for row, n in zip(batch["y"].cpu(), batch["y_lengths"].cpu())]
        self._hyp_ids += decoded
        self._ref_ids += refs
        self._index.append(batch["index"])
        for lp, r, h in zip(outputs, refs, decoded):
            if len(self._examples) >= ALIGNMENT_EXAMPLES:
                break
            real = ~is_padded(lp)  # not part of the sentence
            self._examples.append((lp[real].exp().float().cpu().numpy(), to_text(r, self.names),
                                   to_text(h, self.classes)))

    def compute(self) -> dict[str, float]:
        """Gathers every rank's decodings and references by sample index (DDP), then scores them."""
        device = self._index[0].device
        width = torch.tensor(max([len(s) for s in self._hyp_ids + self._ref_ids] + [1]), device=device)
        if dist.world_size() > 1:
            torch.distributed.all_reduce(width, op=torch.distributed.ReduceOp.MAX)

        def padded(rows: list[list[int]]) -> torch.Tensor:
            out = torch.full((len(rows), int(width)), -1, dtype=torch.long)
            for i, r in enumerate(rows):
                out[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
            return out.to(device)

        _, hyps, refs = dist.gather_samples(torch.cat(self._index), padded(self._hyp_ids), padded(self._ref_ids))
        self._hyps = [to_text([i for i in row if i > 0], self.classes) for row in hyps.cpu().tolist()]
        self._refs = [to_text([i for i in row if i > 0], self.names) for row in refs.cpu().tolist()]
        counts = sentence_counts(self._refs, self._hyps)
        self.last = self._figures(counts, np.asarray([h == "" for h in self._hyps]))
        return {"wer": self.last["wer"], "ser": self.last["ser"], "empty_share": self.last["empty_share"]}

    def predictions(self) -> tuple[list[str], list[str]]:
        """(decoded, reference) gloss sentences of the last compute(), in dataset order, gathered across ranks."""
        if self.last is None:
            raise RuntimeError("predictions() is only known after compute()")
        return list(self._hyps), list(self._refs)

    def _figures(self, counts: np.ndarray, empty: np.ndarray) -> dict[str, Any]:
        n_ref = int(counts[:, :3].sum())
        return {"n_sentences": int(len(counts)), "n_reference_glosses": n_ref, "wer": wer_of(counts),
                "ser": float((counts[:, 1:].sum(1) > 0).mean()) if len(counts) else 0.0,
                "empty_share": float(empty.mean()) if len(empty) else 0.0,
                **{k: int(counts[:, i].sum()) for i, k in enumerate(COUNTS)}}

    def check_alarm(self, epoch: int, history: list[dict[str, float]]) -> Alarm | None:
        if self.last is None:
            return None
        earlier = [h["val/wer"] for h in history if "val/wer" in h]
        message = self.alarm.check(epoch, self.last["wer"], self.last["empty_share"],
                                   [h["train/loss"] for h in history if "train/loss" in h],
                                   min(earlier) if earlier else None)
        return Alarm("STUCK AT BLANK", message, BLANK_CAUSES) if message else None

    def fired_alarms(self) -> list[str]:
        return [self.alarm.fired] if self.alarm.fired else []

    def images(self) -> dict[str, np.ndarray]:
        return {}

    def report(self, split: str, out_dir: str | Path, logger, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """WER with its bootstrap interval, S/D/I, SER, baseline, per-gloss errors → JSON + CSVs, and a console
        summary; the sentences with their decoding in `decoded_<split>.csv`."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        counts = sentence_counts(self._refs, self._hyps)
        report = self._figures(counts, np.asarray([h == "" for h in self._hyps]))
        report["wer_ci"] = bootstrap_interval(counts, self.bootstrap)
        if self.baseline is not None:
            report["baseline"] = "most frequent train sentence"
            report["baseline_wer"] = wer_of(sentence_counts(self._refs, [self.baseline] * len(self._refs)))
        report["per_gloss"] = per_gloss_errors(self._refs, self._hyps)
        report.update({"split": split, **(extra or {})})
        files = {"json": out_dir / f"evaluation_{split}.json", "decoded_csv": out_dir / f"decoded_{split}.csv",
                 "per_gloss_csv": out_dir / f"gloss_errors_{split}.csv"}
        with files["decoded_csv"].open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["reference", "hypothesis", *COUNTS])
            for r, h, c in zip(self._refs, self._hyps, counts):
                writer.writerow([r, h, *c.tolist()])
        with files["per_gloss_csv"].open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["gloss", "count", "substituted", "deleted", "inserted", "error_rate"])
            for g, row in report["per_gloss"].items():
                errors = row["substituted"] + row["deleted"]
                writer.writerow([g, *row.values(), f"{errors / row['count']:.3f}" if row["count"] else ""])
        if self._examples:
            files["alignment_png"] = out_dir / f"alignment_{split}.png"
            alignment_figure(self._examples, self.classes, files["alignment_png"])
        report["files"] = {k: str(v) for k, v in files.items()}
        files["json"].write_text(json.dumps(report, indent=2))
        self._print(report, logger)
        return report

    def _print(self, report: dict[str, Any], logger) -> None:
        from rich.table import Table

        table = Table(title=f"{report['split']} split — {report['n_sentences']} sentences, worst glosses")
        for col in ("gloss", "count", "substituted", "deleted", "inserted"):
            table.add_column(col, justify="right" if col != "gloss" else "left")
        errors = {g: r["substituted"] + r["deleted"] + r["inserted"] for g, r in report["per_gloss"].items()}
        worst = sorted(((g, report["per_gloss"][g]) for g, e in errors.items() if e),
                       key=lambda kv: -errors[kv[0]])[:10]
        for g, row in worst:
            table.add_row(g, *(str(row[k]) for k in ("count", "substituted", "deleted", "inserted")))
        logger.print(table)
        lo, hi = report["wer_ci"]
        base = f"  baseline (most frequent train sentence) {report['baseline_wer']:.1%}" if "baseline_wer" in report \
            else ""
        logger.print(f"[bold]{report['split']} WER {report['wer']:.1%}[/bold] (95% CI {lo:.1%}–{hi:.1%}; "
                     f"S {report['substitutions']} D {report['deletions']} I {report['insertions']} over "
                     f"{report['n_reference_glosses']} glosses)  SER {report['ser']:.1%}  empty "
                     f"{report['empty_share']:.1%}{base}")

    def summary(self, report: dict[str, Any]) -> tuple[str, str]:
        return f"{report['split']} WER", f"{report['wer']:.1%}"

    def state_dict(self) -> dict[str, Any]:
        return {"fired": self.alarm.fired}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.alarm.fired = state.get("fired")
