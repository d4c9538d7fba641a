"""Sliding-window recognition: each window gives what predict gives on that window's clip."""

from __future__ import annotations

import csv
import glob
from pathlib import Path

import numpy as np
import pytest
import torch
from test_predict import FACE_MODEL, mediapipe_checkpoint

from conftest import run_cli
from signlip.checkpoint import load_checkpoint
from signlip.data.clips.video import probe_video, read_frames, write_video
from signlip.deploy.predict import Recogniser
from signlip.deploy.stream import run_stream


def long_lip_video(ckpt: Path, path: Path, n_clips: int = 3) -> Path:
    """A few of the checkpoint's test videos one after the other (a longer recording of several words)."""
    root = Path(load_checkpoint(ckpt)["preprocessing"]["manifest"]).parents[1]
    # lip/<settings folder>/videos-*/…: the synthetic root holds one folder per setting (make_synthetic)
    videos = sorted(glob.glob(str(root / "lip" / "**" / "videos-*" / "test" / "*" / "*.mp4"), recursive=True))[:n_clips]
    return write_video(path, np.concatenate([read_frames(v, fps=25) for v in videos]), fps=25)


def test_each_window_is_the_prepared_clip_of_its_frames(tiny_checkpoint, tmp_path):
    ckpt = tiny_checkpoint("lip_cnnlstm")
    video = long_lip_video(ckpt, tmp_path / "long.mp4")
    rec = Recogniser.load(ckpt, device="cpu")
    result = run_stream(rec, str(video), window=8, hop=3, smoothing=0.0, top_k=2, video_out=tmp_path / "ann.mp4")
    # Decoded frame by frame, resampled as it goes: the frames prepare would decode from the whole file.
    frames = read_frames(video, fps=rec.reader.stream_fps, max_side=rec.reader.max_side)
    assert result.frames == len(frames)
    assert len(result.windows) == (len(frames) - 8) // 3 + 1
    for row in result.windows:
        clip = rec.reader.preparer.clip_from_frames(frames[row["start_frame"]:row["end_frame"]])
        logits = rec.logits({"x": torch.from_numpy(clip)[None]})
        (expected,) = rec.rows(logits, 2)
        assert row["label"] == expected["label"] and row["probability"] == pytest.approx(expected["probability"],
                                                                                          abs=1e-6)
        assert row["smoothed_label"] == row["label"]  # smoothing=0
    info = probe_video(tmp_path / "ann.mp4")
    assert info.frame_count == len(frames) and (info.height, info.width) == frames.shape[1:3]


