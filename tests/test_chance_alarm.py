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


def test_two_val_samples_give_a_too_little_data_notice_not_a_stuck_alarm(tmp_path, hands_root):
    """`signlip train` end to end on a correct 2-class manifest with 2 val samples: the run says it has too little
    data to judge (and how many samples would do), records no alarm, and keeps training (the earlier code drew a
    STUCK AT CHANCE panel with "1.000 is still at chance (0.500 ± 0.707)")."""
    rows = [r for r in csv.DictReader(open(hands_root / "manifest.csv")) if r["label"] in ("A", "B")]
    val = [next(r for r in rows if r["split"] == "val" and r["label"] == c) for c in ("A", "B")]
    kept = [r for r in rows if r["split"] != "val"] + val
    manifest = tmp_path / "two_val.csv"
    with manifest.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "path": str(hands_root / r["path"])} for r in kept)
    result = train_in_process(tmp_path / "run", [f"data.manifest={manifest}", "trainer.max_epochs=3",
                                                 "evaluator.alarm.after_epochs=1", "trainer.stop_on_alarm=true",
                                                 "trainer.early_stopping.enabled=false"])
    assert result["summary"]["alarms"] == [] and result["summary"]["epochs"] == 3, result["summary"]
    log = (Path(result["run_dir"]) / "train.log").read_text()
    assert "TOO LITTLE DATA TO JUDGE" in log and "2 val samples" in log, log
    assert "STUCK AT CHANCE" not in log
