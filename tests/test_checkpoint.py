"""Atomic checkpoint writes and safe loading."""

from __future__ import annotations

import errno
import pickle

import pytest
import torch

from signlip.checkpoint import load_checkpoint, save_checkpoint
from signlip.errors import SignlipError


def payload(value: float) -> dict:
    return {"model": {"name": "m", "kwargs": {}}, "model_state": {"w": torch.full((3,), value)}, "classes": ["a"]}


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(payload(1.0), tmp_path / "last.pt")

    def broken_save(obj, fh):
        fh.write(b"partial garbage")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(SignlipError, match="disk full"):
        save_checkpoint(payload(2.0), path)
    monkeypatch.undo()
    assert load_checkpoint(path)["model_state"]["w"][0] == 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


class Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_checkpoint_with_pickled_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"model": {"name": "m", "kwargs": {}}, "model_state": {}, "payload": Exploit()}, path,
               pickle_module=pickle)
    with pytest.raises(SignlipError, match="refusing to load"):
        load_checkpoint(path)
    assert "pwned" not in capsys.readouterr().out


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = save_checkpoint(payload(1.0), tmp_path / "last.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SignlipError, match="unreadable or truncated"):
        load_checkpoint(path)


def test_not_a_signlip_checkpoint(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "x.pt")
    with pytest.raises(SignlipError, match="not a signlip checkpoint"):
        load_checkpoint(tmp_path / "x.pt")


def test_format_1_checkpoint_still_evaluates(trained_run, tmp_path):
    """A checkpoint written before the objective/evaluator seam (format 1: no objective/evaluator specs, the alarm
    state under "chance_alarm") loads, is upgraded, and evaluates to the same accuracy."""
    from pathlib import Path

    from signlip.evaluation import evaluate_checkpoint

    ckpt = torch.load(Path(trained_run["checkpoint_dir"]) / "best.pt", weights_only=True)
    old = {k: v for k, v in ckpt.items() if k not in ("objective", "evaluator", "evaluator_state")}
    old.update(format_version=1, chance_alarm={"fired": None})
    path = save_checkpoint(old, tmp_path / "old.pt")
    upgraded = load_checkpoint(path)
    assert upgraded["objective"]["name"] == "classify" and upgraded["evaluator"]["name"] == "classification"
    assert upgraded["objective"]["kwargs"]["label_smoothing"] == ckpt["config"]["objective"]["label_smoothing"]
    report = evaluate_checkpoint(path, out=tmp_path)
    assert report["accuracy"] == pytest.approx(trained_run["test"]["accuracy"], abs=1e-6)


def test_newer_format_is_refused_with_one_line(tmp_path):
    path = save_checkpoint({**payload(1.0), "format_version": 99}, tmp_path / "new.pt")
    with pytest.raises(SignlipError, match="format 99, newer"):
        load_checkpoint(path)
