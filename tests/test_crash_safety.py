"""Crash safety with the faults injected for real: kill -9 mid-training then resume, kill -9 during checkpoint
writes, SIGTERM mid-epoch, NaN in an input batch."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import train_in_process
from signlip.checkpoint import load_checkpoint, save_checkpoint
from signlip.errors import SignlipError

COMMON = ["seed=5", "trainer.max_epochs=2", "trainer.early_stopping.enabled=false", "logger.tensorboard=false",
          "trainer.device=cpu", "model=landmark_gru_light"]
METRICS = ("train/loss", "val/loss", "val/accuracy")


def popen_train(cwd: Path, args: list[str]) -> subprocess.Popen:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "signlip", "train", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_for_epoch(cwd: Path, epoch: int, proc: subprocess.Popen, timeout: float = 240) -> Path:
    """Poll the run's last.pt until it holds `epoch` completed epochs; return its path."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for last in (cwd / "outputs").glob("landmark_gru/*/checkpoints/last.pt"):
            try:
                if load_checkpoint(last)["epoch"] >= epoch:
                    return last
            except SignlipError:
                pass  # cannot happen with atomic writes, but never mind a race here
        if proc.poll() is not None:
            raise AssertionError(f"training ended early: {proc.stderr.read()[-2000:]}")
        time.sleep(0.02)
    raise AssertionError("no checkpoint appeared")


