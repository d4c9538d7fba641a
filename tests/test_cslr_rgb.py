"""Continuous signing on RGB video: synthetic signed sentences written as videos, prepared whole (no fixed length),
batched with masks and gloss targets; PHOENIX frame folders as RGB sentences; `signlip distill` on sentences builds
the sequence-level KD objective, whose teacher-output cache gives what the teacher gives."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import prepare_in_process, read_rows
from signlip.data.clips.datamodule import build_clip_data
from signlip.data.clips.synthetic_rgb import CLASSES, make_synthetic_rgb_sentences
from signlip.errors import SignlipError

SMALL = {"n_signs": 3, "n_people": (2, 1, 1), "sentences_per_person": 2, "signs_per_sentence": (2, 3),
         "frames_per_sign": 16, "transition_frames": (3, 6), "frame_size": (32, 32)}
PREPARE = {"fps": 25, "n_frames": None, "size": [32, 32], "gray": False, "roi": "none"}
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def _frame_count(path: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


def test_rgb_sentences_are_deterministic_signer_disjoint_and_as_long_as_their_signs(tmp_path):
    a = make_synthetic_rgb_sentences(tmp_path / "a", seed=1, **SMALL)
    b = make_synthetic_rgb_sentences(tmp_path / "b", seed=1, **SMALL)
    rows = read_rows(a)
    assert rows == read_rows(b) and len(rows) == 4 * 2 and list(rows[0]) == ["path", "glosses", "split", "signer"]
    digest = [hashlib.sha1((a.parent / r["path"]).read_bytes()).hexdigest() for r in rows]
    assert digest == [hashlib.sha1((b.parent / r["path"]).read_bytes()).hexdigest() for r in rows]
    signers = {s: {r["signer"] for r in rows if r["split"] == s} for s in ("train", "val", "test")}
    assert [len(signers[s]) for s in ("train", "val", "test")] == [2, 1, 1]
    assert len(set().union(*signers.values())) == 4  # disjoint
    for r in rows:
        signs = r["glosses"].split()
        assert 2 <= len(signs) <= 3 and set(signs) <= set(CLASSES[:3])
        # Each sign 16 frames ± 15%, each transition 3–6 frames.
        low = len(signs) * round(16 * 0.85) + (len(signs) - 1) * 3
        high = len(signs) * round(16 * 1.15) + (len(signs) - 1) * 6
        assert low <= _frame_count(a.parent / r["path"]) <= high
    assert read_rows(make_synthetic_rgb_sentences(tmp_path / "c", seed=2, **SMALL)) != rows


@pytest.fixture(scope="module")
def sentences(tmp_path_factory):
    root = tmp_path_factory.mktemp("rgb_sentences")
    synthetic = {"kind": "rgb_sentences", "root": str(root / "synthetic"), **SMALL, "seed": 0}
    common = {"synthetic": synthetic, "cache_dir": str(root / "cache"), "manifests_dir": str(root / "m"),
              "workers": 1, **IMAGENET}
    return common, build_clip_data(prepare=PREPARE, **common)


def test_sentence_clips_are_prepared_whole_and_batched_with_masks(sentences):
    common, data = sentences
    assert data.target == "glosses" and data.model_kwargs == {"num_classes": 3 + 1, "in_channels": 3}
    assert data.classes == sorted(data.classes) and set(data.classes) <= set(CLASSES[:3])
    train = data.splits["train"]
    source = {Path(r["path"]).name: r["source"] for r in read_rows(data.preprocessing["manifest"])}
    # Whole sentences: every decoded frame is kept (25 fps in, 25 fps out).
    for i, path in enumerate(train.paths):
        assert train.lengths[i] == _frame_count(Path(source[Path(path).name]))
    assert len(set(train.lengths.tolist())) > 1
    batch = train.__getitems__([0, 1, 2])
    t = int(train.lengths[[0, 1, 2]].max())
    assert batch["x"].shape == (3, t, 32, 32, 3) and batch["x"].dtype == torch.uint8
    assert batch["mask"].sum(1).tolist() == train.lengths[[0, 1, 2]].tolist()
    short = int(np.argmin(train.lengths[[0, 1, 2]]))
    assert int(batch["x"][short, int(train.lengths[short]):].abs().sum()) == 0  # padded with black frames
    sentences_of = [r["glosses"] for r in read_rows(data.preprocessing["manifest"]) if r["split"] == "train"]
    assert batch["y_lengths"].tolist() == [len(s.split()) for s in sentences_of[:3]]
    names = data.classes
    decoded = [" ".join(names[g - 1] for g in row[:n]) for row, n in zip(batch["y"].tolist(),
                                                                          batch["y_lengths"].tolist())]
    assert decoded == sentences_of[:3]
    out = data.batch_transform(batch, training=True)
    assert out["x"].shape == (3, 3, t, 32, 32) and torch.equal(out["mask"], batch["mask"])
    assert data.preprocessing["target"] == "glosses" and data.preprocessing["most_frequent_sentence"]


def test_sentences_cut_to_a_fixed_length_are_refused(sentences):
    common, _ = sentences
    with pytest.raises(SignlipError, match=r"cut to a fixed 16 frames — prepare sentences whole: "
                                           r"data.prepare.n_frames=null"):
        build_clip_data(prepare={**PREPARE, "n_frames": 16}, **common)


def test_phoenix_frame_folders_prepare_as_rgb_sentence_clips(tmp_path, capsys):
    from test_formats_phoenix import N_FRAMES, phoenix2014_release

    root = phoenix2014_release(tmp_path / "phoenix2014-release")
    code, out, err = prepare_in_process(["task=i3d", "data.prepare.n_frames=null", "data.prepare.size=[64,64]",
                                         f"data.root={root}", f"data.cache_dir={tmp_path}/c",
                                         f"data.manifests_dir={tmp_path}/m", "prepare.workers=1"], capsys)
    assert code == 0, err
    manifest = next(line for line in out.splitlines() if line.startswith("next:")).split("data.manifest=")[1].strip()
    rows = {r["id"]: r for r in read_rows(manifest)}
    first = rows["01April_2010_Thursday_heute_default-0"]
    assert first["glosses"] == "REGEN NORD" and first["speaker"] == "signer01"  # clips name the group speaker
    clip = np.load(Path(manifest).parent / first["path"])
    assert clip.shape == (N_FRAMES, 64, 64, 3) and clip.dtype == np.uint8
    # Frame k of the fixture is gray level 10·k: the frames arrive whole, in name order.
    assert [int(round(float(f.mean()))) for f in clip] == [10 * k for k in range(N_FRAMES)]


def _sequence_teacher(path: Path, data) -> Path:
    """A signlip checkpoint of a per-frame MobileNetV3 over the data's glosses (random weights)."""
    from signlip.checkpoint import save_checkpoint
    from signlip.models.mobilenetv3 import MobileNetV3Student

    kwargs = {"num_classes": len(data.classes) + 1, "variant": "small", "output": "sequence",
              "temporal_head": "conv1d", "hidden": 16}
    torch.manual_seed(1)
    save_checkpoint({"format_version": 1, "task": "cslr_rgb_teacher",
                     "model": {"name": "mobilenetv3", "kwargs": kwargs},
                     "model_state": MobileNetV3Student(**kwargs).state_dict(), "classes": list(data.classes),
                     "preprocessing": data.preprocessing, "config": {}}, path)
    return path


