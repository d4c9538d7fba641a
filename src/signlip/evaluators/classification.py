"""Classification metrics: accuracy with a Wilson interval, balanced accuracy with an interval, macro P/R/F1,
top-k, per-class
table, confusion matrix (PNG + CSV), JSON — and the stuck-at-chance alarm. Metrics come from scikit-learn."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from signlip import distributed as dist
from signlip.evaluators import Alarm
from signlip.registry import EVALUATORS

# Half-width of the 95% interval above which the test set is too small for the precision people usually claim.
CI_WARN_HALF_WIDTH = 0.05
Z95 = 1.959963984540054  # the two-sided 95% normal quantile
CHANCE_CAUSES = ("labels not aligned with inputs (shuffled or mis-joined manifest)", "inputs constant, all-NaN or "
                 "wrongly normalised", "frames or landmarks in the wrong order or layout", "learning rate far too "
                 "high or too low", "val classes or speakers unlike train (leakage or a broken split)")


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (95% by default).

    Unlike the bootstrap or the normal (Wald) interval it does not collapse to a point at 0 or 100%: 2 of 2 right
    gives 0.342–1.000, not 1.000–1.000 — at the edges is where small test sets live."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Exactly 0 / 1 at the edges (the formula gives them up to rounding).
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))


def balanced_accuracy_interval(correct: np.ndarray, support: np.ndarray, z: float = Z95) -> tuple[float, float]:
    """95% interval of balanced accuracy (the mean of per-class recalls k_c / n_c over the classes present): the
    balanced accuracy ± z·√(Σ_c p̃_c(1 − p̃_c)/(n_c + z²)) / C, clipped to [0, 1], with each class's variance taken at
    its Agresti–Coull recall p̃_c = (k_c + z²/2)/(n_c + z²) — as Agresti–Caffo do for a difference of proportions.

    Centred on the figure it qualifies (always inside it); the adjusted variances keep it open at 0 and 100% (2 of 2
    right, one a class → 0.692–1.000) where a bootstrap collapses; a rare class widens it however many samples the
    others have."""
    present = support > 0
    if not present.any():
        return 0.0, 1.0
    k, n = correct[present].astype(float), support[present].astype(float)
    adjusted = (k + z * z / 2) / (n + z * z)
    half = z * math.sqrt(float(np.sum(adjusted * (1 - adjusted) / (n + z * z)))) / len(k)
    centre = float(np.mean(k / n))
    return max(0.0, centre - half), min(1.0, centre + half)


def worst_half_width(n: int, z: float = Z95) -> float:
    """The largest half-width the Wilson interval can have on n samples, z / (2·√(n + z²)) at a proportion of 0.5:
    how precisely a split of n samples measures *any* accuracy. It depends on n alone, so a lucky 100% on a small
    split does not hide how small it is."""
    return z / (2 * math.sqrt(max(n, 0) + z * z))


def samples_for_half_width(half: float, z: float = Z95) -> int:
    """The fewest samples whose worst-case 95% half-width is at most `half`: z²/(4·half²) − z² (0.05 → 381)."""
    return max(1, math.ceil(z * z / (4 * half * half) - z * z))


def classification_report(logits: np.ndarray, targets: np.ndarray, classes: list[str], ci: bool = True,
                          top_k: tuple[int, ...] = (3, 5)) -> dict[str, Any]:
    """All evaluation figures as plain data (JSON-ready), from (N, C) logits and (N,) int targets."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, top_k_accuracy_score

    n_classes = len(classes)
    labels = list(range(n_classes))
    preds = logits.argmax(1)
    cm = confusion_matrix(targets, preds, labels=labels)
    precision, recall, f1, support = precision_recall_fscore_support(targets, preds, labels=labels, zero_division=0)
    present = support > 0  # macro averages over the classes this split holds
    correct = (preds == targets).astype(float)

    def macro(values: np.ndarray) -> float:
        return float(values[present].mean()) if present.any() else 0.0

    report: dict[str, Any] = {
        "n_samples": int(len(targets)),
        "accuracy": float(correct.mean()) if len(correct) else 0.0,
        "balanced_accuracy": macro(recall),
        "macro_precision": macro(precision),
        "macro_recall": macro(recall),
        "macro_f1": macro(f1),
        "chance": 1.0 / n_classes,
        "per_class": {c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                          "support": int(support[i])} for i, c in enumerate(classes)},
        "confusion_matrix": cm.tolist(),
    }
    for k in top_k:
        if n_classes > k and len(targets):
            report[f"top{k}_accuracy"] = float(top_k_accuracy_score(targets, logits, k=k, labels=labels))
    if ci and len(correct):
        report["accuracy_ci"] = list(wilson_interval(int(correct.sum()), len(correct)))
        report["balanced_accuracy_ci"] = list(balanced_accuracy_interval(np.diag(cm), support))
    return report


