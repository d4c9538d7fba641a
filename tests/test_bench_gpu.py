"""scripts/bench_gpu.py on CPU: the quick run measures the Trainer against the bare loop, records what it cannot
measure instead of crashing, and writes every figure to JSON."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from conftest import REPO


def load_script():
    spec = importlib.util.spec_from_file_location("bench_gpu", REPO / "scripts" / "bench_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory) -> dict:
    """One quick landmark_gru run, in process (torch is imported once), with torch.compile made to fail: a real
    compilation takes minutes on a busy CPU, and the failure path is what must not crash the benchmark. One thread:
    on a shared 2-core machine two OpenMP threads spin against the other jobs (measured: a GRU step 50× slower)."""
    bench = load_script()
    out = tmp_path_factory.mktemp("bench_gpu") / "figures.json"

    def no_compiler(*_args, **_kwargs):
        raise RuntimeError("no C++ compiler on this machine\nsecond line of the compiler's complaint")

    threads = torch.get_num_threads()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(torch, "compile", no_compiler)
            bench.main(["--quick", "--device", "cpu", "--tasks", "landmark_gru", "--threads", "1", "--json", str(out)])
    finally:
        torch.set_num_threads(threads)  # the rest of the session keeps its own setting
    return json.loads(out.read_text())


def rows(report: dict, **match) -> list[dict]:
    return [r for r in report["tasks"]["landmark_gru"]["training"] if all(r.get(k) == v for k, v in match.items())]


def test_trainer_vs_bare_ratio_at_precision_32(quick_report):
    task = quick_report["tasks"]["landmark_gru"]
    assert task["model"] == "landmark_gru" and task["batch_size"] == 32 and task["batches"] >= 1
    [row] = rows(quick_report, precision="32", compile=False)
    assert "error" not in row, row.get("error")
    assert len(row["trainer_samples_per_s"]) == len(row["bare_samples_per_s"]) == task["repeats"] == 2
    assert row["trainer"] > 0 and row["bare"] > 0 and row["ratio"] > 0
    assert row["ratio"] == pytest.approx(row["trainer"] / row["bare"])
    assert row["samples"] == task["batches"] * task["batch_size"]  # the same full batches in both loops


def test_unmeasurable_settings_are_recorded_not_raised(quick_report):
    [fp16] = rows(quick_report, precision="16")
    assert fp16["skipped"] == "skipped: needs CUDA"
    [compiled] = rows(quick_report, compile=True)
    assert compiled["error"] == "compile failed: RuntimeError: no C++ compiler on this machine"
    # landmark_gru has no conv weights: no channels-last row, only the recipe's layout
    assert {r["channels_last"] for r in quick_report["tasks"]["landmark_gru"]["training"]} == {False}
    [bf16] = rows(quick_report, precision="bf16")
    assert bf16.get("ratio", 0) > 0 or "error" in bf16  # measured, or the reason it could not be


def test_dataloader_delivery_vs_consumption(quick_report):
    task = quick_report["tasks"]["landmark_gru"]
    assert task["consumption_steps_per_s"] > 0
    loader = {(r["num_workers"], r["pin_memory"]): r for r in task["dataloader"]}
    assert set(loader) == {(0, False), (0, True), (2, False), (2, True)}
    for workers in (0, 2):
        assert loader[(workers, False)]["batches_per_s"] > 0
        assert loader[(workers, False)]["vs_consumption"] == pytest.approx(
            loader[(workers, False)]["batches_per_s"] / task["consumption_steps_per_s"])
        assert loader[(workers, True)]["skipped"] == "skipped: needs CUDA"
    assert quick_report["device"] == "cpu" and quick_report["environment"]
