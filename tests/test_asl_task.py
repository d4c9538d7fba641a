"""Task asl_tcn_transformer end to end: synthetic holistic data → train (evaluate from the checkpoint alone and resume:
tests/test_task_contract.py); GISLR parquet → `signlip prepare` → train; bad input → one clear line, exit 2 (or the
prepare report)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cli, train_in_process
from signlip.data.holistic.features import PART_SIZES, PARTS
from signlip.data.holistic.synthetic import make_synthetic_holistic

# Short run: 4/1/1 signers × 25 classes × 2 samples, sequences ≤ 64 frames, a higher lr, no late dropout.
SHORT = ["task=asl_tcn_transformer", "data.max_len=64", "optim.lr=1e-3", "sched.T_0_epochs=8",
         "model.late_dropout_step=100000", "trainer.max_epochs=8", "trainer.early_stopping.enabled=false"]


@pytest.fixture(scope="module")
def holistic_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("holistic")
    make_synthetic_holistic(root, n_people=[4, 1, 1], per_class_per_person=2, seed=0)
    return root


@pytest.fixture(scope="module")
def asl_run(tmp_path_factory, holistic_root) -> dict:
    run_dir = tmp_path_factory.mktemp("asl_run")
    return train_in_process(run_dir, [*SHORT, f"data.synthetic.root={holistic_root}", "data.synthetic.n_people=[4,1,1]",
                                      "data.synthetic.per_class_per_person=2"])


@pytest.mark.slow  # trains the 1.97M-parameter model: ~1 min on a quiet 2-core CPU, far more under load
def test_short_training_learns_far_above_chance(asl_run):
    test = asl_run["test"]
    assert test["chance"] == pytest.approx(1 / 25)
    assert test["n_samples"] == 50
    # 8 epochs of 200 samples; chance is 0.04 — 0.3 lies > 8 binomial standard errors above it.
    assert test["accuracy"] >= 0.3, f"test accuracy {test['accuracy']:.3f}: the model did not learn"
    ckpt = torch.load(Path(asl_run["checkpoint_dir"]) / "best.pt", weights_only=True)
    assert ckpt["model"]["kwargs"]["input_dim"] == 744 and ckpt["model"]["kwargs"]["num_classes"] == 25
    prep = ckpt["preprocessing"]
    assert prep["kind"] == "holistic" and prep["preset"] == "hands_lips_nose_eyes" and prep["max_len"] == 64
    assert prep["feature_dim"] == 744 and len(prep["classes"]) == 25


@pytest.mark.slow  # trains the 1.97M-parameter model: ~1 min on a quiet 2-core CPU, far more under load
def test_checkpoint_refuses_data_with_other_classes(asl_run, tmp_path):
    from signlip.errors import SignlipError
    from signlip.evaluation import evaluate_checkpoint

    manifest = Path(load_manifest_path(asl_run))
    rows = list(csv.DictReader(manifest.open()))
    for r in rows:
        r["label"] = "unknown_sign"
        r["path"] = str(manifest.parent / r["path"])
    other = tmp_path / "other.csv"
    with other.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(SignlipError, match="unknown_sign"):
        evaluate_checkpoint(Path(asl_run["checkpoint_dir"]) / "best.pt", manifest=str(other), out=tmp_path)


def load_manifest_path(run: dict) -> str:
    return torch.load(Path(run["checkpoint_dir"]) / "best.pt", weights_only=True)["preprocessing"]["manifest"]


# --- bad input through the CLI -------------------------------------------------------------------------------------
def _manifest(tmp_path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """A manifest with 3 signers (one per split) and the given arrays saved under their names."""
    rows = []
    for k, (name, arr) in enumerate(arrays.items()):
        np.save(tmp_path / name, arr)
        rows.append((name, f"sign{k % 2}", ("train", "train", "val", "val", "test", "test")[k % 6], f"p{k % 6 // 2}"))
    path = tmp_path / "manifest.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "split", "signer"])
        w.writerows(rows)
    return path


def _good(holistic_root: Path, n: int) -> dict[str, np.ndarray]:
    files = sorted((holistic_root / "arrays").rglob("*.npy"))[:n]
    return {f"good{i}.npy": np.load(f) for i, f in enumerate(files)}


def test_wrong_point_count_is_one_clear_line_exit_2(holistic_root, tmp_path):
    arrays = _good(holistic_root, 6)
    arrays["good3.npy"] = arrays["good3.npy"][:, :21]  # a hand-only (T, 21, 3) array
    manifest = _manifest(tmp_path, arrays)
    proc = run_cli("train", "task=asl_tcn_transformer", f"data.manifest={manifest}", "trainer.max_epochs=1",
                   f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "good3.npy" in lines[0] and "(T, 543, 3)" in lines[0] and "21, 3)" in lines[0]


def test_sequence_without_any_hand_exit_2_or_skipped(holistic_root, tmp_path):
    arrays = _good(holistic_root, 6)
    arrays["good2.npy"][:, PARTS["left_hand"]] = np.nan
    arrays["good2.npy"][:, PARTS["right_hand"]] = np.nan
    manifest = _manifest(tmp_path, arrays)
    proc = run_cli("train", "task=asl_tcn_transformer", f"data.manifest={manifest}", "trainer.max_epochs=1",
                   f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "good2.npy" in line and "no hand in any frame" in line
    assert "data.on_handless=skip" in line
    # With the opt-in, the sample is left out and listed.
    from signlip.registry import build_data

    data = build_data("holistic", manifest=str(manifest), on_handless="skip", augment={"enabled": False})
    assert len(data.splits["val"]) == 1 and not any("good2" in p for p in data.splits["val"].paths)


# --- GISLR ---------------------------------------------------------------------------------------------------------
def _write_gislr(path: Path, arr: np.ndarray, drop: tuple[str, ...] = ()) -> None:
    """Write a (T, 543, 3) array as one parquet in the exact GISLR schema (frame,row_id,type,landmark_index,x,y,z)."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    t = arr.shape[0]
    frames = np.repeat(np.arange(t) + 17, 543)  # GISLR frame numbers need not start at 0
    types = np.concatenate([[name] * PART_SIZES[name] for name in PARTS])
    idx = np.concatenate([np.arange(PART_SIZES[name]) for name in PARTS])
    kinds, lms = np.tile(types, t), np.tile(idx, t)
    cols = {"frame": frames.astype(np.int16), "row_id": [f"{f}-{k}-{i}" for f, k, i in zip(frames, kinds, lms)],
            "type": kinds, "landmark_index": lms.astype(np.int16),
            **{c: arr[..., j].reshape(-1).astype(np.float64) for j, c in enumerate("xyz")}}
    pq.write_table(pa.table({k: v for k, v in cols.items() if k not in drop}), path)