def small_split_warning(n: int, split: str, ci: tuple[float, float] | list[float]) -> str | None:
    """The warning for a split too small to measure accuracy to ±`CI_WARN_HALF_WIDTH`, or None.

    The rule: the split is judged by the worst-case half-width of its 95% Wilson interval, which depends on n alone —
    80 samples warn at 100% as they do at 71%; an accuracy near 0 or 1 narrows *its* interval, but the same split
    would measure the next model no better."""
    half = worst_half_width(n)
    if half <= CI_WARN_HALF_WIDTH:
        return None
    lo, hi = ci
    return (f"{n} {split} samples measure an accuracy only to about ±{half:.3f} (95%, whatever the model scores; this "
            f"one: {lo:.3f}–{hi:.3f}) — do not report more precision than that; ≈ "
            f"{samples_for_half_width(CI_WARN_HALF_WIDTH)} samples give ±{CI_WARN_HALF_WIDTH:.2f}")


def confusion_figure(cm: np.ndarray, classes: list[str], title: str = ""):
    """A matplotlib Figure of the confusion matrix (row-normalised colours, counts written in)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(classes)
    size = max(4.0, 0.35 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    with np.errstate(invalid="ignore"):
        norm = np.nan_to_num(cm / cm.sum(1, keepdims=True))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=90, fontsize=7)
    ax.set_yticks(range(n), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6,
                            color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(title)
    fig.tight_layout()
    return fig


class ChanceAlarm:
    """Detect a run that learns nothing useful: validation accuracy near chance while the training loss falls,
    or predictions collapsed onto one class. Fires once.

    "At chance" means within `band(n)` of it: the margin, or two binomial standard errors on n validation samples.
    When the band is so wide that a model halfway from chance to perfect would still sit inside it, the validation
    set cannot tell learning from luck: `check` then says so once (`noted`) instead of calling the run stuck."""

    def __init__(self, num_classes: int, after_epochs: int = 5, margin: float = 0.05, collapse_fraction: float = 0.9,
                 enabled: bool = True):
        self.chance = 1.0 / num_classes
        self.num_classes = num_classes
        self.after_epochs, self.margin, self.collapse_fraction, self.enabled = (
            after_epochs, margin, collapse_fraction, enabled)
        self.fired: str | None = None
        self.noted: str | None = None  # "too little data to judge": said once, not an alarm

    def band(self, n: int) -> float:
        return max(self.margin, 2 * math.sqrt(self.chance * (1 - self.chance) / max(n, 1)))

    def samples_to_tell(self, accuracy: float) -> int:
        """The fewest validation samples on which `accuracy` lies outside the band around chance."""
        gap = accuracy - self.chance
        if gap <= self.margin:
            return 0  # no number of samples tells it from chance
        return math.floor(4 * self.chance * (1 - self.chance) / gap ** 2) + 1

    def judgeable(self, n: int) -> bool:
        """Whether n validation samples can tell a model halfway from chance to perfect from chance."""
        return self.band(n) < (1 - self.chance) / 2

    def check(self, epoch: int, val_accuracy: float, n_val: int, predicted_counts, true_counts,
              train_losses: list[float]) -> str | None:
        """Return the alarm message the first time the run looks stuck, else None (see `noted` for too few
        validation samples to judge)."""
        if not self.enabled or self.fired or epoch < self.after_epochs or self.num_classes < 2:
            return None
        band = self.band(n_val)
        loss_falls = len(train_losses) >= 2 and train_losses[-1] < 0.9 * train_losses[0]
        top_share = max(predicted_counts) / max(sum(predicted_counts), 1)
        true_share = max(true_counts) / max(sum(true_counts), 1)
        at_chance = val_accuracy <= self.chance + band and loss_falls
        collapsed = top_share >= self.collapse_fraction and top_share > true_share + 0.2
        if not (at_chance or collapsed):
            return None
        if not self.judgeable(n_val):
            if self.noted is None:
                target = val_accuracy if self.samples_to_tell(val_accuracy) else (1 + self.chance) / 2
                self.noted = (f"too little data to judge ({n_val} val samples; need ≈ "
                              f"{max(self.samples_to_tell(target), n_val + 1)} to tell accuracy {target:.3f} from "
                              f"chance {self.chance:.3f}): validation accuracy {val_accuracy:.3f} after {epoch} "
                              f"epochs says neither that the run learns nor that it is stuck")
            return None
        if at_chance:
            self.fired = (f"validation accuracy {val_accuracy:.3f} is still at chance ({self.chance:.3f} ± {band:.3f}) "
                          f"after {epoch} epochs while the training loss fell from {train_losses[0]:.3f} to "
                          f"{train_losses[-1]:.3f}")
        else:
            self.fired = (f"predictions collapsed onto one class: {top_share:.0%} of validation predictions are the "
                          f"same class after {epoch} epochs")
        return self.fired


@EVALUATORS.register("classification")
class ClassificationEvaluator:
    """Scores (B, C) logits against batch["y"]; see `classification_report` for the figures."""

    monitor, mode = "accuracy", "max"
    headline = ("accuracy",)

    def __init__(self, data: Any, top_k: tuple[int, ...] = (3, 5), alarm: dict[str, Any] | None = None):
        self.classes = list(data.classes)
        self.top_k = tuple(top_k)
        self.alarm = ChanceAlarm(len(self.classes), **(alarm or {}))
        self.reset()
        self.last: dict[str, Any] | None = None  # the classification_report of the last compute()

    def reset(self) -> None:
        self._logits: list[torch.Tensor] = []
        self._y: list[torch.Tensor] = []
        self._index: list[torch.Tensor] = []

    def update(self, outputs: torch.Tensor, batch: dict[str, torch.Tensor]) -> None:
        self._logits.append(outputs.detach().float())  # (B, C)
        self._y.append(batch["y"])
        self._index.append(batch["index"])

    def compute(self) -> dict[str, float]:
        index, logits, y = dist.gather_samples(torch.cat(self._index), torch.cat(self._logits), torch.cat(self._y))
        self._samples = (logits.cpu().numpy(), y.cpu().numpy())
        self.last = classification_report(*self._samples, self.classes, ci=False, top_k=self.top_k)
        return {k: self.last[k] for k in ("accuracy", "balanced_accuracy", "macro_f1")}

    def predictions(self) -> tuple[np.ndarray, np.ndarray]:
        """(predicted class, true class), both (N,) int, of the samples of the last compute() — gathered across
        ranks, for checks that need more than the metrics (the doctor's chance bounds)."""
        if self.last is None:
            raise RuntimeError("predictions() is only known after compute()")
        logits, y = self._samples
        return logits.argmax(1), y

    def check_alarm(self, epoch: int, history: list[dict[str, float]]) -> Alarm | None:
        if self.last is None:
            return None
        cm = np.asarray(self.last["confusion_matrix"])
        noted = self.alarm.noted
        message = self.alarm.check(epoch, self.last["accuracy"], self.last["n_samples"], cm.sum(0).tolist(),
                                   cm.sum(1).tolist(), [h["train/loss"] for h in history if "train/loss" in h])
        if message:
            return Alarm("STUCK AT CHANCE", message, CHANCE_CAUSES)
        if self.alarm.noted and not noted:  # said once, as a notice: it neither stops the run nor counts as an alarm
            return Alarm("TOO LITTLE DATA TO JUDGE", self.alarm.noted, ("add validation samples (data.val_fraction or "
                         "the manifest's split column)",), stops=False)
        return None

    def fired_alarms(self) -> list[str]:
        return [self.alarm.fired] if self.alarm.fired else []

    def images(self) -> dict[str, np.ndarray]:
        """The confusion matrix as a row-normalised (1, H, W) heat-map image (cheap enough for every validation)."""
        if self.last is None:
            return {}
        cm = np.asarray(self.last["confusion_matrix"], dtype=float)
        with np.errstate(invalid="ignore"):
            norm = np.nan_to_num(cm / cm.sum(1, keepdims=True))
        cell = max(1, 256 // max(1, len(cm)))
        return {"confusion": np.kron(norm, np.ones((cell, cell)))[None].astype(np.float32)}

    def report(self, split: str, out_dir: str | Path, logger, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Metrics + Wilson interval of the last compute() → JSON, confusion CSV/PNG in `out_dir`, a table on the
        console."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        report = classification_report(*self._samples, self.classes, top_k=self.top_k)
        report.update({"split": split, **(extra or {})})
        cm = np.asarray(report["confusion_matrix"])
        files = {"json": out_dir / f"evaluation_{split}.json", "confusion_csv": out_dir / f"confusion_{split}.csv",
                 "confusion_png": out_dir / f"confusion_{split}.png"}
        with files["confusion_csv"].open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["true\\predicted", *self.classes])
            for name, row in zip(self.classes, cm):
                writer.writerow([name, *row.tolist()])
        import matplotlib.pyplot as plt

        fig = confusion_figure(cm, self.classes, f"{split}: accuracy {report['accuracy']:.3f}")
        fig.savefig(files["confusion_png"], dpi=120)
        plt.close(fig)
        report["files"] = {k: str(v) for k, v in files.items()}
        files["json"].write_text(json.dumps(report, indent=2))
        self._print(report, logger)
        warning = small_split_warning(report["n_samples"], split, report["accuracy_ci"])
        if warning:
            logger.print(f"[yellow]warning:[/yellow] {warning}")
        return report

    def _print(self, report: dict[str, Any], logger) -> None:
        from rich.table import Table

        table = Table(title=f"{report['split']} split — {report['n_samples']} samples")
        for col in ("class", "precision", "recall", "f1", "support"):
            table.add_column(col, justify="right" if col != "class" else "left")
        for c in self.classes:
            r = report["per_class"][c]
            table.add_row(c, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", str(r["support"]))
        logger.print(table)
        lo, hi = report["accuracy_ci"]
        b_lo, b_hi = report["balanced_accuracy_ci"]
        extra = "".join(f"  top{k} {report[f'top{k}_accuracy']:.4f}" for k in self.top_k
                        if f"top{k}_accuracy" in report)
        logger.print(f"[bold]{report['split']} accuracy {report['accuracy']:.4f}[/bold] (95% CI {lo:.4f}–{hi:.4f}, "
                     f"chance {report['chance']:.4f})  balanced {report['balanced_accuracy']:.4f} (95% CI "
                     f"{b_lo:.4f}–{b_hi:.4f})  macro F1 {report['macro_f1']:.4f}{extra}")

    def summary(self, report: dict[str, Any]) -> tuple[str, str]:
        """(label, value) of the report's headline for a run's summary table."""
        return f"{report['split']} accuracy", f"{report['accuracy']:.4f}"

    def state_dict(self) -> dict[str, Any]:
        return {"fired": self.alarm.fired, "noted": self.alarm.noted}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.alarm.fired = state.get("fired")
        self.alarm.noted = state.get("noted")
