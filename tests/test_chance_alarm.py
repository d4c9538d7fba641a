"""The stuck-at-chance alarm fires on a pipeline whose labels do not match its inputs, and not on a healthy run."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from conftest import train_in_process
from signlip.evaluators.classification import ChanceAlarm


def shuffled_manifest(hands_root: Path, out: Path) -> Path:
    rows = list(csv.DictReader(open(hands_root / "manifest.csv")))
    labels = [r["label"] for r in rows]
    random.Random(0).shuffle(labels)  # the classic mis-joined manifest: labels no longer belong to their files
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for r, label in zip(rows, labels):
            writer.writerow({**r, "label": label, "path": str(hands_root / r["path"])})
    return out


def test_alarm_fires_and_stops_on_shuffled_labels(tmp_path, hands_root):
    manifest = shuffled_manifest(hands_root, tmp_path / "shuffled.csv")
    result = train_in_process(tmp_path / "run", [f"data.manifest={manifest}", "trainer.max_epochs=30",
                                                 "trainer.stop_on_alarm=true", "evaluator.alarm.after_epochs=4",
                                                 "trainer.early_stopping.enabled=false", "optim.lr=3e-3"])
    alarms = result["summary"]["alarms"]
    assert alarms and "chance" in alarms[0], result["summary"]
    assert result["summary"]["epochs"] < 30  # stopped by the alarm
    run = json.loads((Path(result["run_dir"]) / "run.json").read_text())
    assert run["results"]["summary"]["alarms"] == alarms


def test_alarm_silent_on_healthy_run(trained_run):
    assert trained_run["summary"]["alarms"] == []


def test_collapse_detected():
    alarm = ChanceAlarm(num_classes=4, after_epochs=1)
    message = alarm.check(2, 0.3, 100, [95, 5, 0, 0], [25, 25, 25, 25], [1.4, 1.39])
    assert message and "collapsed" in message
    assert alarm.check(3, 0.3, 100, [95, 5, 0, 0], [25, 25, 25, 25], [1.4, 1.39]) is None  # fires once
    assert alarm.fired == message


def test_no_alarm_when_loss_flat_and_predictions_spread():
    alarm = ChanceAlarm(num_classes=4, after_epochs=1)
    assert alarm.check(5, 0.27, 400, [100, 100, 100, 100], [100] * 4, [1.39, 1.38]) is None
