"""`signlip doctor` flags the failures it exists for — shuffled labels, a signer in two splits, duplicated files,
a frame-order bug, a broken pipeline — and passes healthy data."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from test_chance_alarm import shuffled_manifest

from conftest import compose, run_cli

# Small and quick: the light model, a short run of 40 updates, a 4-class picture.
FAST = ["model=landmark_gru_light", "trainer.device=cpu", "doctor.short_run.max_updates=40",
        "doctor.overfit.batch_size=16", "doctor.picture.max_classes=4", "doctor.picture.per_class=1",
        # Counted work, not wall time, so that the outcome does not depend on how busy the machine is.
        "doctor.short_run.max_seconds=1000", "doctor.overfit.max_seconds=1000"]


def run_doctor(run_dir: Path, overrides: list[str]) -> dict:
    from signlip.doctor import run_doctor as run

    cfg = compose("doctor", ["logger.tensorboard=false", *FAST, *overrides])
    return run(OmegaConf.to_container(cfg, resolve=True), OmegaConf.to_object(cfg.trainer), run_dir)


def check(report: dict, name: str) -> dict:
    found = [c for c in report["checks"] if c["name"] == name]
    assert found, [c["name"] for c in report["checks"]]
    return found[0]


def rewrite_manifest(hands_root: Path, out: Path, edit) -> Path:
    with open(hands_root / "manifest.csv") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["path"] = str(hands_root / r["path"])
    rows = edit(rows)
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "label", "split", "signer"])
        writer.writeheader()
        writer.writerows(rows)
    return out


def test_healthy_data_passes_with_shuffle_control(tmp_path, hands_overrides):
    report = run_doctor(tmp_path, [*hands_overrides, "doctor.shuffle_control=true"])
    assert report["ok"], [c for c in report["checks"] if c["status"] == "fail"]
    assert check(report, "overfit one batch")["status"] == "pass"
    control = check(report, "label-shuffle control")
    assert control["status"] == "pass", control["detail"]
    info = control["data"]
    assert info["real"]["val_accuracy"] > info["bound"] and info["shuffled"]["val_accuracy"] <= info["shuffled_bound"]
    for name in ("speakers/signers across splits", "duplicate samples", "temporal order", "samples per class"):
        assert check(report, name)["status"] == "pass", check(report, name)
    assert Path(report["picture"]).is_file() and (tmp_path / "doctor.json").is_file()


def test_shuffled_labels_are_flagged_although_one_batch_overfits(tmp_path, hands_root):
    manifest = shuffled_manifest(hands_root, tmp_path / "shuffled.csv")
    report = run_doctor(tmp_path / "doc", [f"data.manifest={manifest}", "doctor.shuffle_control=true",
                                           "doctor.overfit.batch_size=8"])
    # Memorising one batch works on shuffled labels too — so this check alone cannot catch it ...
    assert check(report, "overfit one batch")["status"] == "pass"
    # ... the real-vs-shuffled comparison does.
    control = check(report, "label-shuffle control")
    assert control["status"] == "fail" and "do not belong to their inputs" in control["detail"], control["detail"]
    assert not report["ok"]


@pytest.mark.slow
def test_shuffled_labels_warn_without_the_control(tmp_path, hands_root):
    manifest = shuffled_manifest(hands_root, tmp_path / "shuffled.csv")
    report = run_doctor(tmp_path / "doc", [f"data.manifest={manifest}", "doctor.overfit.steps=0"])
    assert check(report, "short real run beats chance")["status"] == "warn"


def test_signer_in_two_splits_and_duplicated_files_fail_the_audit(tmp_path, hands_root):
    def leak(rows):
        val_signer = next(r["signer"] for r in rows if r["split"] == "val")
        moved = [r for r in rows if r["split"] == "train"][:5]
        for r in moved:  # five samples of a training signer land in val
            r["split"] = "val"
        for i, r in enumerate(r for r in rows if r["split"] == "test" and r["label"] == "A"):
            if i < 2:  # a test file that is a byte copy of a training file under another name
                src = next(t for t in rows if t["split"] == "train" and t["label"] == "A")["path"]
                copy = tmp_path / f"copy_{i}.npy"
                shutil.copy(src, copy)
                r["path"] = str(copy)
        assert val_signer
        return rows

    manifest = rewrite_manifest(hands_root, tmp_path / "leaky.csv", leak)
    report = run_doctor(tmp_path / "doc", [f"data.manifest={manifest}", "doctor.training=false"])
    signers = check(report, "speakers/signers across splits")
    assert signers["status"] == "fail" and "train+val" in signers["detail"], signers
    dups = check(report, "duplicate samples")
    assert dups["status"] == "fail" and "[train]" in dups["detail"] and "[test]" in dups["detail"], dups
    assert not report["ok"]


def test_frame_order_bug_is_flagged_and_pictured(tmp_path, hands_root):
    rng = np.random.default_rng(0)

    def scramble(rows):
        for i, r in enumerate(rows):
            arr = np.load(r["path"])
            out = tmp_path / "scrambled" / f"{i}.npy"
            out.parent.mkdir(exist_ok=True)
            np.save(out, arr[rng.permutation(len(arr))])  # the bug: frames written in the wrong order
            r["path"] = str(out)
        return rows

    manifest = rewrite_manifest(hands_root, tmp_path / "scrambled.csv", scramble)
    report = run_doctor(tmp_path / "doc", [f"data.manifest={manifest}", "doctor.training=false"])
    order = check(report, "temporal order")
    assert order["status"] == "warn" and order["data"]["ratio"] > 0.85, order
    assert Path(report["picture"]).stat().st_size > 10_000


def test_broken_pipeline_fails_overfit_one_batch(tmp_path, hands_overrides, monkeypatch):
    from signlip.data.landmarks import datamodule as landmarks

    original = landmarks.LandmarkTransform.forward

    def zeroed(self, batch, training):  # the bug: the transform hands the model nothing but zeros
        out = original(self, batch, training)
        return {**out, "x": out["x"] * 0}

    monkeypatch.setattr(landmarks.LandmarkTransform, "forward", zeroed)
    report = run_doctor(tmp_path, [*hands_overrides, "doctor.short_run.max_updates=2", "doctor.overfit.steps=60"])
    overfit = check(report, "overfit one batch")
    assert overfit["status"] == "fail" and "broken" in overfit["detail"], overfit
    assert check(report, "NaN / inf / constant inputs")["status"] in ("warn", "fail")
    assert not report["ok"]


def test_cli_prints_table_and_exit_codes(tmp_path, hands_overrides):
    proc = run_cli("doctor", *hands_overrides, *FAST, "doctor.training=false", "logger.tensorboard=false", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "signlip doctor" in proc.stdout and "PASS" in proc.stdout and "doctor_samples.png" in proc.stdout
    report = json.loads(next((tmp_path / "outputs" / "doctor").glob("*/*/doctor.json")).read_text())
    assert report["ok"]
    # Data the doctor cannot load is a failed check (a table row naming the problem), exit 1.
    proc = run_cli("doctor", f"data.manifest={tmp_path / 'nope.csv'}", "doctor.training=false", cwd=tmp_path)
    assert proc.returncode == 1 and "FAIL" in proc.stdout and "nope.csv" in proc.stdout


@pytest.mark.slow
def test_default_doctor_runs_within_about_a_minute(tmp_path):
    import time

    start = time.perf_counter()
    proc = run_cli("doctor", "trainer.device=cpu", f"data.synthetic.root={tmp_path / 'hands'}", cwd=tmp_path,
                   timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert time.perf_counter() - start < 150
