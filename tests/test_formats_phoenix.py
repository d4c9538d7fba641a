"""PHOENIX-2014 (multisigner, SI5) and PHOENIX-2014-T: fixtures in the public layouts (|-separated annotation CSVs,
sentences as folders of PNG frames) → `signlip prepare task=cslr_landmarks` → `signlip train`; gloss cleaning, the
glosses column kept through prepare, missing / empty frame folders in the report, wrong roots as one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import prepare_in_process, read_rows, train_in_process
from signlip.data.formats import detect_format, raw_manifest_from
from signlip.data.formats.phoenix import clean_glosses
from signlip.errors import SignlipError

MULTI = "phoenix-2014-multisigner"
N_FRAMES = 6
# train / dev / test sentences: (id, signer, annotation); the frames of the last test one are missing, the second
# to last has an empty frame folder.
SENTENCES = {
    "train": [("01April_2010_Thursday_heute_default-0", "signer01", "__ON__ REGEN loc-NORD __OFF__"),
              ("01April_2010_Thursday_heute_default-1", "signer01", "SONNE HABEN2 WIND"),
              ("02April_2010_Friday_tagesschau_default-0", "signer02", "WIND REGEN"),
              ("02April_2010_Friday_tagesschau_default-1", "signer02", "NORD SONNE __EMOTION__"),
              ("03April_2010_Saturday_heute_default-0", "signer03", "__ON__ __OFF__")],  # nothing left: left out
    "dev": [("04April_2010_Sunday_heute_default-0", "signer01", "REGEN SONNE"),
            ("04April_2010_Sunday_heute_default-1", "signer04", "cl-WIND NORD")],
    "test": [("05April_2010_Monday_heute_default-0", "signer01", "SONNE REGEN"),
             ("05April_2010_Monday_heute_default-1", "signer05", "NORD WIND"),
             ("05April_2010_Monday_heute_default-2", "signer05", "REGEN")],
}


def gray_frame(k: int) -> np.ndarray:
    """Frame k: 8×6 of gray level 10·k (the order MediaPipe saw the frames is readable from them)."""
    return np.full((8, 6, 3), 10 * k, np.uint8)


def _frames(folder: Path, names: list[str], make_frame=gray_frame) -> None:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        cv2.imwrite(str(folder / name), make_frame(k))


def phoenix2014_release(root: Path, make_frame=gray_frame) -> Path:
    """`phoenix2014-release/phoenix-2014-multisigner/` with annotations/manual/*.corpus.csv and frame folders
    features/fullFrame-210x260px/<split>/<id>/1/<id>.avi_pid0_fn00000k-0.png (frame k: `make_frame(k)`, BGR)."""
    corpus = root / MULTI
    manual = corpus / "annotations" / "manual"
    manual.mkdir(parents=True)
    for split, rows in SENTENCES.items():
        lines = ["id|folder|signer|annotation"] + [f"{i}|{i}/1/*.png|{s}|{a}" for i, s, a in rows]
        (manual / f"{split}.corpus.csv").write_text("\n".join(lines) + "\n")
        for n, (sid, _s, _a) in enumerate(rows):
            folder = corpus / "features" / "fullFrame-210x260px" / split / sid / "1"
            if (split, n) == ("test", 2):
                continue  # not unpacked
            names = [] if (split, n) == ("test", 1) else [f"{sid}.avi_pid0_fn{k:06d}-0.png" for k in range(N_FRAMES)]
            _frames(folder, names, make_frame)
    return root


def phoenix2014t_release(root: Path) -> Path:
    """`PHOENIX-2014-T-release-v3/PHOENIX-2014-T/` with PHOENIX-2014-T.<split>.corpus.csv and frame folders
    features/fullFrame-210x260px/<split>/<name>/images000k.png."""
    corpus = root / "PHOENIX-2014-T"
    manual = corpus / "annotations" / "manual"
    manual.mkdir(parents=True)
    for split, annotation in (("train", "poss-EUCH neg-HABEN REGEN"), ("dev", "REGEN"), ("test", "S0NNE")):
        name = f"11August_2010_Wednesday_tagesschau-{split}"
        (manual / f"PHOENIX-2014-T.{split}.corpus.csv").write_text(
            "name|video|start|end|speaker|orth|translation\n"
            # The published CSV names `<name>/1/*.png` though the frames lie in `<name>/`; both forms are read.
            f"{name}|{name}{'/1' if split == 'train' else ''}/*.png|-1|-1|Signer08|{annotation}|und nun die "
            f"wettervorhersage\n")
        _frames(corpus / "features" / "fullFrame-210x260px" / split / name,
                [f"images{k:04d}.png" for k in range(1, 4)])
    return root


class StubTracker:
    """MediaPipe's three landmarkers, replaced: every point found (hands included, so no frame is dropped), placed by
    the frame's gray level; the (timestamp, gray level) of each call is recorded."""

    calls: list[tuple[int, float]] = []

    def __init__(self, *_args, **_kw):
        self.template = np.random.default_rng(0).uniform(0.2, 0.8, (543, 3)).astype(np.float32)

    def __call__(self, frame: np.ndarray, timestamp_ms: int) -> np.ndarray:
        level = float(frame.mean())
        StubTracker.calls.append((timestamp_ms, level))
        return self.template + np.float32(level / 1000)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


@pytest.fixture
def stub_mediapipe(tmp_path, monkeypatch) -> Path:
    """A models folder of placeholder .task files (the fingerprint hashes them) and the stub tracker."""
    import signlip.data.holistic.extract as extract

    models = tmp_path / "models"
    models.mkdir()
    for name in extract.MODEL_FILES.values():
        (models / name).write_bytes(name.encode())
    monkeypatch.setattr(extract, "HolisticTracker", StubTracker)
    StubTracker.calls = []
    return models




def test_clean_glosses_follows_rwth_rules():
    assert clean_glosses("__ON__ loc-NORD cl-KOMMEN poss-EUCH HABEN2 S0NNE __PU__ WIND-PLUSPLUS __OFF__") == \
        "NORD KOMMEN EUCH HABEN SONNE WIND"
    assert clean_glosses("neg-HABEN negalp-AUCH WIE-AUSSEHEN A+B") == "neg-HABEN negalp-AUCH WIE-AUSSEHEN A+B"
    assert clean_glosses("__ON__ __EMOTION__ __OFF__") == ""


def test_phoenix2014_prepares_frame_folders_keeps_glosses_and_trains(tmp_path, capsys, stub_mediapipe):
    root = phoenix2014_release(tmp_path / "phoenix2014-release")
    assert detect_format(root, "holistic") == "phoenix2014"
    common = ["task=cslr_landmarks", f"data.root={root}", f"data.cache_dir={tmp_path}/c",
              f"data.manifests_dir={tmp_path}/m", f"data.prepare.models_dir={stub_mediapipe}", "prepare.workers=1"]
    code, out, err = prepare_in_process(common, capsys)
    assert code == 0, err
    assert "PHOENIX-2014: 9 sentence(s) (train 4, val 2, test 3), glosses clean, 1 frame folder(s) missing" in out
    assert "1 left out with no gloss after cleaning (first: 03April_2010_Saturday_heute_default-0)" in out
    manifest = next(line for line in out.splitlines() if line.startswith("next:")).split("data.manifest=")[1].strip()
    rows = {r["id"]: r for r in read_rows(manifest)}
    assert len(rows) == 7 and "label" not in read_rows(manifest)[0]
    first = rows["01April_2010_Thursday_heute_default-0"]
    assert first["glosses"] == "REGEN NORD" and first["split"] == "train" and first["signer"] == "signer01"
    assert rows["01April_2010_Thursday_heute_default-1"]["glosses"] == "SONNE HABEN WIND"
    assert rows["04April_2010_Sunday_heute_default-0"]["split"] == "val"  # dev → val
    assert first["source"].endswith("train/01April_2010_Thursday_heute_default-0/1")
    arr = np.load(Path(manifest).parent / first["path"])
    assert arr.shape == (N_FRAMES, 543, 3)
    # MediaPipe saw the frames in name order, timed at 25 fps (40 ms apart).
    assert StubTracker.calls[:N_FRAMES] == [(40 * k, 10.0 * k) for k in range(N_FRAMES)]
    report_csv = next(Path(tmp_path, "c").glob("*/prepare_report.csv"))
    report = {Path(r["path"]).parent.name: r["reason"] for r in read_rows(report_csv)}
    assert report["05April_2010_Monday_heute_default-2"] == "frame folder not found"
    assert report["05April_2010_Monday_heute_default-1"].startswith("no frame in this folder")
    assert "frame folder not found" in out

    result = train_in_process(tmp_path / "run", [
        "task=cslr_landmarks", f"data.manifest={manifest}", "trainer.max_epochs=1", "trainer.device=cpu", "seed=0",
        "model.hidden_size=16", "model.dense_size=16", "model.num_layers=1", "model.frame_stack=1",
        "data.batch_size=2", "data.augment.enabled=false"])
    import torch

    ckpt = torch.load(Path(result["checkpoint_dir"]) / "best.pt", weights_only=True)
    assert ckpt["preprocessing"]["target"] == "glosses"
    assert ckpt["preprocessing"]["classes"][:5] == ["HABEN", "NORD", "REGEN", "SONNE", "WIND"]


