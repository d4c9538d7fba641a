"""WLASL (`WLASL_v0.3.json` + videos/<video_id>.mp4) and LRW (<WORD>/<split>/<WORD>_nnnnn.mp4 + .txt): fixtures in
the public layouts → `signlip prepare` → `signlip train`; frame ranges cut, the signer box crops, subsets, the
report of missing videos, malformed inputs as one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import prepare_in_process, read_rows, train_in_process
from signlip.data.cache import Item
from signlip.data.clips.video import write_video
from signlip.data.formats import detect_format, raw_manifest_from
from signlip.errors import SignlipError

RGB = ["task=mobilenetv3", "model.variant=small", "data.prepare.n_frames=4", "data.prepare.size=[16,16]",
       "data.augment=null", "prepare.workers=1"]
BOX = (8, 4, 16, 12)  # x, y, w, h of the signer box drawn in every WLASL fixture video (pixels of 40×32 frames)




def _signer_video(path: Path, n: int = 12) -> Path:
    """n frames of 40×32: blue outside the box, inside it red with green = 20·frame index (frame numbers readable
    from the crop's pixels)."""
    frames = np.zeros((n, 32, 40, 3), np.uint8)
    frames[..., 2] = 200
    x, y, w, h = BOX
    for i in range(n):
        frames[i, y:y + h, x:x + w] = (220, 20 * i, 0)
    return write_video(path, frames)


def wlasl_folder(root: Path) -> Path:
    """WLASL_v0.3.json with 3 glosses × (train, val, test, train) instances; YouTube instances keep a range (their
    files were cut by WLASL's preprocess.py), the others 1..-1 except one cut to frames 3..8; two videos missing."""
    glosses, vid = [], 100
    for gloss in ("book", "drink", "computer"):
        instances = []
        for k, split in enumerate(("train", "val", "test", "train")):
            vid += 1
            youtube = k == 3
            instances.append({
                "bbox": [BOX[0], BOX[1], BOX[0] + BOX[2], BOX[1] + BOX[3]], "fps": 25,
                "frame_start": 3 if (gloss, k) == ("book", 0) else (40 if youtube else 1),
                "frame_end": 8 if (gloss, k) == ("book", 0) else (51 if youtube else -1),
                "instance_id": k, "signer_id": 100 + k, "source": "youtube" if youtube else "aslbrick",
                "split": split, "url": "https://www.youtube.com/watch?v=abcdefghijk" if youtube else
                f"http://aslbricks.org/New/ASL-Videos/{gloss}.mp4", "variation_id": 0, "video_id": f"{vid:05d}"})
            if (gloss, k) not in (("drink", 1), ("computer", 2)):  # expired URLs: no file
                _signer_video(root / "videos" / f"{vid:05d}.mp4")
        glosses.append({"gloss": gloss, "instances": instances})
    (root / "WLASL_v0.3.json").write_text(json.dumps(glosses))
    return root


def _prepare_wlasl(tmp_path: Path, capsys) -> tuple[Path, str]:
    root = wlasl_folder(tmp_path / "WLASL")
    common = [*RGB, f"data.root={root}", f"data.cache_dir={tmp_path}/c", f"data.manifests_dir={tmp_path}/m",
              "data.prepare.roi=box", "data.prepare.n_frames=6"]
    code, out, err = prepare_in_process(common, capsys)
    assert code == 0, err
    assert "WLASL_v0.3: 12 instance(s) of 3 gloss(es), 2 video(s) missing" in out
    manifest = next(line for line in out.splitlines() if line.startswith("next:")).split("data.manifest=")[1].strip()
    return root, manifest


def test_wlasl_prepare_cuts_frame_ranges_crops_the_signer_and_reports_missing_videos(tmp_path, capsys):
    root, manifest = _prepare_wlasl(tmp_path, capsys)
    assert detect_format(root, "clips") == "wlasl"
    report = read_rows(next(Path(tmp_path, "c").glob("*/prepare_report.csv")))
    assert sorted(Path(r["path"]).name for r in report) == ["00106.mp4", "00111.mp4"]
    assert {r["reason"] for r in report} == {"file not found"}
    rows = {Path(r["source"]).stem: r for r in read_rows(manifest)}
    assert len(rows) == 10 and rows["00101"]["speaker"] == "100" and rows["00101"]["label"] == "book"
    base = Path(manifest).parent
    cut = np.load(base / rows["00101"]["path"])  # frames 3..8 of 12: exactly the clip's 6 frames
    assert cut.shape == (6, 16, 16, 3)
    assert np.abs(cut[..., 1].mean(axis=(1, 2)) - 20 * np.arange(2, 8)).max() < 8
    # The box crop: all red (the blue outside the box is gone).
    assert cut[..., 0].min() > 180 and cut[..., 2].max() < 40
    whole = np.load(base / rows["00104"]["path"])  # YouTube: preprocess.py cut it already, so all 12 frames count
    assert np.abs(whole[..., 1].mean(axis=(1, 2)) - 20 * np.round(np.linspace(0, 11, 6))).max() < 8


@pytest.mark.slow  # ~20 s on a shared 2-core CPU, mostly torchvision's import and MobileNetV3's first steps
def test_wlasl_prepared_clips_train(tmp_path, capsys):
    _root, manifest = _prepare_wlasl(tmp_path, capsys)
    result = train_in_process(tmp_path / "run", [*RGB[:-1], f"data.manifest={manifest}", "trainer.max_epochs=1",
                                                 "data.batch_size=4", "seed=0", "trainer.device=cpu"])
    assert (Path(result["checkpoint_dir"]) / "best.pt").is_file()


def test_wlasl_subset_is_the_first_glosses_and_ranges_options(tmp_path):
    root = wlasl_folder(tmp_path / "WLASL")
    rows = read_rows(raw_manifest_from("wlasl", root, {"subset": 2}, tmp_path / "m", "clips"))
    assert [r["label"] for r in rows] == ["book"] * 4 + ["drink"] * 4
    assert rows[0]["x"] == "8" and rows[0]["w"] == "16" and rows[0]["h"] == "12" and rows[0]["signer"] == "100"
    assert (rows[0]["frame_start"], rows[0]["frame_end"]) == ("3", "8")
    assert (rows[3]["frame_start"], rows[3]["frame_end"]) == ("1", "-1")  # YouTube, already cut
    every = read_rows(raw_manifest_from("wlasl", root, {"ranges": "all"}, tmp_path / "m", "clips"))
    assert (every[3]["frame_start"], every[3]["frame_end"]) == ("40", "51")
    with pytest.raises(SignlipError, match="subset=5 — give 1..3 glosses"):
        raw_manifest_from("wlasl", root, {"subset": 5}, tmp_path / "m", "clips")


@pytest.mark.parametrize("content, expected", [
    ('{"book": []}', "is not a list of"),
    ('[{"gloss": "book"}]', "entry 0 has no gloss / instances list"),
    ('[{"gloss": "book", "instances": [{"split": "train"}]}]', "an instance of gloss 'book' lacks video_id"),
    ('[{"gloss": "book", "instances": [{"video_id": "1", "split": "dev"}]}]', "split 'dev'"),
    ("[{", "is not JSON"),
])
def test_malformed_wlasl_json_is_one_line_exit_2(tmp_path, capsys, content, expected):
    root = tmp_path / "WLASL"
    root.mkdir()
    (root / "WLASL_v0.3.json").write_text(content)
    code, _out, err = prepare_in_process([*RGB, f"data.root={root}", f"data.manifests_dir={tmp_path}/m"], capsys)
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err


def test_frame_range_cuts_holistic_videos_too(tmp_path, monkeypatch):
    import signlip.data.holistic.extract as extract
    from signlip.data.holistic.datamodule import HolisticVideoPreparer

    video = _signer_video(tmp_path / "v.mp4")
    seen = {}

    def fake_extract(frames, models_dir, fps=None, **_kw):  # the landmarkers, replaced: what frames do they get?
        seen["green"], seen["fps"] = frames[..., 1].max(axis=(1, 2)), fps
        out = np.zeros((len(frames), 543, 3), np.float32)
        return out

    monkeypatch.setattr(extract, "extract_holistic", fake_extract)
    monkeypatch.setattr("signlip.data.holistic.datamodule.hand_present", lambda arr: np.ones(len(arr), bool))
    prep = HolisticVideoPreparer("models", False, 0.5, True, True)
    arr = prep(Item(str(video), "book", "train", "1", {"frame_start": "5", "frame_end": "-1"}))
    assert len(arr) == 8 and np.abs(seen["green"] - 20 * np.arange(4, 12)).max() < 8 and seen["fps"] == 25


def lrw_folder(root: Path) -> Path:
    """2 words × train/val/test × 2 clips of 29 gray frames; one clip without its .txt, one .txt without its clip."""
    rng = np.random.default_rng(0)
    for w, word in enumerate(("ABOUT", "WORLD")):
        for split in ("train", "val", "test"):
            for n in (1, 2):
                stem = root / word / split / f"{word}_{n:05d}"
                write_video(stem.with_suffix(".mp4"), (rng.integers(0, 40, (29, 24, 32)) + 150 * w).astype(np.uint8))
                if (word, split, n) != ("WORLD", "val", 2):
                    stem.with_suffix(".txt").write_text(f"Word: {word}\nDuration: 0.{3 + n}0 seconds\n")
    txt = root / "ABOUT" / "test" / "ABOUT_00003.txt"
    txt.write_text("Word: ABOUT\nDuration: 0.40 seconds\n")
    return root


def test_lrw_prepares_29_frame_clips_with_the_duration_and_trains(tmp_path, capsys):
    from signlip.data.formats.lrw import word_boundary

    root = lrw_folder(tmp_path / "lipread_mp4")
    assert detect_format(root, "clips") == "lrw"
    lip = ["task=lip_cnnlstm", "data.prepare.roi=none", "data.prepare.n_frames=29", "data.prepare.size=[16,24]",
           "prepare.workers=1", f"data.root={root}", f"data.cache_dir={tmp_path}/c", f"data.manifests_dir={tmp_path}/m"]
    code, out, err = prepare_in_process(lip, capsys)
    assert code == 0, err
    assert "LRW: 13 clip(s) of 2 word(s) (train 4, val 4, test 5); 1 without a .txt" in out
    report = read_rows(next(Path(tmp_path, "c").glob("*/prepare_report.csv")))
    assert [Path(r["path"]).name for r in report] == ["ABOUT_00003.mp4"]
    manifest = next(line for line in out.splitlines() if line.startswith("next:")).split("data.manifest=")[1].strip()
    rows = {str(Path(r["source"]).relative_to(root).with_suffix("")): r for r in read_rows(manifest)}
    assert len(rows) == 12 and rows["ABOUT/val/ABOUT_00002"]["duration"] == "0.5"
    assert rows["WORLD/test/WORLD_00001"]["duration"] == "0.4" and rows["WORLD/test/WORLD_00001"]["split"] == "test"
    assert [k for k, r in rows.items() if not r["duration"]] == ["WORLD/val/WORLD_00002"]  # no .txt: still used
    clip = np.load(Path(manifest).parent / rows["ABOUT/train/ABOUT_00001"]["path"])
    assert clip.shape == (29, 16, 24)  # frame for frame, nothing resampled or padded
    # 0.4 s: 5 frames either side of the middle frame 14, and one more before (the toolkits' convention).
    assert np.flatnonzero(word_boundary(0.4)).tolist() == list(range(8, 20))
    assert word_boundary(None).all() and word_boundary(5.0).all()
    result = train_in_process(tmp_path / "run", [*lip[:4], f"data.manifest={manifest}", "trainer.max_epochs=1",
                                                 "data.batch_size=4", "model.hidden_size=16", "seed=0",
                                                 "trainer.device=cpu"])
    assert (Path(result["checkpoint_dir"]) / "best.pt").is_file()


def test_malformed_lrw_txt_is_one_line_exit_2(tmp_path, capsys):
    root = tmp_path / "lipread_mp4"
    for split in ("train", "val", "test"):
        write_video(root / "ABOUT" / split / "ABOUT_00001.mp4", np.zeros((4, 8, 8), np.uint8))
    (root / "ABOUT" / "train" / "ABOUT_00001.txt").write_text("Word: ABOUT\nLength: half a second\n")
    code, _out, err = prepare_in_process(["task=lip_cnnlstm", f"data.root={root}", f"data.manifests_dir={tmp_path}/m",
                                "data.prepare.roi=none"], capsys)
    assert code == 2 and "ABOUT_00001.txt has no 'Duration: <seconds> seconds' line" in err
    assert len(err.strip().splitlines()) == 1
