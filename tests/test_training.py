"""End-to-end training on the built-in synthetic hand data: learning, resume equivalence, evaluate, NaN handling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import train_in_process
from signlip.checkpoint import load_checkpoint
from signlip.errors import SignlipError


def test_short_training_learns_far_above_chance(trained_run):
    test = trained_run["test"]
    chance = test["chance"]  # 1/26
    assert test["accuracy"] >= 0.6, f"test accuracy {test['accuracy']:.3f} — model did not learn (chance {chance:.3f})"
    lo, hi = test["accuracy_ci"]
    assert lo <= test["accuracy"] <= hi
    run_dir = Path(trained_run["run_dir"])
    for name in ("run.json", "metrics.csv", "evaluation_test.json", "confusion_test.png", "confusion_test.csv"):
        assert (run_dir / name).is_file(), name
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["model"]["parameters"] > 100_000 and manifest["history"]


def test_checkpoint_is_self_describing_and_weights_only(trained_run):
    ckpt_dir = Path(trained_run["checkpoint_dir"])
    ckpt = torch.load(ckpt_dir / "best.pt", weights_only=True)
    for key in ("model", "model_state", "classes", "config", "preprocessing", "optimizer", "schedule", "scaler",
                "epoch", "step", "early_stopping", "rng", "history"):
        assert key in ckpt, key
    assert ckpt["model"]["name"] == "landmark_gru" and ckpt["model"]["kwargs"]["input_size"] == 63
    assert len(ckpt["classes"]) == 26 and len(ckpt["preprocessing"]["mean"]) == 63


def test_evaluate_from_checkpoint_alone_reports_each_split(trained_run, tmp_path):
    """In process (a fresh process per task: tests/test_task_contract.py)."""
    from signlip.evaluation import evaluate_checkpoint

    ckpt = Path(trained_run["checkpoint_dir"]) / "best.pt"
    report = evaluate_checkpoint(ckpt, out=tmp_path, device="cpu")
    assert json.loads((tmp_path / "evaluation_test.json").read_text())["accuracy"] == report["accuracy"]
    for key in ("accuracy", "accuracy_ci", "balanced_accuracy", "macro_f1", "per_class", "n_samples", "split",
                "checkpoint"):
        assert key in report
    # Same weights, same data → same accuracy as the end-of-training report.
    assert report["accuracy"] == pytest.approx(trained_run["test"]["accuracy"], abs=1e-6)
    evaluate_checkpoint(ckpt, out=tmp_path, split="val", device="cpu")
    assert json.loads((tmp_path / "evaluation_val.json").read_text())["split"] == "val"


def test_resume_equals_uninterrupted_run(tmp_path, hands_overrides):
    common = [*hands_overrides, "seed=3", "trainer.early_stopping.enabled=false", "trainer.evaluate_test=false"]
    straight = train_in_process(tmp_path / "straight", [*common, "trainer.max_epochs=2"])
    first = train_in_process(tmp_path / "first", [*common, "trainer.max_epochs=1"])
    last = Path(first["checkpoint_dir"]) / "last.pt"
    resumed = train_in_process(tmp_path / "resumed", [*common, "trainer.max_epochs=2", f"trainer.resume={last}"])
    a = load_checkpoint(Path(straight["checkpoint_dir"]) / "last.pt")
    b = load_checkpoint(Path(resumed["checkpoint_dir"]) / "last.pt")
    assert b["epoch"] == a["epoch"] == 2 and b["step"] == a["step"]
    for key in ("train/loss", "val/loss", "val/accuracy"):
        assert b["history"][-1][key] == pytest.approx(a["history"][-1][key], rel=1e-4, abs=1e-5), key
    for name, tensor in a["model_state"].items():
        torch.testing.assert_close(b["model_state"][name], tensor, rtol=1e-4, atol=1e-5)


def test_resume_auto_finds_latest_checkpoint(tmp_path, hands_overrides):
    common = [*hands_overrides, "trainer.early_stopping.enabled=false", "trainer.evaluate_test=false"]
    train_in_process(tmp_path / "outputs" / "a", [*common, "trainer.max_epochs=1"], outputs_root=tmp_path / "outputs")
    resumed = train_in_process(tmp_path / "outputs" / "b", [*common, "trainer.max_epochs=2", "trainer.resume=auto"],
                               outputs_root=tmp_path / "outputs")
    ckpt = load_checkpoint(Path(resumed["checkpoint_dir"]) / "last.pt")
    assert ckpt["epoch"] == 2 and len(ckpt["history"]) == 2


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(tmp_path, hands_overrides, monkeypatch):
    from signlip.objectives import classification as objectives

    calls = {"n": 0}
    original = objectives.ClassifyObjective.__call__

    def poisoned(self, model, batch):
        out = original(self, model, batch)
        calls["n"] += 1
        if model.training and calls["n"] > 20:  # after the first epoch (17 batches) finished and was saved
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(objectives.ClassifyObjective, "__call__", poisoned)
    run_dir = tmp_path / "nan"
    with pytest.raises(SignlipError, match="loss became nan"):
        train_in_process(run_dir, [*hands_overrides, "trainer.max_epochs=3"])
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in ckpt["model_state"].values() if t.is_floating_point())


def test_nan_policy_skip_counts_batches(tmp_path, hands_overrides, monkeypatch):
    from signlip.objectives import classification as objectives

    original = objectives.ClassifyObjective.__call__
    calls = {"n": 0}

    def sometimes_nan(self, model, batch):
        out = original(self, model, batch)
        calls["n"] += 1
        if model.training and calls["n"] % 5 == 0:
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(objectives.ClassifyObjective, "__call__", sometimes_nan)
    result = train_in_process(tmp_path / "skip", [*hands_overrides, "trainer.max_epochs=1", "trainer.nan_policy=skip",
                                                  "trainer.evaluate_test=false"])
    assert result["summary"]["skipped_nonfinite_batches"] == 3  # 17 batches, every 5th poisoned


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_landmark_rnn_trains_under_cpu_bf16_autocast(cell):
    """oneDNN has no bf16 LSTM primitive for the 63 → 64 shape of landmark_gru_light; it must still train."""
    from signlip.registry import build_model

    model = build_model("landmark_gru", num_classes=4, input_size=63, hidden_size=64, num_layers=1, cell=cell)
    x = torch.randn(3, 30, 63)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x, torch.ones(3, 30, dtype=torch.bool))
    logits.float().sum().backward()
    assert logits.shape == (3, 4) and all(p.grad is not None for p in model.parameters())
