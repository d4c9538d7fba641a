"""`signlip report <sweep folder>`: runs table, mean ± sd across seeds, learning-curve PNG; bad input → exit 2."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from conftest import run_cli


def make_sweep(trained_run: dict, folder: Path, results: list[tuple[int, float, float]], lr: float = 1e-3) -> Path:
    """A sweep folder shaped like Hydra's (folder/<job>/run.json), from a real run.json with numbers replaced."""
    real = json.loads((Path(trained_run["run_dir"]) / "run.json").read_text())
    for job, (seed, best_val, test_acc) in enumerate(results):
        run = copy.deepcopy(real)
        run["config"]["seed"] = seed
        run["config"]["optim"]["lr"] = lr
        run["results"]["summary"]["best"]["value"] = best_val
        run["results"]["test"]["accuracy"] = test_acc
        for h in run["history"]:
            h["val/accuracy"] = h["val/accuracy"] * best_val
        (folder / str(job)).mkdir(parents=True, exist_ok=True)
        (folder / str(job) / "run.json").write_text(json.dumps(run))
    return folder


def test_summary_mean_sd_and_curves(trained_run, tmp_path):
    from signlip.sweep import load_runs, plot_curves, summarise

    folder = make_sweep(trained_run, tmp_path / "sweep", [(1, 0.90, 0.80), (2, 0.92, 0.90), (3, 0.94, 0.85)])
    runs = load_runs(folder)
    result = summarise(runs)
    assert [r["seed"] for r in result["runs"]] == [1, 2, 3] and result["varied"] == []
    (group,) = result["groups"]
    assert group["test"][0] == pytest.approx(0.85) and group["test"][1] == pytest.approx(0.05)
    assert group["best_val"][0] == pytest.approx(0.92) and group["best_val"][1] == pytest.approx(0.02)
    png = plot_curves(runs, folder / "curves.png")
    assert png.stat().st_size > 10_000


def test_runs_that_differ_in_more_than_the_seed_are_grouped(trained_run, tmp_path):
    from signlip.sweep import load_runs, summarise

    folder = make_sweep(trained_run, tmp_path / "sweep", [(1, 0.9, 0.8), (2, 0.9, 0.9)], lr=1e-3)
    make_sweep(trained_run, tmp_path / "sweep" / "more", [(1, 0.5, 0.4), (2, 0.5, 0.6)], lr=1e-2)
    result = summarise(load_runs(folder))
    assert result["varied"] == ["optim.lr"]
    means = sorted(round(g["test"][0], 6) for g in result["groups"])
    assert means == [0.5, 0.85] and all(g["runs"] == 2 for g in result["groups"])


def test_cli_report_and_bad_input(trained_run, tmp_path):
    folder = make_sweep(trained_run, tmp_path / "sweep", [(1, 0.90, 0.80), (2, 0.92, 0.90)])
    proc = run_cli("report", str(folder), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "0.8500 ± 0.0707" in proc.stdout and "report_curves.png" in proc.stdout
    assert (folder / "report_curves.png").is_file() and json.loads((folder / "report.json").read_text())["runs"]
    assert run_cli("report", f"dir={folder}", cwd=tmp_path).returncode == 0
    (tmp_path / "empty").mkdir()
    for args in ([str(tmp_path / "missing")], [str(tmp_path / "empty")], []):
        proc = run_cli("report", *args, cwd=tmp_path / "empty")
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, (args, proc.stderr)
