"""LRW's word boundary as a model input (issue 14): `data.word_boundary=true` turns each clip's duration (its `.txt`)
into one more input channel; lip_cnnlstm appends it to each frame's features, lip_cnn3d reads it as a channel. The
boundary reaches a trained model's output through train, predict (a video's own `.txt`) and the ONNX export (parity);
data without durations and models that cannot read it are one clear line."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import read_rows, train_in_process
from signlip.data.clips.video import write_video
from signlip.errors import SignlipError

WORDS = {"ABOUT": (0.12, 0.32), "WORLD": (0.72, 1.0)}  # a short and a long word: seconds, drawn per clip


def lrw_texture(root: Path, per_split: tuple[int, int, int] = (6, 2, 3)) -> Path:
    """LRW layout, the same 29 frames of 16×24 texture in every clip and a short or long word per .txt."""
    rng = np.random.default_rng(1)
    frames = rng.integers(64, 192, (29, 16, 24)).astype(np.uint8)
    for word, (lo, hi) in WORDS.items():
        for split, n in zip(("train", "val", "test"), per_split):
            for k in range(1, n + 1):
                stem = root / word / split / f"{word}_{k:05d}"
                write_video(stem.with_suffix(".mp4"), frames)
                stem.with_suffix(".txt").write_text(f"Word: {word}\nDuration: {rng.uniform(lo, hi):.2f} seconds\n")
    return root


@pytest.fixture(scope="module")
def boundary_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("word_boundary")
    root = lrw_texture(tmp / "lipread_mp4")
    from signlip.data.clips.datamodule import prepare_clips

    settings = {"fps": 25, "n_frames": 29, "size": [16, 24], "gray": True, "roi": "none"}
    manifest = prepare_clips(None, None, f"{tmp}/c", settings, f"{tmp}/m", str(root), "lrw", None, 0, 1).manifest
    result = train_in_process(tmp / "run", ["task=lip_cnnlstm", "data.prepare.roi=none", "data.prepare.n_frames=29",
                                            "data.prepare.size=[16,24]", f"data.manifest={manifest}",
                                            "data.word_boundary=true", "model.hidden_size=16", "trainer.max_epochs=2",
                                            "data.batch_size=4", "seed=0", "trainer.device=cpu"])
    return {"root": root, "manifest": str(manifest), "result": result, "tmp": tmp}


def test_predict_reads_the_videos_own_txt_and_export_keeps_parity(boundary_run, tmp_path):
    from signlip.build import rebuild
    from signlip.checkpoint import load_checkpoint
    from signlip.deploy.onnx_export import export_checkpoint
    from signlip.deploy.predict import Recogniser

    ckpt = load_checkpoint(Path(boundary_run["result"]["checkpoint_dir"]) / "best.pt")
    assert ckpt["model"]["kwargs"]["word_boundary"] and ckpt["preprocessing"]["word_boundary"]
    rec = Recogniser.load(ckpt, device="cpu")
    video = sorted(boundary_run["root"].glob("WORLD/test/*.mp4"))[0]
    logits = {}
    for name, txt in (("short", "Duration: 0.12 seconds\n"), ("long", "Duration: 1.20 seconds\n"), ("none", None)):
        copy = tmp_path / name / video.name  # the same frames; only the .txt beside them differs
        copy.parent.mkdir()
        shutil.copy(video, copy)
        if txt:
            copy.with_suffix(".txt").write_text(f"Word: WORLD\n{txt}")
        logits[name] = rec.logits(rec.read(str(copy)))
    assert not torch.allclose(logits["short"], logits["long"])  # the .txt reached the model
    torch.testing.assert_close(logits["none"], logits["long"])  # no .txt: the word is the whole clip, as 1.2 s is
    rows = rec.predict_paths([str(tmp_path / n / video.name) for n in ("short", "long", "none")], top_k=2,
                             batch_size=3)  # batched, each with its own boundary
    assert [r["status"] for r in rows] == ["ok"] * 3
    assert [r["probability"] for r in rows] == pytest.approx(
        [float(torch.softmax(logits[n], -1).max()) for n in ("short", "long", "none")], abs=1e-5)

    exported = export_checkpoint(ckpt, out=tmp_path, report=lambda _: None)
    parity = exported.sidecar["parity"]
    assert parity["max_abs_logit_diff"] <= 1e-4 and parity["top1_agreement"] == 1.0, parity
    assert exported.sidecar["inputs"][0]["shape"][1] == 2  # gray + the boundary plane
    assert any("word_boundary" in step for step in exported.sidecar["input_steps"]["steps"])
    assert rebuild(ckpt, splits=("test",)).data.batch_transform.word_boundary


def test_lip_cnn3d_reads_the_boundary_as_a_channel():
    from signlip.models.lip import LipCNN3D, LipCNNLSTM

    for model in (LipCNN3D(2, channels=(4, 8), kernels=(3, 3), word_boundary=True),
                  LipCNNLSTM(2, channels=(4, 8), hidden_size=8, word_boundary=True)):
        model.eval()
        x = torch.rand(2, 2, 6, 16, 24)
        x[:, 1] = 1.0
        other = x.clone()
        other[:, 1, :3] = 0.0  # a shorter word, the same frames
        assert model(x).shape == (2, 2)
        assert not torch.allclose(model(x), model(other))


def test_data_without_durations_is_one_line(boundary_run):
    rows = read_rows(boundary_run["manifest"])
    plain = Path(boundary_run["manifest"]).with_name("no_duration.csv")  # beside it: the paths stay relative to it
    with plain.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, [k for k in rows[0] if k != "duration"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(SignlipError, match=r"data.word_boundary=true needs a duration column .* has none"):
        train_in_process(boundary_run["tmp"] / "plain", ["task=lip_cnnlstm", f"data.manifest={plain}",
                                                         "data.word_boundary=true", "trainer.max_epochs=1"])


def test_clips_not_on_lrws_own_frames_are_refused(boundary_run):
    # The boundary marks LRW's 29 frames at 25 fps; on 16 sampled frames its frame count would mean another span.
    from signlip.data.clips.datamodule import word_boundaries
    from signlip.data.manifest import read_manifest

    m = read_manifest(boundary_run["manifest"])
    assert word_boundaries(m, {"n_frames": 29, "fps": 25}).shape == (len(m.paths), 29)
    with pytest.raises(SignlipError, match=r"prepared as 16 frames at 25 fps — prepare them with "
                                           r"data.prepare.n_frames=29 data.prepare.fps=25"):
        word_boundaries(m, {"n_frames": 16, "fps": 25})


def test_a_model_that_cannot_read_word_boundaries_is_refused(boundary_run):
    with pytest.raises(SignlipError, match=r"model i3d does not read word boundaries .* use lip_cnn3d, lip_cnnlstm"):
        train_in_process(boundary_run["tmp"] / "i3d", ["task=i3d", f"data.manifest={boundary_run['manifest']}",
                                                       "data.word_boundary=true", "trainer.max_epochs=1"])