@pytest.mark.parametrize("task", ["landmark_gru", "asl_tcn_transformer"])
def test_landmark_windows_equal_predict_on_the_window_saved_as_a_file(task, tiny_checkpoint, tmp_path):
    ckpt = tiny_checkpoint(task)
    rec = Recogniser.load(ckpt, device="cpu")
    manifest = Path(load_checkpoint(ckpt)["preprocessing"]["manifest"])
    with manifest.open(newline="") as fh:
        files = [manifest.parent / r["path"] for r in csv.DictReader(fh)][:3]
    long = np.concatenate([np.load(f) for f in files])
    np.save(tmp_path / "long.npy", long)
    window = min(20, len(long) // 2)
    result = run_stream(rec, str(tmp_path / "long.npy"), window=window, hop=7, smoothing=0.6)
    assert len(result.windows) == (len(long) - window) // 7 + 1
    smoothed_differs = False
    for row in result.windows:
        np.save(tmp_path / "w.npy", long[row["start_frame"]:row["end_frame"]])
        (expected,) = rec.predict_paths([str(tmp_path / "w.npy")], top_k=3)
        if row["status"] != "ok":  # a window with no hand in any frame (holistic): predict says the same
            assert expected["status"] == "error" and expected["reason"].startswith("no hand"), expected
            continue
        assert row["label"] == expected["label"]
        assert row["probability"] == pytest.approx(expected["probability"], abs=1e-5)
        smoothed_differs |= row["smoothed_probability"] != pytest.approx(row["probability"], abs=1e-9)
    assert smoothed_differs  # smoothing=0.6 mixes in the earlier windows


def test_stream_cli_writes_csv_and_annotated_video(tiny_checkpoint, tmp_path):
    ckpt = tiny_checkpoint("lip_cnnlstm")
    video = long_lip_video(ckpt, tmp_path / "long.mp4", n_clips=2)
    out = tmp_path / "out" / "annotated.mp4"
    proc = run_cli("predict", f"ckpt={ckpt}", f"input={video}", "stream=true", f"out={out}", "hop=4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and "frames/s end to end" in proc.stdout
    with out.with_suffix(".csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(r["status"] == "ok" and r["smoothed_label"] for r in rows)


@pytest.mark.parametrize("args, expected", [
    (["window=10000"], "fewer than one window"),
    (["input=camera:x"], "camera:0"),
    (["out=x.txt"], "annotated .mp4"),
])
def test_stream_bad_input_is_one_line_exit_2(tiny_checkpoint, tmp_path, args, expected):
    ckpt = tiny_checkpoint("lip_cnnlstm")
    video = long_lip_video(ckpt, tmp_path / "v.mp4", n_clips=1)
    proc = run_cli("predict", f"ckpt={ckpt}", f"input={video}", "stream=true", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_landmark_model_refuses_to_stream_a_video(tiny_checkpoint, tmp_path):
    video = write_video(tmp_path / "v.mp4", np.zeros((10, 32, 32, 3), np.uint8))
    proc = run_cli("predict", f"ckpt={tiny_checkpoint('landmark_gru')}", f"input={video}", "stream=true", cwd=tmp_path)
    assert proc.returncode == 2 and "reads .npy inputs, not .mp4" in proc.stderr, proc.stderr


@pytest.mark.mediapipe
def test_mouth_crops_stream_with_the_face_tracked_across_windows(tiny_checkpoint, tmp_path):
    if not FACE_MODEL.is_file():
        pytest.skip("needs models/face_landmarker.task (python scripts/fetch_models.py)")
    from skimage.data import astronaut

    from signlip.data.clips.roi import model_sha256

    ckpt = mediapipe_checkpoint(tiny_checkpoint("lip_cnnlstm"), model_sha256(FACE_MODEL))
    face = astronaut()[:, 100:420]
    blank = np.full_like(face, 128)
    frames = np.stack([np.roll(face, i, axis=1) for i in range(16)] + [blank] * 10)  # a face, then none
    video = write_video(tmp_path / "face.mp4", frames, fps=25)
    result = run_stream(Recogniser.load(ckpt, device="cpu"), str(video), window=8, hop=4)
    status = [r["status"] for r in result.windows]
    assert status[0] == "ok" and status[-1] == "error", status  # the last window holds no face
    assert "no face found" in result.windows[-1]["reason"]


@pytest.mark.mediapipe
def test_holistic_video_predicts_and_streams_with_real_landmarkers(tiny_checkpoint, tmp_path):
    models = FACE_MODEL.parent
    if not all((models / f).is_file() for f in ("hand_landmarker.task", "pose_landmarker_full.task", "handSrc.jpg")):
        pytest.skip("run python scripts/fetch_models.py --photos")
    import cv2

    img = cv2.cvtColor(cv2.imread(str(models / "handSrc.jpg")), cv2.COLOR_BGR2RGB)
    hand = [np.roll(img, 3 * i, axis=1) for i in range(12)]
    video = write_video(tmp_path / "hand.mp4", np.stack(hand + [np.full_like(img, 128)] * 12), fps=15)
    blank = write_video(tmp_path / "blank.mp4", np.full((6, *img.shape), 128, np.uint8), fps=15)
    rec = Recogniser.load(tiny_checkpoint("asl_tcn_transformer"), device="cpu", models_dir=str(models))
    rows = rec.predict_paths([str(video), str(blank)])
    assert rows[0]["status"] == "ok", rows[0]
    assert rows[1]["status"] == "error" and "no hand found" in rows[1]["reason"], rows[1]
    result = run_stream(rec, str(video), window=8, hop=4)
    status = [r["status"] for r in result.windows]
    assert status[0] == "ok" and status[-1] == "error" and "no hand found" in result.windows[-1]["reason"], status
