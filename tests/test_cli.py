"""The `signlip` command as a user runs it: help, --cfg job, sweeps, and one-line errors with exit code 2."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import REPO, SMALL_HANDS, run_cli


def test_top_level_help_is_fast_and_lists_commands_and_tasks():
    start = time.perf_counter()
    proc = run_cli("--help")
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0
    for word in ("train", "evaluate", "distill", "landmark_gru", "landmark_gru_deep", "cosine_warm_restarts"):
        assert word in proc.stdout, word
    # No torch import on this path (a generous bound: it is ~0.1 s here, importing torch costs seconds).
    assert elapsed < 5, elapsed


def test_train_help_lists_config_groups():
    proc = run_cli("train", "--help")
    assert proc.returncode == 0, proc.stderr
    for word in ("task:", "model:", "optim:", "sched:", "landmark_gru_light", "onecycle"):
        assert word in proc.stdout, word


def test_train_help_lists_only_the_groups_train_takes():
    groups = run_cli("train", "--help").stdout.split("== Config groups", 1)[1].split("== Config (", 1)[0]
    names = {line.split(":", 1)[0] for line in groups.splitlines()[1:] if ":" in line}
    assert names == {"data", "evaluator", "logger", "model", "objective", "optim", "sched", "task", "trainer"}, groups
    distill = run_cli("distill", "--help").stdout.split("== Config groups", 1)[1].split("== Config (", 1)[0]
    assert "student: mobilenetv3" in distill and "teacher: i3d" in distill


def test_cfg_job_prints_composed_config_with_overrides():
    proc = run_cli("train", "model=landmark_gru_deep", "optim.lr=3e-4", "--cfg", "job")
    assert proc.returncode == 0, proc.stderr
    assert "hidden_size: 256" in proc.stdout and "lr: 0.0003" in proc.stdout


def _one_line_error(proc) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_unknown_task_lists_valid_choices():
    line = _one_line_error(run_cli("train", "task=does_not_exist"))
    assert "unknown task 'does_not_exist'" in line and "landmark_gru" in line


def test_typo_in_trainer_key_fails_at_start():
    line = _one_line_error(run_cli("train", "trainer.max_epoch=5"))
    assert "max_epoch" in line and "TrainerSettings" in line


def test_unknown_command():
    line = _one_line_error(run_cli("fly"))
    assert "unknown command" in line and "train" in line


def test_missing_manifest_is_one_line_exit_2(tmp_path):
    line = _one_line_error(run_cli("train", f"data.manifest={tmp_path / 'nope.csv'}", cwd=tmp_path))
    assert "nope.csv" in line and "not found" in line


def test_missing_checkpoint_is_one_line_exit_2(tmp_path):
    line = _one_line_error(run_cli("evaluate", f"ckpt={tmp_path / 'missing.pt'}", cwd=tmp_path))
    assert "missing.pt" in line


def test_distill_is_wired():
    proc = run_cli("distill", "--cfg", "job")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow  # two training runs through Hydra's multirun launcher (~10 s)
def test_multirun_sweep_runs_each_value(tmp_path, hands_root):
    proc = run_cli("train", "-m", "optim.lr=1e-3,3e-3", f"data.synthetic.root={hands_root}", *SMALL_HANDS,
                   "trainer.max_epochs=1", "logger.tensorboard=false", "trainer.evaluate_test=false", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = sorted((tmp_path / "outputs" / "multirun" / "landmark_gru").glob("*/*/checkpoints/last.pt"))
    assert len(runs) == 2
    sweep = runs[0].parents[2].relative_to(tmp_path)
    assert proc.stdout.rstrip().splitlines()[-1].strip() == f"signlip report {sweep}", proc.stdout[-500:]
    for last in runs:  # each job's console, not an empty Hydra job log
        log = (last.parents[1] / "train.log").read_text()
        assert "signlip train task=landmark_gru" in log and "epoch   1/1" in log


def test_installed_config_tree_is_found_outside_the_repo(tmp_path):
    proc = run_cli("train", "--cfg", "job", cwd=tmp_path)
    assert proc.returncode == 0 and "task_name: landmark_gru" in proc.stdout
    assert not (Path(tmp_path) / "conf").exists() and (REPO / "conf" / "train.yaml").is_file()
