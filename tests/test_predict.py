"""`signlip predict`: new inputs go through the checkpoint's own preprocessing, and give what evaluate gives."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, run_cli
from signlip.build import rebuild
from signlip.checkpoint import load_checkpoint
from signlip.deploy.predict import Recogniser, resolve_inputs
from signlip.errors import SignlipError
from signlip.trainer import run_evaluation

TASKS = ["landmark_gru", "lip_cnnlstm", "lip_cnn3d", "asl_tcn_transformer", "i3d", "mobilenetv3"]
FACE_MODEL = REPO / "models" / "face_landmarker.task"


def sources(manifest: str) -> dict[str, str]:
    """Prepared file (resolved) → the raw video it was prepared from, for manifests written by `signlip prepare`."""
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    folder = Path(manifest).parent
    return {str((folder / r["path"]).resolve()): r["source"] for r in rows if r.get("source")}


@pytest.mark.parametrize("task", TASKS)
def test_predict_on_each_test_file_gives_evaluates_prediction(task, tiny_checkpoint):
    ckpt = load_checkpoint(tiny_checkpoint(task))
    back = rebuild(ckpt, splits=("test",))
    device = torch.device("cpu")
    run_evaluation(back.model, back.objective, back.evaluator, back.loader("test"), back.data.batch_transform, device)
    predicted, _ = back.evaluator.predictions()  # dataset order
    paths = back.data.splits["test"].paths
    rec = Recogniser.load(ckpt, device="cpu")
    rows = rec.predict_paths(paths, top_k=3, batch_size=4)
    assert [r["status"] for r in rows] == ["ok"] * len(paths), [r["reason"] for r in rows if r["status"] != "ok"]
    assert [r["label"] for r in rows] == [back.data.classes[i] for i in predicted]
    for r in rows:  # top-k: sorted probabilities of distinct classes, top-1 first
        probs = [p for _, p in r["top_k"]]
        assert probs == sorted(probs, reverse=True) and r["top_k"][0] == (r["label"], r["probability"])
    raw = sources(ckpt["preprocessing"]["manifest"])
    if raw:  # clip tasks: the raw video, decoded and cropped by the preparer, gives the cached clip's logits
        picked = paths[:3]
        from_video = torch.cat([rec.logits(rec.read(raw[str(Path(p).resolve())])) for p in picked])
        from_cache = torch.cat([rec.logits(rec.read(p)) for p in picked])
        torch.testing.assert_close(from_video, from_cache, rtol=0, atol=0)


@pytest.mark.parametrize("task", ["cslr_landmarks", "cslr_lip", "cslr_rgb"])
def test_predict_on_each_test_sentence_gives_evaluates_decoding(task, tiny_checkpoint):
    """CTC checkpoints: the gloss sequence predict prints for a test file is the one evaluate decodes for it (one
    sentence per batch on both sides: padding a batch changes what a bidirectional model sees at the tail)."""
    ckpt = load_checkpoint(tiny_checkpoint(task))
    back = rebuild(ckpt, splits=("test",))
    run_evaluation(back.model, back.objective, back.evaluator, back.loader("test", batch_size=1),
                   back.data.batch_transform, torch.device("cpu"))
    decoded, _ = back.evaluator.predictions()  # dataset order
    rows = Recogniser.load(ckpt, device="cpu").predict_paths(back.data.splits["test"].paths, batch_size=1)
    assert [r["status"] for r in rows] == ["ok"] * len(rows)
    assert [r["label"] for r in rows] == decoded


def test_single_file_prints_top_k_and_folder_writes_csv_and_jsonl(tiny_checkpoint, tmp_path):
    ckpt = tiny_checkpoint("lip_cnnlstm")
    manifest = load_checkpoint(ckpt)["preprocessing"]["manifest"]
    videos = sorted(sources(manifest).values())
    proc = run_cli("predict", f"ckpt={ckpt}", f"input={videos[0]}", "top_k=2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "probability" in proc.stdout and sum(c in proc.stdout for c in load_checkpoint(ckpt)["classes"]) == 2
    folder = Path(videos[0]).parents[2]  # videos-*/<split>/<speaker>/<word>.mp4
    out = tmp_path / "preds.csv"
    proc = run_cli("predict", f"ckpt={ckpt}", f"input={folder}", f"out={out}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(list(folder.rglob("*.mp4"))) and all(r["status"] == "ok" for r in rows)
    assert all(len(r["top_k"].split(";")) == 4 for r in rows)  # 4 classes < top_k=5
    jsonl = tmp_path / "preds.jsonl"
    proc = run_cli("predict", f"ckpt={ckpt}", f"input={manifest}", f"out={jsonl}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(records) == sum(1 for _ in open(manifest)) - 1 and "true_label" in records[0]
    assert "accuracy on the" in proc.stdout


def test_a_damaged_video_gets_its_own_row_and_the_rest_are_predicted(tiny_checkpoint, tmp_path):
    ckpt = tiny_checkpoint("lip_cnnlstm")
    good = sorted(sources(load_checkpoint(ckpt)["preprocessing"]["manifest"]).values())[:2]
    folder = tmp_path / "in"
    folder.mkdir()
    for i, v in enumerate(good):
        (folder / f"good{i}.mp4").write_bytes(Path(v).read_bytes())
    data = Path(good[0]).read_bytes()
    (folder / "cut.mp4").write_bytes(data[:200])  # truncated to its first 200 bytes
    (folder / "empty.mp4").write_bytes(b"")
    rows = Recogniser.load(ckpt, device="cpu").predict_paths(resolve_inputs(str(folder), (".mp4",))[0])
    by_name = {Path(r["input"]).name: r for r in rows}
    assert by_name["good0.mp4"]["status"] == by_name["good1.mp4"]["status"] == "ok"
    for bad in ("cut.mp4", "empty.mp4"):
        assert by_name[bad]["status"] == "error" and by_name[bad]["reason"], by_name[bad]


@pytest.mark.parametrize("make_input, expected", [
    (lambda d: d / "missing.npy", "input not found"),
    (lambda d: (d / "x.mp4").write_bytes(b"") or d / "x.mp4", "reads .npy files, not x.mp4"),
    (lambda d: np.save(d / "bad.npy", np.zeros((5, 7, 3), np.float32)) or d / "bad.npy", "per-frame shape"),
])
def test_bad_input_is_one_line_exit_2(tiny_checkpoint, tmp_path, make_input, expected):
    path = make_input(tmp_path)
    proc = run_cli("predict", f"ckpt={tiny_checkpoint('landmark_gru')}", f"input={path}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_missing_checkpoint_is_one_line_exit_2(tmp_path):
    proc = run_cli("predict", f"ckpt={tmp_path / 'nope.pt'}", "input=x.npy", cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def mediapipe_checkpoint(ckpt_path: Path, face_sha: str) -> dict:
    """The lip checkpoint as if its clips had been cropped by the face landmarker with model `face_sha`."""
    from signlip.data.clips.roi import ALIGNMENT

    ckpt = load_checkpoint(ckpt_path)
    ckpt["preprocessing"]["fingerprint"].update(roi="mediapipe", face_model_sha256=face_sha, roi_alignment=ALIGNMENT)
    ckpt["config"]["data"]["prepare"]["models_dir"] = str(FACE_MODEL.parent)
    return ckpt


def test_a_face_model_other_than_the_training_one_is_refused(tiny_checkpoint, tmp_path):
    if not FACE_MODEL.is_file():
        pytest.skip("needs models/face_landmarker.task (python scripts/fetch_models.py)")
    ckpt = mediapipe_checkpoint(tiny_checkpoint("lip_cnnlstm"), "0" * 64)
    with pytest.raises(SignlipError, match="not the face model this checkpoint"):
        Recogniser.load(ckpt, device="cpu")
    with pytest.raises(SignlipError, match="is not here"):
        Recogniser.load(ckpt, device="cpu", models_dir=str(tmp_path))


@pytest.mark.mediapipe
def test_a_video_without_a_face_says_so_and_a_face_is_cropped(tiny_checkpoint, tmp_path):
    if not FACE_MODEL.is_file():
        pytest.skip("needs models/face_landmarker.task (python scripts/fetch_models.py)")
    from skimage.data import astronaut

    from signlip.data.clips.roi import model_sha256
    from signlip.data.clips.video import write_video

    ckpt = mediapipe_checkpoint(tiny_checkpoint("lip_cnnlstm"), model_sha256(FACE_MODEL))
    face = astronaut()[:, 100:420]  # (512, 320, 3) RGB, one frontal face
    write_video(tmp_path / "face.mp4", np.stack([np.roll(face, 2 * i, axis=1) for i in range(12)]))
    write_video(tmp_path / "wall.mp4", np.full((12, 240, 320, 3), 128, np.uint8))
    rows = Recogniser.load(ckpt, device="cpu").predict_paths([str(tmp_path / "face.mp4"), str(tmp_path / "wall.mp4")])
    assert rows[0]["status"] == "ok", rows[0]
    assert rows[1]["status"] == "error" and "no face found" in rows[1]["reason"], rows[1]


def test_a_holistic_video_without_the_landmarker_models_is_one_line_exit_2(tiny_checkpoint, tmp_path):
    from signlip.data.clips.video import write_video

    video = write_video(tmp_path / "sign.mp4", np.zeros((4, 32, 32, 3), np.uint8))
    proc = run_cli("predict", f"ckpt={tiny_checkpoint('asl_tcn_transformer')}", f"input={video}",
                   f"models_dir={tmp_path / 'no_models'}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "not found" in proc.stderr and "fetch_models.py" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_checkpoint_with_mouth_crops_of_an_older_alignment_is_refused(tiny_checkpoint):
    if not FACE_MODEL.is_file():
        pytest.skip("needs models/face_landmarker.task (python scripts/fetch_models.py)")
    from signlip.data.clips.roi import model_sha256

    ckpt = mediapipe_checkpoint(tiny_checkpoint("lip_cnnlstm"), model_sha256(FACE_MODEL))
    del ckpt["preprocessing"]["fingerprint"]["roi_alignment"]
    with pytest.raises(SignlipError, match="older signlip"):
        Recogniser.load(ckpt, device="cpu")


def test_a_folder_of_frames_is_one_input_and_gives_its_videos_prediction(tiny_checkpoint, tmp_path):
    """PHOENIX-style sentences: a folder of PNG frames is read as its video would be (lossless frames → same
    logits); a folder of such folders is one input each; a folder of neither is one line."""
    import cv2

    ckpt = tiny_checkpoint("i3d")
    videos = sorted(sources(load_checkpoint(ckpt)["preprocessing"]["manifest"]).values())[:2]
    root = tmp_path / "fullFrame" / "test"
    for i, video in enumerate(videos):
        folder = root / f"sentence{i}" / "1"
        folder.mkdir(parents=True)
        cap, t = cv2.VideoCapture(video), 0
        while (frame := cap.read()[1]) is not None:  # every decoded frame, as lossless PNGs
            t += 1
            cv2.imwrite(str(folder / f"images{t:04d}.png"), frame)
        cap.release()
    rec = Recogniser.load(ckpt, device="cpu")
    paths, _ = resolve_inputs(str(root), rec.reader.suffixes)
    assert [Path(p).parent.name for p in paths] == ["sentence0", "sentence1"]
    assert resolve_inputs(str(root / "sentence1" / "1"), rec.reader.suffixes)[0] == [paths[1]]
    from_frames = torch.cat([rec.logits(rec.read(p)) for p in paths])
    from_videos = torch.cat([rec.logits(rec.read(v)) for v in videos])
    torch.testing.assert_close(from_frames, from_videos, rtol=0, atol=1e-6)
    (root / "sentence1" / "1" / "clip.mp4").write_bytes(Path(videos[1]).read_bytes())  # frames beside a video:
    assert resolve_inputs(str(root / "sentence1" / "1"), rec.reader.suffixes)[0][0].endswith("clip.mp4")  # a video
    (tmp_path / "nothing").mkdir()
    with pytest.raises(SignlipError, match="folder of frame images"):
        resolve_inputs(str(tmp_path / "nothing"), rec.reader.suffixes)


def test_whole_rgb_sentences_of_different_lengths_predict_in_one_batch(tiny_checkpoint):
    """A CTC clip checkpoint reads sentences whole: a batch of different lengths is padded with a mask, as the
    dataset batches them (one row each); the longest, unpadded, decodes as it does alone."""
    rec = Recogniser.load(tiny_checkpoint("cslr_rgb"), device="cpu")
    paths = sorted(sources(rec.checkpoint["preprocessing"]["manifest"]).values())[:3]
    reads = [rec.read(p) for p in paths]
    lengths = [int(r["mask"].sum()) for r in reads]
    assert len(set(lengths)) > 1, lengths
    rows = rec.predict_paths(paths, batch_size=3)
    assert [r["status"] for r in rows] == ["ok"] * 3
    longest = lengths.index(max(lengths))
    alone = rec.rows(rec.logits(reads[longest]), top_k=1)[0]
    assert rows[longest]["label"] == alone["label"]
    assert rows[longest]["probability"] == pytest.approx(alone["probability"], abs=1e-5)
