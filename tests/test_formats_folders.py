"""Class folders (`data.format=folders`): DIR/<label>/<file> and DIR/<split>/<label>/<file> → prepare → train."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import prepare_in_process, read_rows, run_cli, train_in_process
from signlip.data.clips.video import write_video
from signlip.data.formats import detect_format, raw_manifest_from
from signlip.errors import SignlipError

LABELS = ("doctor", "pillow")
SPEAKERS = ("s01", "s02", "s03", "s04", "s05", "s06")
LIP = ["task=lip_cnnlstm", "data.prepare.roi=none", "data.prepare.n_frames=8", "data.prepare.size=[16,24]",
       "prepare.workers=1"]


def _video(path: Path, seed: int) -> Path:
    """8 gray frames of 48×64 (a mouth crop already: roi none)."""
    return write_video(path, np.random.default_rng(seed).integers(0, 255, (8, 48, 64), np.uint8))


def class_folders(root: Path, splits: dict[str, tuple[str, ...]] | None = None) -> Path:
    """DIR/<label>/<speaker>_take1.mp4 (or DIR/<split>/<label>/… with `splits`: split folder → its speakers), plus
    what a real folder also holds: a hidden file, a note, a file with an upper-case suffix."""
    layout = {f"{split}/": people for split, people in splits.items()} if splits else {"": SPEAKERS}
    n = 0
    for prefix, people in layout.items():
        for label in LABELS:
            for speaker in people:
                n += 1
                _video(root / f"{prefix}{label}" / f"{speaker}_take1.mp4", n)
    prefix, people = next(iter(layout.items()))
    (root / f"{prefix}{LABELS[0]}" / ".DS_Store").write_bytes(b"\0")
    (root / f"{prefix}{LABELS[0]}" / "notes.txt").write_text("recorded in 2024")
    _video(root / f"{prefix}{LABELS[1]}" / f"{people[0]}_take2.MP4", 99)
    return root




def test_flat_folders_with_a_speaker_pattern_prepare_and_train(tmp_path, capsys):
    root = class_folders(tmp_path / "words")
    common = [*LIP, f"data.root={root}", f"data.cache_dir={tmp_path}/c", f"data.manifests_dir={tmp_path}/m",
              "+data.format_options.speaker_pattern='^(s\\d+)_'"]
    code, out, err = prepare_in_process(common, capsys)
    assert code == 0, err
    assert "class folders: 13 file(s), 2 label(s), 6 speaker(s)" in out
    next_line = next(line for line in out.splitlines() if line.startswith("next: signlip train task=lip_cnnlstm"))
    manifest = next_line.split("data.manifest=")[1].strip()
    rows = read_rows(manifest)
    assert len(rows) == 13 and {r["label"] for r in rows} == set(LABELS)
    assert {r["speaker"] for r in rows} == set(SPEAKERS)
    assert not any(".DS_Store" in r["source"] or r["source"].endswith(".txt") for r in rows)
    assert any(r["source"].endswith("s01_take2.MP4") for r in rows)  # suffixes in any case
    result = train_in_process(tmp_path / "run", [*LIP[:-1], f"data.manifest={manifest}", "trainer.max_epochs=1",
                                                 "data.batch_size=3", "model.hidden_size=16", "seed=0"])
    assert (Path(result["checkpoint_dir"]) / "best.pt").is_file()
    from signlip.data.manifest import read_manifest

    m = read_manifest(manifest, seed=0)  # no split column: signlip's seeded split, kept speaker-disjoint
    people = {s: {m.groups[i] for i in m.rows(s)} for s in ("train", "val", "test")}
    assert all(people.values())
    assert not (people["train"] & people["val"] or people["train"] & people["test"] or people["val"] & people["test"])


def test_split_folders_keep_their_splits_and_are_detected(tmp_path, capsys):
    root = class_folders(tmp_path / "signs", {"train": SPEAKERS[:4], "validation": ("s05",), "test": ("s06",)})
    assert detect_format(root, "clips") == "folders"
    raw = raw_manifest_from("auto", root, {}, tmp_path / "m", "clips")
    rows = read_rows(raw)
    assert list(rows[0]) == ["path", "label", "split"]  # no speaker pattern: no speaker column
    by_split = {s: sorted(Path(r["path"]).relative_to(root).parts[0] for r in rows if r["split"] == s)
                for s in ("train", "val", "test")}
    assert by_split == {"train": ["train"] * 9, "val": ["validation"] * 2, "test": ["test"] * 2}
    assert read_rows(raw_manifest_from("folders", root, {}, tmp_path / "m2", "clips")) == rows  # same order every time
    assert "new people" not in capsys.readouterr().out  # split folders: no random-split note


def test_no_speaker_pattern_says_the_split_cannot_test_new_people(tmp_path, capsys):
    raw = raw_manifest_from("folders", class_folders(tmp_path / "w"), {}, tmp_path / "m", "clips")
    assert list(read_rows(raw)[0]) == ["path", "label"]
    out = capsys.readouterr().out
    assert "cannot tell how it does on new people" in out and "speaker_pattern" in out


def test_a_folder_of_other_layouts_is_not_taken_for_class_folders(tmp_path):
    # WLASL ships one videos/ folder beside its JSON: one folder of videos is not a set of classes.
    _video(tmp_path / "wlasl" / "videos" / "00001.mp4", 0)
    from signlip.data.formats.folders import looks_like_class_folders

    assert not looks_like_class_folders(tmp_path / "wlasl")
    # LRW: <WORD>/<split>/<file> — the word folders hold split folders, not files.
    for word in ("ABOUT", "BELOW"):
        _video(tmp_path / "lrw" / word / "train" / f"{word}_00001.mp4", 0)
    assert not looks_like_class_folders(tmp_path / "lrw")


@pytest.mark.parametrize("case, expected", [
    ("empty", r"no \.mp4/.* file in .*words/pillow — add files there or remove the folder"),
    ("pattern", r"x/pillow/anna\.mp4: its name 'anna' does not match data\.format_options\.speaker_pattern="),
    ("groups", r"has 2 groups — give it one group, or name the speaker's"),
    ("regex", r"speaker_pattern='\^\(s' is not a valid regex"),
    ("mixed", r"mixes split folders \(train\) with other folders \(pillow\)"),
    ("no classes", r"has no class folders"),
])
def test_malformed_folders_are_one_clear_line(tmp_path, case, expected):
    root = tmp_path / ("x" if case == "pattern" else "words")
    options = {}
    if case == "empty":
        _video(root / "doctor" / "s01_a.mp4", 0)
        (root / "pillow").mkdir()
        (root / "pillow" / "readme.txt").write_text("to do")
    elif case == "pattern":
        _video(root / "doctor" / "s01_a.mp4", 0)
        _video(root / "pillow" / "anna.mp4", 1)
        options = {"speaker_pattern": r"^(s\d+)_"}
    elif case in ("groups", "regex"):
        _video(root / "doctor" / "s01_a.mp4", 0)
        options = {"speaker_pattern": r"^(s)(\d+)_" if case == "groups" else "^(s"}
    elif case == "mixed":
        _video(root / "train" / "doctor" / "s01_a.mp4", 0)
        _video(root / "pillow" / "s01_a.mp4", 1)
    else:
        root.mkdir()
        (root / "a.mp4").write_bytes(b"")
    with pytest.raises(SignlipError, match=expected) as info:
        # auto: an empty class folder is still recognised as class folders, and named.
        raw_manifest_from("auto" if case == "empty" else "folders", root, options, tmp_path / "m", "clips")
    assert "\n" not in str(info.value)


def test_prepare_that_leaves_every_file_out_exits_2_with_the_report_written(tmp_path, capsys):
    root = tmp_path / "words"
    (root / "train" / "doctor").mkdir(parents=True)
    (root / "train" / "doctor" / "s01_a.mp4").symlink_to(tmp_path / "gone.mp4")  # the only file, missing
    code, _, err = prepare_in_process([*LIP, f"data.root={root}", "data.format=folders", f"data.cache_dir={tmp_path}/c",
                             f"data.manifests_dir={tmp_path}/m"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "no usable sample: all 1 input(s) were left out" in lines[0], err
    assert "file not found" in lines[0]
    report = next((tmp_path / "c").glob("*/prepare_report.csv"))
    assert str(report) in lines[0]
    assert [r["reason"] for r in read_rows(report)] == ["file not found"]


def _landmark_folders(root: Path) -> Path:
    """DIR/<split>/<label>/<signer>_<n>.npy hand landmarks (T, 21, 3), two classes a network can tell apart."""
    rng = np.random.default_rng(0)
    for split, people in {"train": ("p1", "p2", "p3"), "val": ("p4",), "test": ("p5",)}.items():
        for k, label in enumerate(("a", "b")):
            for person in people:
                for n in range(2):
                    arr = rng.normal(k, 0.1, (12, 21, 3)).astype(np.float32)
                    (root / split / label).mkdir(parents=True, exist_ok=True)
                    np.save(root / split / label / f"{person}_{n}.npy", arr)
    return root


def test_landmark_npy_folders_prepare_and_train(tmp_path, capsys):
    root = _landmark_folders(tmp_path / "hands")
    _video(root / "train" / "a" / "clip.mp4", 0)  # a video beside the arrays is not a landmark sample
    common = ["task=landmark_gru", f"data.root={root}", f"data.manifests_dir={tmp_path}/m",
              "+data.format_options.speaker_pattern='^(p\\d)_'"]
    code, out, err = prepare_in_process(common, capsys)
    assert code == 0, err
    assert "nothing to prepare" not in out + err
    manifest = next(line for line in out.splitlines() if line.startswith("next: signlip train task=landmark_gru")
                    ).split("data.manifest=")[1].strip()
    rows = read_rows(manifest)
    assert len(rows) == 20 and all(r["path"].endswith(".npy") for r in rows)
    assert {r["split"] for r in rows} == {"train", "val", "test"} and {r["speaker"] for r in rows} == {
        "p1", "p2", "p3", "p4", "p5"}
    result = train_in_process(tmp_path / "run", ["task=landmark_gru", f"data.root={root}",
                                                 f"data.manifests_dir={tmp_path}/m", "trainer.max_epochs=1", "seed=0",
                                                 "+data.format_options.speaker_pattern='^(p\\d)_'"])
    assert (Path(result["checkpoint_dir"]) / "best.pt").is_file()
    # Without a root there is still nothing to prepare: one line naming what to give.
    code, _, err = prepare_in_process(["task=landmark_gru"], capsys)
    assert code == 2 and "data.root=" in err and len(err.strip().splitlines()) == 1


def test_rgb_split_folders_prepare_keeps_the_splits_and_i3d_trains(tmp_path, capsys):
    root = tmp_path / "signs"
    n = 0
    for split, people in {"train": ("p1", "p2"), "val": ("p3",), "test": ("p4",)}.items():
        for label in LABELS:
            for person in people:
                n += 1
                frames = np.random.default_rng(n).integers(0, 255, (8, 48, 64, 3), np.uint8)
                write_video(root / split / label / f"{person}.avi", frames)
    rgb = ["task=i3d", "data.prepare.n_frames=4", "data.prepare.size=[32,32]", "data.augment=null"]
    code, out, err = prepare_in_process([*rgb, f"data.root={root}", f"data.cache_dir={tmp_path}/c",
                               f"data.manifests_dir={tmp_path}/m", "prepare.workers=1"], capsys)
    assert code == 0, err
    manifest = out.split("data.manifest=")[1].split()[0]
    rows = read_rows(manifest)
    assert sorted((r["split"], Path(r["source"]).parent.parent.name) for r in rows) == sorted(
        [("train", "train")] * 4 + [("val", "val")] * 2 + [("test", "test")] * 2)
    assert np.load(Path(manifest).parent / rows[0]["path"]).shape == (4, 32, 32, 3)  # RGB, roi none: whole frame
    result = train_in_process(tmp_path / "run", [*rgb, f"data.manifest={manifest}", "trainer.max_epochs=1", "seed=0"])
    assert (Path(result["checkpoint_dir"]) / "best.pt").is_file()


def test_a_tiny_folder_trains_from_inside_itself(tmp_path):
    """Three .npy files a class, no split folders, no speaker pattern, and `signlip train` run from inside the
    dataset folder (where it writes data/ and outputs/ before it lists the class folders): the random split keeps
    one file a class in val and test (it failed "cannot split 6 samples"), and signlip's own folders are not taken
    for classes (it failed "no .npy file in …/data, …/outputs")."""
    root = tmp_path / "tiny"
    rng = np.random.default_rng(0)
    for k, label in enumerate(("yes", "no")):
        (root / label).mkdir(parents=True)
        for n in range(3):
            np.save(root / label / f"{label}_{n}.npy", rng.normal(k, 0.1, (12, 21, 3)).astype(np.float32))
    proc = run_cli("train", "task=landmark_gru", "data.root=.", "trainer.max_epochs=1", "logger.tensorboard=false",
                   cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "train 2, val 2, test 2" in proc.stdout
    assert "left out signlip's own folder(s) data, outputs" in proc.stdout
