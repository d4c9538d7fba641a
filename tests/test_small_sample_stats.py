"""Honest numbers on small validation / test sets: intervals that hold at 100%, a small-split warning that does not
depend on the score, and a chance alarm that says "too little data to judge" instead of crying wolf."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from signlip.evaluators import Alarm
from signlip.evaluators.classification import (
    ChanceAlarm,
    ClassificationEvaluator,
    balanced_accuracy_interval,
    classification_report,
    samples_for_half_width,
    small_split_warning,
    wilson_interval,
    worst_half_width,
)


class Printed:
    """A stand-in RunLogger: keeps what is printed, rendered as a terminal of `width` columns would show it."""

    def __init__(self, width: int = 200):
        from rich.console import Console

        self.console = Console(file=io.StringIO(), width=width, highlight=False, color_system=None)

    def print(self, *args, **kwargs):
        kwargs.setdefault("soft_wrap", True)  # what RunLogger.print does
        self.console.print(*args, **kwargs)

    @property
    def text(self) -> str:
        return self.console.file.getvalue()


def scored(n: int, n_right: int, classes=("a", "b")) -> ClassificationEvaluator:
    """An evaluator after compute() on n samples of which n_right are right."""
    evaluator = ClassificationEvaluator(SimpleNamespace(classes=list(classes)))
    y = torch.arange(n) % len(classes)
    pred = torch.where(torch.arange(n) < n_right, y, (y + 1) % len(classes))
    evaluator.update(torch.nn.functional.one_hot(pred, len(classes)).float(), {"y": y, "index": torch.arange(n)})
    evaluator.compute()
    return evaluator


def test_interval_does_not_collapse_at_100_percent():
    lo, hi = wilson_interval(2, 2)
    assert hi == 1.0 and lo == pytest.approx(0.342, abs=1e-3)  # the bootstrap said 1.000–1.000
    assert wilson_interval(0, 2) == (0.0, pytest.approx(0.658, abs=1e-3))
    lo, hi = wilson_interval(57, 80)
    assert lo < 57 / 80 < hi and (hi - lo) / 2 == pytest.approx(0.097, abs=1e-3)
    logits = np.eye(2)[[0, 1]]
    report = classification_report(logits, np.array([0, 1]), ["a", "b"])
    assert report["accuracy"] == 1.0 and report["accuracy_ci"][0] < 0.35


def test_balanced_accuracy_has_an_interval_that_holds_at_the_edges_and_widens_for_a_rare_class(tmp_path):
    """Balanced accuracy = mean per-class recall: its 95% interval does not collapse at 100%, always contains the
    figure (also with many classes of few samples, where a posterior pulled towards 0.5 missed it), narrows with data,
    and stays wide when one class is rare — where accuracy's own interval, dominated by the common class, looks
    precise."""
    lo, hi = balanced_accuracy_interval(np.array([1, 1]), np.array([1, 1]))  # 2 of 2, one per class
    assert lo == pytest.approx(0.692, abs=1e-3) and hi == 1.0
    lo, hi = balanced_accuracy_interval(np.array([450, 400]), np.array([500, 500]))  # 0.85 on 1000
    assert lo < 0.85 < hi and hi - lo < 0.05
    rng = np.random.default_rng(0)
    for classes, per_class in ((100, (2, 5)), (50, (3, 7)), (2000, (5, 6))):  # WLASL-like test splits
        n = rng.integers(*per_class, classes)
        k = rng.binomial(n, 0.8)
        lo, hi = balanced_accuracy_interval(k, n)
        assert lo < float(np.mean(k / n)) < hi, (classes, lo, hi)
    # 990 of 1000 common-class samples right, 1 of 2 rare ones: accuracy ±0.007, balanced accuracy ±~0.3.
    targets = np.array([0] * 1000 + [1] * 2)
    preds = np.array([0] * 990 + [1] * 10 + [1, 0])
    report = classification_report(np.eye(2)[preds], targets, ["common", "rare"])
    (a_lo, a_hi), (b_lo, b_hi) = report["accuracy_ci"], report["balanced_accuracy_ci"]
    assert b_lo < report["balanced_accuracy"] < b_hi and b_hi - b_lo > 0.4 > 20 * (a_hi - a_lo)
    logger = Printed()
    scored(2, 2).report("test", tmp_path, logger)
    assert "balanced 1.0000 (95% CI 0.6919–1.0000)" in logger.text, logger.text


def test_small_split_warning_depends_on_the_split_not_the_score(tmp_path):
    # 80 samples measure any accuracy to ±0.107 at worst: they warn at 100% as at 71%.
    assert worst_half_width(80) == pytest.approx(0.107, abs=1e-3)
    for right in (80, 57):
        logger = Printed()
        scored(80, right).report("test", tmp_path, logger)
        assert "80 test samples measure an accuracy only to about ±0.107" in logger.text, logger.text
    logger = Printed()
    scored(2, 2).report("test", tmp_path, logger)
    assert "CI 0.3424–1.0000" in logger.text and "2 test samples" in logger.text
    # The threshold: the fewest samples with a worst-case half-width ≤ 0.05.
    n = samples_for_half_width(0.05)
    assert n == 381 and worst_half_width(n) <= 0.05 < worst_half_width(n - 1)
    assert small_split_warning(n, "test", (0.9, 1.0)) is None and small_split_warning(n - 1, "test", (0.9, 1.0))


def test_two_val_samples_at_100_percent_are_too_little_to_judge_not_stuck():
    alarm = ChanceAlarm(num_classes=2, after_epochs=5)
    assert alarm.check(5, 1.0, 2, [1, 1], [1, 1], [0.77, 0.14]) is None and alarm.fired is None
    assert alarm.noted and "too little data to judge (2 val samples; need ≈ 5 to tell accuracy 1.000" in alarm.noted
    # At chance on 2 samples: still too little to judge; the target is a model halfway from chance to perfect.
    alarm = ChanceAlarm(num_classes=2, after_epochs=5)
    assert alarm.check(5, 0.5, 2, [2, 0], [1, 1], [0.77, 0.14]) is None  # nor "collapsed": 2 of 2 alike is no news
    assert "need ≈ 17 to tell accuracy 0.750" in alarm.noted
    # With enough samples the same accuracy is called stuck.
    alarm = ChanceAlarm(num_classes=2, after_epochs=5)
    assert "still at chance" in alarm.check(5, 0.5, 200, [100, 100], [100, 100], [0.77, 0.14])


def test_the_evaluator_gives_a_notice_that_does_not_stop_the_run():
    evaluator = scored(2, 2)
    history = [{"train/loss": 0.77}, {"train/loss": 0.14}]
    notice = evaluator.check_alarm(5, history)
    assert notice.title == "TOO LITTLE DATA TO JUDGE" and not notice.stops, notice
    assert evaluator.check_alarm(6, history) is None  # said once
    assert evaluator.fired_alarms() == []  # not an alarm in the run's summary
    assert Alarm("STUCK AT CHANCE", "x").stops


def test_alarm_panel_wraps_its_lines(tmp_path):
    from signlip.trainer import Trainer

    logger = Printed(width=80)
    message = ("validation accuracy 0.040 is still at chance (0.038 ± 0.050) after 5 epochs while the training loss "
               "fell from 3.258 to 1.234 — the end of this sentence must be on screen")
    Trainer._print_alarm(SimpleNamespace(logger=logger, contract={"task": "landmark_gru"}),
                         Alarm("STUCK AT CHANCE", message, ("labels not aligned with inputs",)))
    text = " ".join(line.strip("│ ") for line in logger.text.splitlines())
    assert "must be on screen" in text and "signlip doctor task=landmark_gru" in text, logger.text
    assert max(len(line) for line in logger.text.splitlines()) <= 80