def test_phoenix2014t_layout_raw_glosses_and_translation(tmp_path, monkeypatch):
    root = phoenix2014t_release(tmp_path / "PHOENIX-2014-T-release-v3")
    monkeypatch.chdir(tmp_path)  # a relative data.root still gives paths the raw manifest's folder does not change
    rows = read_rows(raw_manifest_from("phoenix2014", Path(root.name), {}, tmp_path / "m", "holistic"))
    assert Path(rows[0]["path"]).is_absolute() and Path(rows[0]["path"]).is_dir()
    assert [r["split"] for r in rows] == ["train", "val", "test"]
    assert rows[0]["glosses"] == "EUCH neg-HABEN REGEN" and rows[2]["glosses"] == "SONNE"
    assert rows[0]["path"].endswith("PHOENIX-2014-T/features/fullFrame-210x260px/train/"
                                    "11August_2010_Wednesday_tagesschau-train")
    assert rows[0]["signer"] == "Signer08" and rows[0]["translation"] == "und nun die wettervorhersage"
    assert rows[0]["fps"] == "25"
    raw = read_rows(raw_manifest_from("phoenix2014", root / "PHOENIX-2014-T", {"glosses": "raw", "fps": 30},
                                      tmp_path / "m", "holistic"))  # the corpus folder itself as root
    assert raw[0]["glosses"] == "poss-EUCH neg-HABEN REGEN" and raw[0]["fps"] == "30"


