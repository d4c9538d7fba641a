"""Lip reading end to end: prepare (report, resume), train on the synthetic lip videos, evaluate, bad input."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, run_cli, train_in_process
from signlip.data.cache import run_prepare
from signlip.data.clips.datamodule import clip_fingerprint, make_synthetic, prepare_clips
from signlip.data.clips.video import write_video
from signlip.errors import SignlipError

# A small, cheap version of the task: 12 speakers, 2 clips per word, clips prepared at 16 × 32 × 48 (1/8 of the
# recipe's pixels). The recipe's lr 1e-4 needs ~100 updates; here lr 1e-3 makes 8 short epochs (96 updates) enough.
SMALL = {"n_people": (8, 2, 2), "per_class_per_person": 3, "n_frames": 20, "frame_size": (48, 72), "workers": 1}
PREP = {"fps": 25, "n_frames": 16, "size": [32, 48], "gray": True, "roi": "none"}


def small_overrides(root: Path, tmp: Path) -> list[str]:
    return [f"data.synthetic.root={root}", "data.synthetic.n_people=[8,2,2]", "data.synthetic.per_class_per_person=3",
            "data.synthetic.n_frames=20", "data.synthetic.frame_size=[48,72]", "data.prepare.n_frames=16",
            "data.prepare.size=[32,48]", f"data.cache_dir={tmp / 'cache'}", f"data.manifests_dir={tmp / 'manifests'}"]


@pytest.fixture(scope="module")
def lip_run(tmp_path_factory) -> dict:
    """One shortened lip_cnnlstm run on small synthetic lip videos (prepared automatically on first use)."""
    tmp = tmp_path_factory.mktemp("lip")
    root = tmp / "synthetic"
    # Where training will find it: the synthetic root's folder for these settings (make_synthetic).
    raw = make_synthetic({"kind": "lip", "root": str(root), **SMALL})
    result = train_in_process(tmp / "run", ["task=lip_cnnlstm", *small_overrides(root, tmp), "optim.lr=1e-3",
                                            "trainer.max_epochs=8", "trainer.early_stopping.enabled=false",
                                            "seed=0"])
    return {**result, "root": root, "raw": raw, "tmp": tmp}


# The lip run (~13 s) is slow-marked: the task contract's default-suite lip_cnnlstm run already checks that a short
# run learns; these two add the checkpoint's contents and the frame-order sensitivity.
@pytest.mark.slow
def test_short_lip_training_learns_well_above_chance(lip_run):
    test = lip_run["test"]
    assert test["chance"] == pytest.approx(0.25)
    assert test["accuracy"] >= 0.6, f"test accuracy {test['accuracy']:.3f} on unseen speakers (chance 0.25)"
    ckpt = torch.load(Path(lip_run["checkpoint_dir"]) / "best.pt", weights_only=True)
    fp = ckpt["preprocessing"]["fingerprint"]
    assert ckpt["model"]["name"] == "lip_cnnlstm" and fp["roi"] == "none" and fp["n_frames"] == 16
    assert ckpt["classes"] == ["doctor", "i_need_to_move", "my_mouth_is_dry", "pillow"]


@pytest.mark.slow
def test_frame_order_matters_to_the_trained_model(lip_run):
    """Shuffling the frames of the test clips (same frames, other order) drops the model to near chance."""
    from signlip.checkpoint import load_checkpoint
    from signlip.registry import build_data, build_model

    ckpt = load_checkpoint(Path(lip_run["checkpoint_dir"]) / "best.pt")
    data = build_data("clips", manifest=ckpt["preprocessing"]["manifest"], preprocessing=ckpt["preprocessing"],
                      splits=("test",))
    model = build_model(ckpt["model"]["name"], **ckpt["model"]["kwargs"])
    model.load_state_dict(ckpt["model_state"])
    model.eval()
    test = data.splits["test"]
    batch = data.batch_transform(test.__getitems__(list(range(len(test)))), training=False)
    x, y = batch["x"], batch["y"]  # (N, 1, T, H, W), (N,)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        ordered = (model(x).argmax(1) == y).float().mean().item()
        shuffled = np.mean([(model(x[:, :, torch.randperm(x.shape[2], generator=g)]).argmax(1) == y).float().mean()
                            .item() for _ in range(5)])
    assert ordered >= 0.6 and shuffled <= 0.45 and ordered - shuffled >= 0.3, (ordered, shuffled)


def test_evaluate_refuses_a_cache_prepared_differently(lip_run):
    from signlip.evaluation import evaluate_checkpoint

    ckpt = Path(lip_run["checkpoint_dir"]) / "best.pt"
    report = evaluate_checkpoint(ckpt, out=lip_run["tmp"] / "eval")
    assert report["accuracy"] == pytest.approx(lip_run["test"]["accuracy"], abs=1e-6)
    raw = lip_run["raw"]
    other = prepare_clips(str(raw), cache_dir=str(lip_run["tmp"] / "cache12"), prepare={**PREP, "n_frames": 12},
                          manifests_dir=str(lip_run["tmp"] / "manifests12"), workers=1)
    with pytest.raises(SignlipError, match="prepared differently.*n_frames"):
        evaluate_checkpoint(ckpt, manifest=str(other.manifest), out=lip_run["tmp"] / "eval12")


def bad_input_manifest(tmp: Path) -> Path:
    """Three good videos (train/val) and four bad rows (all in the test split), as a user might bring them."""
    rng = np.random.default_rng(0)
    good = [write_video(tmp / f"good{i}.mp4", rng.integers(0, 255, (10, 40, 60), np.uint8)) for i in range(3)]
    (tmp / "garbage.mp4").write_bytes(rng.integers(0, 255, 2048, np.uint8).tobytes())  # does not open
    (tmp / "empty.mp4").write_bytes(b"")  # 0 bytes
    import cv2

    writer = cv2.VideoWriter(str(tmp / "noframes.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (60, 40))
    writer.release()  # a valid container with zero frames
    rows = [(good[0].name, "doctor", "train", "a"), (good[1].name, "pillow", "train", "a"),
            (good[2].name, "doctor", "val", "b"), ("garbage.mp4", "doctor", "test", "c"),
            ("empty.mp4", "pillow", "test", "c"), ("noframes.avi", "doctor", "test", "c"),
            ("missing/nowhere.mp4", "pillow", "test", "c")]
    path = tmp / "videos.csv"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([("path", "label", "split", "speaker"), *rows])
    return path


def test_prepare_reports_bad_videos_resumes_and_train_on_empty_split_exits_2(tmp_path):
    raw = bad_input_manifest(tmp_path)
    common = ["task=lip_cnnlstm", f"data.raw_manifest={raw}", "data.prepare.roi=none", f"data.cache_dir={tmp_path}/c",
              f"data.manifests_dir={tmp_path}/m", "data.prepare.n_frames=8", "data.prepare.size=[16,24]"]
    proc = run_cli("prepare", *common, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "prepared 3 new, reused 0, left out 4" in proc.stdout
    report = next((tmp_path / "c").glob("*/prepare_report.csv"))
    reasons = {Path(r["path"]).name: r["reason"] for r in csv.DictReader(report.open())}
    assert set(reasons) == {"garbage.mp4", "empty.mp4", "noframes.avi", "nowhere.mp4"}
    assert "cannot open" in reasons["garbage.mp4"] and "0 bytes" in reasons["empty.mp4"]
    assert "no frames" in reasons["noframes.avi"] and "not found" in reasons["nowhere.mp4"]
    manifest = next((tmp_path / "m").glob("*.prepared.csv"))
    prepared = list(csv.DictReader(manifest.open()))
    assert len(prepared) == 3 and all(np.load(manifest.parent / r["path"]).shape == (8, 16, 24) for r in prepared)
    fingerprint = json.loads(next((tmp_path / "c").glob("*/fingerprint.json")).read_text())
    assert fingerprint["roi"] == "none" and fingerprint["size"] == [16, 24]
    # Resume: a second run decodes nothing that is already prepared.
    again = prepare_clips(str(raw), cache_dir=str(tmp_path / "c"), manifests_dir=str(tmp_path / "m"), workers=1,
                          prepare={"fps": 25, "n_frames": 8, "size": [16, 24], "gray": True, "roi": "none",
                                   "margin": 0.35, "smoothing": 0.6})
    assert (again.prepared, again.reused, len(again.failed)) == (0, 3, 4)
    # Every test video failed, so the prepared test split is empty: training says so in one line, exit 2.
    proc = run_cli("train", "task=lip_cnnlstm", f"data.manifest={manifest}", "logger.tensorboard=false", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "test split is empty" in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.mediapipe
@pytest.mark.skipif(not (REPO / "models" / "face_landmarker.task").is_file(),
                    reason="models/face_landmarker.task missing — run `python scripts/fetch_models.py`")
def test_mediapipe_prepare_reports_a_video_without_a_face(tmp_path):
    skimage_data = pytest.importorskip("skimage.data", reason="pip install scikit-image (the dev extra)")
    img = skimage_data.astronaut()
    write_video(tmp_path / "face.mp4", np.stack([img[40 - 3 * i:440 - 3 * i, 50:450] for i in range(8)]))
    write_video(tmp_path / "blank.mp4", np.full((8, 240, 320, 3), 128, np.uint8))
    raw = tmp_path / "videos.csv"
    raw.write_text("path,label,split,speaker\nface.mp4,doctor,train,a\nblank.mp4,pillow,train,b\n")
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(REPO / "models" / "face_landmarker.task", models)
    settings = {"fps": 25, "n_frames": 8, "size": [64, 96], "gray": True, "roi": "auto", "margin": 0.35,
                "smoothing": 0.6, "models_dir": str(models), "face_model": "face_landmarker.task"}
    result = prepare_clips(str(raw), cache_dir=str(tmp_path / "c"), manifests_dir=str(tmp_path / "m"),
                           prepare=settings, workers=2)
    assert result.prepared == 1 and [Path(p).name for p, _ in result.failed] == ["blank.mp4"]
    assert "no face found" in result.failed[0][1]
    fingerprint = json.loads((result.cache_dir / "fingerprint.json").read_text())
    assert fingerprint["roi"] == "mediapipe" and len(fingerprint["face_model_sha256"]) == 64  # auto → mediapipe
    # Without the model file: one clear error that says how to get it.
    with pytest.raises(SignlipError, match="fetch_models.py"):
        prepare_clips(str(raw), cache_dir=str(tmp_path / "c2"), manifests_dir=str(tmp_path / "m"),
                      prepare={**settings, "models_dir": str(tmp_path / "nowhere")}, workers=1)


# The docs/distill.md small-data recipe (its synthetic and prepare settings, fewer signers so it runs in seconds).
_DOCS_RGB = ["data.synthetic.n_classes=2", "data.synthetic.n_frames=16", "data.synthetic.frame_size=[64,64]",
             "data.prepare.n_frames=8", "data.prepare.size=[64,64]"]


def _rgb_data(tmp: Path, extra: list[str]) -> dict:
    from omegaconf import OmegaConf

    from conftest import compose

    cfg = compose("train", ["task=mobilenetv3", f"data.synthetic.root={tmp / 'rgb'}", f"data.cache_dir={tmp / 'c'}",
                            f"data.manifests_dir={tmp / 'm'}", "data.synthetic.n_people=[1,1,1]",
                            "data.synthetic.per_class_per_person=1", *extra])
    data = OmegaConf.to_container(cfg.data, resolve=True)
    data.pop("name")
    return data


def test_two_synthetic_settings_neither_collide_nor_regenerate_each_other(tmp_path):
    """docs/distill.md's recipe, then `signlip train task=mobilenetv3`: before, the second failed with "cache … was
    prepared with other settings" after regenerating data/synthetic/rgb in place, and both wrote one manifest."""
    from signlip.data.cache import prepare_data

    small = prepare_data("clips", _rgb_data(tmp_path, _DOCS_RGB), seed=0, workers=1, overwrite=False)
    videos = sorted((tmp_path / "rgb").rglob("*.mp4"))
    stamps = {p: p.stat().st_mtime_ns for p in videos}
    manifest_bytes = small.manifest.read_bytes()
    default = prepare_data("clips", _rgb_data(tmp_path, []), seed=0, workers=1, overwrite=False)
    assert default.manifest != small.manifest and default.cache_dir != small.cache_dir
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items()), "the first setting's videos were rewritten"
    assert small.manifest.read_bytes() == manifest_bytes
    folders = sorted(p.name for p in (tmp_path / "rgb").iterdir())
    assert len(folders) == 2 and folders[0].startswith("c2-64x64-t16-"), folders  # readable, keyed by a hash
    # Each setting comes back to its own data and cache, nothing prepared again.
    again = prepare_data("clips", _rgb_data(tmp_path, _DOCS_RGB), seed=0, workers=1, overwrite=False)
    assert (again.manifest, again.prepared, again.reused) == (small.manifest, 0, small.prepared)


