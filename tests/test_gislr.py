"""GISLR-format conversion: exact schema fixture written with pyarrow."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from signlip.data.formats.gislr import convert_gislr, read_gislr_parquet
from signlip.data.holistic.features import LEFT_HAND, PART_SIZES, POSE, RIGHT_HAND
from signlip.errors import SignlipError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _write_sequence(path, n_frames: int, seed: int, hands: bool = True, drop: tuple[str, ...] = ()) -> np.ndarray:
    """Write one parquet in the GISLR schema; return the expected (T, 543, 3) array."""
    rng = np.random.default_rng(seed)
    rows = {"frame": [], "row_id": [], "type": [], "landmark_index": [], "x": [], "y": [], "z": []}
    expected = np.full((n_frames, 543, 3), np.nan, np.float32)
    offsets = {"face": 0, "left_hand": 468, "pose": 489, "right_hand": 522}
    for f in range(n_frames):
        frame = 20 + f  # GISLR frame numbers need not start at 0
        for kind in ("face", "left_hand", "pose", "right_hand"):
            for i in range(PART_SIZES[kind]):
                xyz = rng.uniform(0, 1, 3).astype(np.float32)
                missing = kind.endswith("hand") and (not hands or (kind == "right_hand" and f % 2 == 0))
                if missing:
                    xyz[:] = np.nan
                rows["frame"].append(frame)
                rows["row_id"].append(f"{frame}-{kind}-{i}")
                rows["type"].append(kind)
                rows["landmark_index"].append(i)
                for c, v in zip("xyz", xyz):
                    rows[c].append(float(v))
                expected[f, offsets[kind] + i] = xyz
    table = pa.table({k: v for k, v in rows.items() if k not in drop})
    order = np.random.default_rng(seed + 1).permutation(len(table))  # row order must not matter
    pq.write_table(table.take(pa.array(order)), path)
    return expected


@pytest.fixture()
def gislr_root(tmp_path):
    root = tmp_path / "gislr"
    lm = root / "train_landmark_files"
    records, expected = [], {}
    specs = [("p1", "100", "hello", True), ("p1", "101", "thanks", True), ("p2", "200", "hello", True),
             ("p2", "201", "thanks", False), ("p3", "300", "hello", True)]
    for k, (pid, seq, sign, hands) in enumerate(specs):
        (lm / pid).mkdir(parents=True, exist_ok=True)
        rel = f"train_landmark_files/{pid}/{seq}.parquet"
        expected[seq] = _write_sequence(root / rel, n_frames=3 + k, seed=k, hands=hands)
        records.append((rel, pid, seq, sign))
    with (root / "train.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "participant_id", "sequence_id", "sign"])
        w.writerows(records)
    return root, expected


def test_convert_arrays_manifest_and_report(gislr_root, tmp_path):
    root, expected = gislr_root
    manifest, report = convert_gislr(root, tmp_path / "out")
    rows = list(csv.DictReader(manifest.open()))
    assert [r["path"] for r in rows] == ["arrays/p1/100.npy", "arrays/p1/101.npy", "arrays/p2/200.npy",
                                         "arrays/p3/300.npy"]
    assert {r["signer"] for r in rows} == {"p1", "p2", "p3"} and rows[1]["label"] == "thanks"
    for r in rows:
        arr = np.load(manifest.parent / r["path"])
        seq = r["path"].split("/")[-1][:-4]
        assert arr.dtype == np.float32 and arr.shape == expected[seq].shape
        np.testing.assert_array_equal(arr, expected[seq])  # NaN positions equal too
    first = np.load(manifest.parent / rows[0]["path"])
    assert np.isnan(first[0, RIGHT_HAND]).all() and np.isfinite(first[0, LEFT_HAND]).all()
    assert np.isfinite(first[:, POSE]).all()
    assert len(report) == 1 and report[0][0].endswith("201.parquet") and "no hand" in report[0][1]
    assert (manifest.parent / "gislr_report.csv").is_file()
    again, report2 = convert_gislr(root, tmp_path / "out")  # resumable: reuses the arrays
    assert again == manifest and report2 == report


def test_missing_columns_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.parquet"
    _write_sequence(path, 2, 0, drop=("landmark_index", "z"))
    with pytest.raises(SignlipError, match=r"bad\.parquet.*landmark_index, z"):
        read_gislr_parquet(path)


def test_missing_train_csv(tmp_path):
    with pytest.raises(SignlipError, match="train.csv"):
        convert_gislr(tmp_path)