def test_release_with_multisigner_and_si5_takes_multisigner_unless_told(tmp_path, capsys):
    import shutil

    root = phoenix2014_release(tmp_path / "phoenix2014-release")
    si5 = root / "phoenix-2014-signerindependent-SI5"
    shutil.copytree(root / MULTI / "features", si5 / "features")
    for split in ("train", "dev", "test"):
        text = (root / MULTI / "annotations/manual" / f"{split}.corpus.csv").read_text()
        (si5 / "annotations/manual").mkdir(parents=True, exist_ok=True)
        (si5 / "annotations/manual" / f"{split}.SI5.corpus.csv").write_text(text.replace("signer01", "signer05"))
    multi = read_rows(raw_manifest_from("phoenix2014", root, {}, tmp_path / "m", "holistic"))
    assert f"/{MULTI}/" in multi[0]["path"] and multi[0]["signer"] == "signer01"
    assert "the folder also holds variant si5" in capsys.readouterr().out
    rows = read_rows(raw_manifest_from("phoenix2014", root, {"variant": "si5"}, tmp_path / "m", "holistic"))
    assert "/phoenix-2014-signerindependent-SI5/" in rows[0]["path"] and rows[0]["signer"] == "signer05"


def test_frame_folder_reads_frames_in_name_order(tmp_path):
    from signlip.data.frame_folder import frame_files, read_frame_folder

    _frames(tmp_path / "f", ["img10.png", "img2.png", "img1.jpg"])
    (tmp_path / "f" / "notes.txt").write_text("not a frame")
    assert [p.name for p in frame_files(tmp_path / "f")] == ["img1.jpg", "img2.png", "img10.png"]
    frames = read_frame_folder(tmp_path / "f")
    assert frames.shape == (3, 8, 6, 3) and frames[:, 0, 0, 0].tolist() == [20, 10, 0]