def test_distill_on_sentences_builds_sequence_kd_whose_cache_matches_the_teacher(sentences, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from signlip.models.mobilenetv3 import MobileNetV3Student
    from signlip.objectives.distill_run import distill_objective_factory
    from signlip.objectives.sequence_distillation import SequenceDistillObjective

    _, data = sentences
    ckpt = _sequence_teacher(tmp_path / "teacher.pt", data)
    # teacher=mobilenetv3 names the checkpoint's model (it was trained as task cslr_rgb_teacher).
    factory = distill_objective_factory(str(ckpt), "mobilenetv3", cache_teacher=True)
    student = MobileNetV3Student(len(data.classes) + 1, variant="small", output="sequence", hidden=16)
    objective = factory(data, student)
    assert isinstance(objective, SequenceDistillObjective) and objective.cache_teacher
    train, transform = data.splits["train"], data.batch_transform
    trainer = SimpleNamespace(data=data, model=student, transform=transform, device=torch.device("cpu"),
                              logger=SimpleNamespace(print=lambda *a, **k: None))
    objective.setup(trainer)
    assert sorted(objective._cache) == list(range(len(train)))
    for i in range(2):  # each alone: the cached steps are the teacher's on the clean, unpadded sentence
        alone = transform(train.__getitems__([i]), training=False)
        expected = objective.teaching.teacher_logits(alone["x"], alone["mask"])[0]
        assert objective._cache[i].shape == (train.lengths[i], len(data.classes) + 1)
        torch.testing.assert_close(objective._cache[i], expected, atol=1e-4, rtol=1e-4)
    # A training batch reads the cache (the teacher does not run) and gives the loss the teacher's outputs give.
    batch = transform(train.__getitems__([0, 1]), training=False)
    student.train()
    torch.manual_seed(0)
    fresh = SequenceDistillObjective(objective.teacher)(student, batch)
    monkeypatch.setattr(objective.teaching, "teacher_logits", lambda *a: pytest.fail("teacher ran on a cached batch"))
    torch.manual_seed(0)
    cached = objective(student, batch)
    assert float(cached["kd_loss"]) > 0
    torch.testing.assert_close(cached["kd_loss"], fresh["kd_loss"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(cached["loss"], fresh["loss"], atol=1e-4, rtol=1e-4)