def final_run(cwd: Path) -> dict:
    runs = sorted((cwd / "outputs" / "landmark_gru").glob("*/run.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(runs[-1].read_text())


def assert_same_results(a: dict, b: dict) -> None:
    assert len(a["history"]) == len(b["history"]) == 2
    for key in METRICS:
        assert b["history"][-1][key] == pytest.approx(a["history"][-1][key], rel=1e-4, abs=1e-5), key
    assert b["results"]["test"]["accuracy"] == pytest.approx(a["results"]["test"]["accuracy"], abs=1e-6)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, hands_overrides) -> dict:
    cwd = tmp_path_factory.mktemp("straight")
    proc = popen_train(cwd, [*hands_overrides, *COMMON])
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    return final_run(cwd)


@pytest.mark.slow  # two training runs and a killed one: ~19 s
def test_sigkill_mid_training_then_resume_auto_matches_uninterrupted(tmp_path, hands_overrides, uninterrupted):
    proc = popen_train(tmp_path, [*hands_overrides, *COMMON])
    last = wait_for_epoch(tmp_path, 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    killed_at = load_checkpoint(last)["epoch"]
    assert killed_at < 2, "the kill came too late to test anything"
    time.sleep(1.1)  # a new timestamped run folder
    resumed = popen_train(tmp_path, [*hands_overrides, *COMMON, "trainer.resume=auto"])
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-2000:]
    relative = last.relative_to(tmp_path)  # resume=auto searches ./outputs
    assert f"resumed from {relative} at epoch {killed_at}" in out
    run = final_run(tmp_path)
    assert run["resumed_from"] == str(relative)
    assert_same_results(uninterrupted, run)


# Built before forking: the writer child only serialises (torch's thread pool is not safe to use after fork).
PAYLOADS = [torch.full((2_000_000,), 0.0), torch.full((2_000_000,), 1.0)]  # 8 MB each


def _writer(path: str, start: int) -> None:
    i = start
    while True:
        save_checkpoint({"model": {"name": "m", "kwargs": {}}, "model_state": {"w": PAYLOADS[i % 2]}, "i": i}, path)
        i += 1


def test_sigkill_during_checkpoint_writes_never_corrupts_last(tmp_path):
    path = tmp_path / "last.pt"
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(0)
    seen, mid_write = set(), 0
    for k in range(8):
        proc = ctx.Process(target=_writer, args=(str(path), 1000 * k), daemon=True)
        proc.start()
        time.sleep(0.1 + rng.random() * 0.3)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        assert proc.exitcode == -signal.SIGKILL
        mid_write += bool(list(tmp_path.glob(".last.pt.*.tmp")))
        ckpt = load_checkpoint(path)  # always a whole checkpoint: the previous one or the new one
        assert torch.equal(ckpt["model_state"]["w"], PAYLOADS[ckpt["i"] % 2])
        seen.add(ckpt["i"] // 1000)
    assert len(seen) > 1  # the writers did replace the file between kills
    assert mid_write, "expected some kills to land mid-write"
    save_checkpoint({"model": {"name": "m", "kwargs": {}}, "model_state": {}}, path)
    assert not list(tmp_path.glob(".last.pt.*.tmp")), "temp files of killed writers are cleaned up"


def test_sigterm_mid_epoch_keeps_an_epoch_boundary_and_resume_is_exact(tmp_path, hands_overrides, monkeypatch):
    """A real SIGTERM in the middle of epoch 2: the step finishes, last.pt holds epoch 1 exactly (weights, update
    count, schedule), and the resumed run equals an uninterrupted one — with a per-update schedule (onecycle) that
    would overrun its total steps if the partial epoch's updates were kept."""
    from signlip.objectives import classification as objectives

    common = [*hands_overrides, "seed=2", "trainer.early_stopping.enabled=false", "trainer.evaluate_test=false",
              "trainer.max_epochs=2", "sched=onecycle", "~sched.min_lr",  # min_lr: the task's, for plateau
              "trainer.device=cpu", "model=landmark_gru_light"]
    straight = train_in_process(tmp_path / "straight", common)
    original = objectives.ClassifyObjective.__call__
    calls = {"n": 0}

    def terminate_mid_epoch_2(self, model, batch):
        calls["n"] += 1
        if model.training and calls["n"] == 17 + 5:  # 17 batches per epoch: the 5th batch of epoch 2
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, model, batch)

    monkeypatch.setattr(objectives.ClassifyObjective, "__call__", terminate_mid_epoch_2)
    with pytest.raises(SystemExit) as stop:  # after saving, the process stops as SIGTERM asks: exit code 143
        train_in_process(tmp_path / "interrupted", common)
    monkeypatch.undo()
    assert stop.value.code == 143
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored
    run = json.loads((tmp_path / "interrupted" / "run.json").read_text())
    assert run["results"]["summary"]["interrupted"] == "SIGTERM"
    last_path = tmp_path / "interrupted" / "checkpoints" / "last.pt"
    last = load_checkpoint(last_path)
    assert last["epoch"] == 1 and last["step"] == 17 and len(last["history"]) == 1
    assert last["schedule"]["updates"] == 17
    resumed = train_in_process(tmp_path / "resumed", [*common, f"trainer.resume={last_path}"])
    a = load_checkpoint(Path(straight["checkpoint_dir"]) / "last.pt")
    b = load_checkpoint(Path(resumed["checkpoint_dir"]) / "last.pt")
    assert a["epoch"] == b["epoch"] == 2 and a["step"] == b["step"] == 34
    for key in METRICS:
        assert b["history"][-1][key] == pytest.approx(a["history"][-1][key], rel=1e-4, abs=1e-5), key


@pytest.mark.slow
def test_sigterm_subprocess_exits_cleanly_and_resumes(tmp_path, hands_overrides, uninterrupted):
    proc = popen_train(tmp_path, [*hands_overrides, *COMMON])
    last = wait_for_epoch(tmp_path, 1, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]  # documented: a clean stop after SIGTERM exits 128 + 15
    assert "Traceback" not in err and "SIGTERM" in out
    run = final_run(tmp_path)
    assert run["results"]["summary"]["interrupted"] == "SIGTERM"
    assert load_checkpoint(last)["epoch"] in (1, 2)  # 2 if the signal landed during epoch 2's validation
    time.sleep(1.1)
    resumed = popen_train(tmp_path, [*hands_overrides, *COMMON, f"trainer.resume={last}"])
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-2000:]
    assert_same_results(uninterrupted, final_run(tmp_path))


NAN_SCRIPT = """
import sys
from signlip.data.landmarks import datamodule as landmarks
original = landmarks.LandmarkTransform.forward
calls = {"n": 0}
def poisoned(self, batch, training):
    out = original(self, batch, training)
    if training:
        calls["n"] += 1
        if calls["n"] == 20:  # epoch 2 (17 batches per epoch): one NaN in one sample's input
            x = out["x"].clone()
            x[3, 5, 7] = float("nan")
            out = {**out, "x": x}
    return out
landmarks.LandmarkTransform.forward = poisoned
from signlip.cli import main
main(sys.argv[1:])
"""


def test_nan_in_an_input_batch_stops_with_one_line_exit_2_and_keeps_checkpoint(tmp_path, hands_overrides):
    proc = subprocess.run([sys.executable, "-c", NAN_SCRIPT, "train", *hands_overrides, *COMMON], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "input batch holds NaN/inf" in lines[0] and ".npy" in lines[0], lines[0]
    last = next((tmp_path / "outputs").glob("landmark_gru/*/checkpoints/last.pt"))
    ckpt = load_checkpoint(last)
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in ckpt["model_state"].values() if t.is_floating_point())