@pytest.mark.parametrize("make, options, expected", [
    (lambda r: r.mkdir(), {}, "no PHOENIX annotation CSV under"),
    (lambda r: phoenix2014_release(r), {"variant": "si5"}, "no PHOENIX-2014 SI5 annotation CSV under"),
    (lambda r: phoenix2014_release(r), {"glosses": "lower"}, "glosses=lower — use one of clean, raw"),
    (lambda r: (phoenix2014_release(r) / MULTI / "annotations/manual/dev.corpus.csv").write_text("id,folder\n1,2\n"),
     {}, "lacks column(s) id, folder, signer, annotation (its header: id,folder) — expected the |-separated header"),
])
def test_bad_phoenix_input_is_one_line_exit_2(tmp_path, capsys, make, options, expected):
    root = tmp_path / "phoenix2014-release"
    make(root)
    options = [f"+data.format_options.{k}={v}" for k, v in options.items()]
    code, _out, err = prepare_in_process(["task=cslr_landmarks", f"data.root={root}",
                                          f"data.manifests_dir={tmp_path}/m", "data.format=phoenix2014", *options],
                                         capsys)
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err


def test_wrong_root_lists_where_it_looked(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SignlipError, match=r"looked for .*empty/annotations/manual/train\.corpus\.csv, .*empty/"
                                           r"phoenix-2014-multisigner/annotations/manual/train\.corpus\.csv"):
        raw_manifest_from("phoenix2014", tmp_path / "empty", {}, tmp_path / "m", "holistic")


MODELS = Path(__file__).resolve().parents[1] / "models"
NEEDED = ("hand_landmarker.task", "face_landmarker.task", "pose_landmarker_full.task", "handSrc.jpg")


@pytest.mark.slow  # real MediaPipe on 42 frames: 12–14 s measured on a shared 2-core CPU
@pytest.mark.mediapipe
@pytest.mark.skipif(not all((MODELS / f).is_file() for f in NEEDED),
                    reason="run python scripts/fetch_models.py --photos")
def test_phoenix2014_with_real_mediapipe_on_a_real_hand(tmp_path):
    """The fixture's frames are a real photographed hand (210×260, as PHOENIX's), shifted frame by frame: the real
    landmarkers find it in the frame folders, and the prepared sentences train."""
    import cv2

    from conftest import run_cli

    photo = cv2.imread(str(MODELS / "handSrc.jpg"))[:, 80:560]  # 480×480 around the palm
    photo = cv2.resize(photo, (210, 260), interpolation=cv2.INTER_AREA)
    root = phoenix2014_release(tmp_path / "phoenix2014-release", lambda k: np.roll(photo, 2 * k, axis=1))
    proc = run_cli("prepare", "task=cslr_landmarks", f"data.root={root}", f"data.cache_dir={tmp_path}/c",
                   f"data.manifests_dir={tmp_path}/m", f"data.prepare.models_dir={MODELS}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    manifest = next(line for line in proc.stdout.splitlines() if line.startswith("next:")).split("data.manifest=")[1]
    rows = read_rows(manifest.strip())
    assert len(rows) == 7 and all(r["glosses"] for r in rows)
    arr = np.load(Path(manifest.strip()).parent / rows[0]["path"])
    hands = np.isfinite(arr[:, 468:489, 0]).all(-1) | np.isfinite(arr[:, 522:543, 0]).all(-1)
    assert arr.shape == (N_FRAMES, 543, 3) and hands.sum() >= N_FRAMES - 1
    proc = run_cli("train", "task=cslr_landmarks", f"data.manifest={manifest.strip()}", "trainer.max_epochs=1",
                   "trainer.device=cpu", "model.hidden_size=16", "model.dense_size=16", "model.num_layers=1",
                   "model.frame_stack=1", "data.batch_size=2", "logger.tensorboard=false", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
