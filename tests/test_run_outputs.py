"""What a run leaves behind and says (issue 13): its console in <command>.log, learning curves, a resumed run's full
metrics.csv, a finished run that is not trained further, evaluate's files, the DDP and distill console lines."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import run_cli, train_in_process

TINY = ["data.synthetic.n_people=[4,1,1]", "data.synthetic.per_class_per_person=1", "trainer.device=cpu",
        "trainer.evaluate_test=false", "logger.progress=false"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> list[str]:
    return [f"data.synthetic.root={tmp_path_factory.mktemp('hands')}", *TINY]


def epochs_in_csv(run_dir: Path) -> list[int]:
    with (run_dir / "metrics.csv").open() as fh:
        return [int(row["epoch"]) for row in csv.DictReader(fh)]


def test_run_log_curves_and_resume_keep_every_epoch(tiny, tmp_path, capsys):
    first = train_in_process(tmp_path / "outputs" / "first", [*tiny, "trainer.max_epochs=2"],
                             outputs_root=tmp_path / "outputs")
    run_dir = Path(first["run_dir"])
    log = (run_dir / "train.log").read_text()
    assert "signlip train task=landmark_gru" in log and "epoch   2/2" in log and "[bold]" not in log
    assert (run_dir / "learning_curves.png").stat().st_size > 1000
    # A resumed run's new folder: metrics.csv holds the checkpoint's epochs and the new ones.
    last = Path(first["checkpoint_dir"]) / "last.pt"
    resumed = train_in_process(tmp_path / "outputs" / "resumed", [*tiny, "trainer.max_epochs=3",
                                                                   f"trainer.resume={last}"])
    assert epochs_in_csv(Path(resumed["run_dir"])) == [1, 2, 3]
    # resume=auto on the finished run (all 3 epochs done) says so and trains nothing.
    capsys.readouterr()
    again = train_in_process(tmp_path / "outputs" / "again", [*tiny, "trainer.max_epochs=3", "trainer.resume=auto"],
                             outputs_root=tmp_path / "outputs")
    out = capsys.readouterr().out
    assert "nothing to train: all 3 epochs are done" in out and "epoch   4/" not in out
    assert again["summary"]["epochs"] == 3 and again["summary"]["updates"] == resumed["summary"]["updates"]


def test_resume_of_an_early_stopped_run_trains_no_more_epochs(tiny, tmp_path, capsys):
    # patience 0 with no wait: the run stops after its first epoch.
    stop = ["trainer.early_stopping.patience=0", "trainer.small_data.enabled=false"]
    first = train_in_process(tmp_path / "a", [*tiny, *stop, "trainer.max_epochs=5"])
    assert first["summary"]["epochs"] == 1
    capsys.readouterr()
    again = train_in_process(tmp_path / "b", [*tiny, *stop, "trainer.max_epochs=5",
                                              f"trainer.resume={Path(first['checkpoint_dir']) / 'last.pt'}"])
    assert "nothing to train: the run early-stopped after epoch 1" in capsys.readouterr().out
    assert again["summary"]["epochs"] == 1 and again["summary"]["updates"] == first["summary"]["updates"]


def test_evaluate_says_where_its_files_went(trained_run, tmp_path, capsys):
    from signlip.evaluation import evaluate_checkpoint

    evaluate_checkpoint(Path(trained_run["checkpoint_dir"]) / "best.pt", out=tmp_path, device="cpu")
    out = capsys.readouterr().out
    for name in ("evaluation_test.json", "confusion_test.csv", "confusion_test.png"):
        assert str(tmp_path / name) in out, name


def test_evaluate_errors_are_one_line_and_leave_no_run_folder(tmp_path):
    for args in ((), (f"ckpt={tmp_path / 'missing.pt'}",)):
        proc = run_cli("evaluate", *args, cwd=tmp_path)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "outputs").exists(), list((tmp_path / "outputs").rglob("*"))


def fake_run(classes: int = 4) -> SimpleNamespace:
    return SimpleNamespace(task="mobilenetv3", contract={"model": {"name": "mobilenetv3"}}, parameters=1234,
                           data=SimpleNamespace(splits={"train": [0] * 6, "val": [0] * 3},
                                                classes=list(range(classes))))


def test_header_names_the_command_and_ddp(monkeypatch):
    from signlip import training

    assert training.header("distill", fake_run(), torch.device("cpu")).startswith("[bold]signlip distill[/bold]")
    assert "DDP" not in training.header("train", fake_run(), torch.device("cpu"))
    monkeypatch.setattr(training.dist, "world_size", lambda: 2)
    monkeypatch.setattr(torch.distributed, "get_backend", lambda *a: "gloo")
    assert "DDP: world size 2, backend gloo" in training.header("train", fake_run(), torch.device("cpu"))


def test_distill_epoch_line_shows_kd_ce_and_agreement():
    from signlip.trainer import Trainer

    lines = []
    trainer = SimpleNamespace(evaluator=SimpleNamespace(headline=("accuracy",)), monitor="val/accuracy", epoch=1,
                              settings=SimpleNamespace(max_epochs=5), logger=SimpleNamespace(print=lines.append))
    metrics = {"train/loss": 1.0, "train/kd_loss": 0.5, "train/ce_loss": 0.7, "train/agreement": 0.25,
               "train/samples_per_s": 10.0, "val/loss": 1.1, "val/accuracy": 0.5, "val/agreement": 0.75, "lr": 1e-3}
    Trainer._print_epoch(trainer, metrics, improved=True)
    [line] = lines
    for part in ("kd_loss 0.500", "ce_loss 0.700", "agreement 0.250", "val_accuracy 0.5000", "val_agreement 0.7500"):
        assert part in line, (part, line)
