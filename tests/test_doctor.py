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
    # Point data no more ordered than its frame-shuffled copy is a failure, not a warning.
    assert order["status"] == "fail" and order["data"]["ratio"] > 0.95 * order["data"]["shuffled_ratio"], order
    assert not report["ok"]
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


def test_probes_step_with_the_trainers_own_training_step(tmp_path, hands_overrides, monkeypatch):
    from signlip.trainer import Trainer

    calls = []
    original = Trainer.train_step

    def counted(self, batch, update=True, accum=1):
        calls.append(self.optimizer)
        return original(self, batch, update, accum)

    monkeypatch.setattr(Trainer, "train_step", counted)
    report = run_doctor(tmp_path, [*hands_overrides, "doctor.overfit.steps=10", "doctor.overfit.target_loss=0",
                                   "doctor.short_run.max_updates=3"])
    overfit, short = check(report, "overfit one batch"), check(report, "short real run beats chance")
    assert overfit["data"]["steps"] == 10 and short["data"]["updates"] == 3
    # Every update of both probes went through Trainer.train_step, each probe with its own fresh optimizer.
    assert len(calls) == 10 + 3 and calls[0] is not calls[-1]


def test_without_its_composed_settings_the_doctor_says_so_in_one_line(tmp_path, hands_overrides):
    from signlip.doctor import run_doctor as run
    from signlip.errors import SignlipError

    # conf/doctor.yaml is the one source of the doctor's settings: a train config lacks them, and no copy fills in.
    cfg = compose("train", ["logger.tensorboard=false", *hands_overrides])
    config = OmegaConf.to_container(cfg, resolve=True)
    assert "doctor" not in config
    with pytest.raises(SignlipError, match="no `doctor` group"):
        run(config, OmegaConf.to_object(cfg.trainer), tmp_path)


def test_each_modality_draws_its_own_samples():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from signlip.data.clips.picture import draw_sample as draw_clip
    from signlip.data.holistic.picture import draw_sample as draw_holistic
    from signlip.data.landmarks.picture import HAND_EDGES
    from signlip.data.landmarks.picture import draw_sample as draw_hand

    class Standardise(torch.nn.Module):  # what LandmarkTransform holds: per-feature mean/std of (T, 21·3)
        mean, std = torch.full((63,), 0.5), torch.full((63,), 2.0)

    fig, axes = plt.subplots(1, 3)
    t = 12
    mask = torch.arange(t) < 10  # two padded frames
    hand = (torch.randn(t, 63) - 0.5) / 2.0
    legend = draw_hand(axes[0], hand, mask, "A (y=0) #1", Standardise())
    points, heat = fig.axes[-2:]  # the cell became two panels: the points and the model input
    assert len(points.lines) == 3 * len(HAND_EDGES)  # the skeleton at the first, middle and last real frame
    assert heat.images[0].get_array().shape == (63, 10)  # features ↓, real frames →
    assert "skeleton" in legend

    k = 62
    motion = torch.randn(t, k * 12)
    motion[:, :3] = 0  # a missing point: left out, not drawn at the origin
    legend = draw_holistic(axes[1], motion, mask, "B (y=1) #2", torch.nn.Identity())
    points, heat = fig.axes[-2:]
    drawn = np.concatenate([c.get_offsets() for c in points.collections])
    assert np.isfinite(drawn).all(1).sum() == 10 * (k - 1)  # the real frames' points, the missing one left out
    assert len(points.lines) == 1  # the centroid's path
    assert len(heat.lines) == 3 and "velocity" in legend  # lines between the four motion-feature groups

    clip = torch.rand(1, 16, 64, 96)  # (C, T, H, W) gray mouth crop
    legend = draw_clip(axes[2], clip, None, "doctor (y=0) #3", torch.nn.Identity())
    assert axes[2].images[0].get_array().shape == (2 * 64, 4 * 96)  # 8 frames, wrapped after 4
    assert "points" not in legend and "frames" in legend and "frames 0, 2" in axes[2].get_title()
    plt.close(fig)


def test_the_landmark_data_module_sets_its_picture(hands_overrides):
    from signlip.build import build_data
    from signlip.data.landmarks.picture import draw_sample

    config = OmegaConf.to_container(compose("doctor", hands_overrides), resolve=True)
    assert build_data(config).draw_sample is draw_sample
