"""`signlip prepare task=asl_tcn_transformer data.raw_manifest=videos.csv` with real MediaPipe on real pixels: a
clip of a photographed hand is prepared into a (T, 543, 3) array; a clip with no hand is listed in the report."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, run_cli

MODELS = REPO / "models"
NEEDED = ("hand_landmarker.task", "face_landmarker.task", "pose_landmarker_full.task", "handSrc.jpg")

pytestmark = [
    pytest.mark.mediapipe,
    pytest.mark.skipif(not all((MODELS / f).is_file() for f in NEEDED),
                       reason="run python scripts/fetch_models.py --photos"),
]


def _write_video(path: Path, frames: list[np.ndarray]) -> None:
    import cv2

    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()


def test_prepare_videos_writes_arrays_and_reports_handless(tmp_path):
    import cv2

    img = cv2.imread(str(MODELS / "handSrc.jpg"))  # BGR, as VideoWriter wants
    hand = [np.roll(img, 3 * i, axis=1) for i in range(5)]
    blank = [np.full_like(img, 128) for _ in range(5)]
    _write_video(tmp_path / "hand.mp4", hand)
    _write_video(tmp_path / "blank.mp4", blank)
    with (tmp_path / "videos.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "split", "signer"])
        w.writerows([("hand.mp4", "five", "train", "a"), ("blank.mp4", "five", "train", "b")])
    args = ("prepare", "task=asl_tcn_transformer", f"data.raw_manifest={tmp_path / 'videos.csv'}",
            f"data.cache_dir={tmp_path / 'cache'}", f"data.manifests_dir={tmp_path / 'manifests'}",
            f"data.prepare.models_dir={MODELS}")
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    prepared = next((tmp_path / "manifests").glob("*.prepared.csv"))
    rows = list(csv.DictReader(prepared.open()))
    assert [r["source"] for r in rows] == [str(tmp_path / "hand.mp4")] and rows[0]["signer"] == "a"
    arr = np.load(prepared.parent / rows[0]["path"])
    assert arr.shape == (5, 543, 3) and arr.dtype == np.float32
    assert np.isfinite(arr[:, 522:543]).all(-1).all(-1).sum() >= 4  # the signer's right hand in its slot
    report = list(csv.DictReader(next((tmp_path / "cache").rglob("prepare_report.csv")).open()))
    assert [Path(r["path"]).name for r in report] == ["blank.mp4"] and "no hand found" in report[0]["reason"]
    assert "blank.mp4" in proc.stdout