def test_a_cache_of_other_settings_is_refused_with_a_fix_that_works(tmp_path):
    """The old message told `signlip train` users to add prepare.overwrite=true, which train rejects ("Key 'prepare'
    is not in struct"). Old mouth-crop caches (before the roll alignment) are refused, never mixed with new clips."""
    from hydra.errors import ConfigCompositionException

    from conftest import compose
    from signlip.commands.prepare import main as prepare_main

    model = tmp_path / "face.task"
    model.write_bytes(b"stand-in model")
    settings = {**PREP, "roi": "mediapipe", "margin": 0.35, "smoothing": 0.6}
    fingerprint = clip_fingerprint(settings, str(model))
    assert fingerprint["roi_alignment"]  # the crop's alignment is part of what a cache holds
    old = {k: v for k, v in fingerprint.items() if k != "roi_alignment"}  # a cache written before the alignment
    cache = tmp_path / "cache"
    run_prepare([], lambda item: None, cache, old, tmp_path / "m.csv", workers=1)
    with pytest.raises(SignlipError, match=r"other settings \(roi_alignment differ\)") as info:
        run_prepare([], lambda item: None, cache, fingerprint, tmp_path / "m.csv", workers=1)
    message = str(info.value)
    assert str(cache) in message and "delete that folder" in message
    assert "signlip prepare" in message and "prepare.overwrite=true" in message
    # What it suggests is accepted where it is suggested, and does rebuild: `signlip prepare … prepare.overwrite=true`.
    raw = bad_input_manifest(tmp_path)
    common = ["task=lip_cnnlstm", f"data.raw_manifest={raw}", "data.prepare.roi=none",
              f"data.cache_dir={tmp_path}/c", f"data.manifests_dir={tmp_path}/m", "data.prepare.n_frames=8",
              "data.prepare.size=[16,24]", "prepare.workers=1"]
    prepare_main(compose("prepare", common))
    fp_file = next((tmp_path / "c").glob("*/fingerprint.json"))
    fp_file.write_text('{"kind": "video_clips", "n_frames": 4}')  # as if another setting had written here
    with pytest.raises(SystemExit):  # refused (exit 2) …
        prepare_main(compose("prepare", common))
    prepare_main(compose("prepare", [*common, "prepare.overwrite=true"]))  # … rebuilt by the suggested command
    assert json.loads(fp_file.read_text())["n_frames"] == 8
    with pytest.raises(ConfigCompositionException):  # the old suggestion, for train, is not a valid override
        compose("train", ["task=lip_cnnlstm", "prepare.overwrite=true"])