@pytest.fixture(scope="module")
def gislr_root(tmp_path_factory, holistic_root) -> Path:
    """4 participants × 3 signs × 2 sequences from the synthetic set, + one parquet lacking columns and one
    sequence with no hand."""
    root = tmp_path_factory.mktemp("gislr")
    manifest = list(csv.DictReader((holistic_root / "manifest.csv").open()))
    signs = ["open_circle_cw", "two_open_apart", "l_tap_chin"]
    signers = sorted({r["signer"] for r in manifest})[:4]
    records = []
    for r in manifest:
        if r["label"] in signs and r["signer"] in signers:
            pid = str(1000 + signers.index(r["signer"]))
            seq = str(len(records) + 1)
            rel = f"train_landmark_files/{pid}/{seq}.parquet"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            arr = np.load(holistic_root / r["path"])
            if seq == "3":
                arr[:, PARTS["left_hand"]] = arr[:, PARTS["right_hand"]] = np.nan
            _write_gislr(root / rel, arr, drop=("landmark_index",) if seq == "5" else ())
            records.append((rel, pid, seq, r["label"]))
    with (root / "train.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "participant_id", "sequence_id", "sign"])
        w.writerows(records)
    return root


@pytest.mark.slow  # 15 s: the CLI end to end; the parquet conversion itself is tested in test_gislr.py
def test_gislr_prepare_via_cli_then_train(gislr_root, tmp_path):
    pytest.importorskip("pyarrow")
    proc = run_cli("prepare", "data.format=gislr", f"data.root={gislr_root}", f"data.cache_dir={tmp_path / 'cache'}",
                   f"data.manifests_dir={tmp_path / 'manifests'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "next: signlip train task=asl_tcn_transformer data.manifest=" in " ".join(proc.stdout.split())
    prepared = next((tmp_path / "manifests").glob("*.prepared.csv"))
    rows = list(csv.DictReader(prepared.open()))
    assert len(rows) == 22 and "split" not in rows[0] and {r["signer"] for r in rows} == {"1000", "1001", "1002",
                                                                                          "1003"}
    arr = np.load(prepared.parent / rows[0]["path"])
    assert arr.shape[1:] == (543, 3) and arr.dtype == np.float32
    report = {Path(r["path"]).name: r["reason"] for r in csv.DictReader(next((tmp_path / "cache").rglob(
        "prepare_report.csv")).open())}
    assert set(report) == {"3.parquet", "5.parquet"}
    assert "no hand" in report["3.parquet"] and "landmark_index" in report["5.parquet"]
    # Resumable: a second run reuses everything.
    again = run_cli("prepare", "data.format=gislr", f"data.root={gislr_root}", f"data.cache_dir={tmp_path / 'cache'}",
                    f"data.manifests_dir={tmp_path / 'manifests'}", cwd=tmp_path)
    assert again.returncode == 0 and "reused 22" in again.stdout
    result = train_in_process(tmp_path / "run", ["task=asl_tcn_transformer", f"data.manifest={prepared}",
                                                 "trainer.max_epochs=2", "data.batch_size=8"])
    ckpt = torch.load(Path(result["checkpoint_dir"]) / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and sorted(ckpt["classes"]) == sorted(["open_circle_cw", "two_open_apart", "l_tap_chin"])
    assert ckpt["preprocessing"]["source_fingerprint"]["source"] == "gislr_parquet"
    # Signer-disjoint split made by signlip: no participant in two splits.
    from signlip.data.manifest import read_manifest

    m = read_manifest(prepared)
    by_split = {s: {m.groups[i] for i in m.rows(s)} for s in ("train", "val", "test")}
    assert not (by_split["train"] & by_split["val"]) and not (by_split["train"] & by_split["test"])
