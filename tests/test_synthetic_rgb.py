"""Synthetic RGB sign clips: deterministic, signer-disjoint splits, and a single frame does not tell the class."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest

from signlip.data.clips.synthetic_rgb import CLASSES, SHAPES, _signer, clip_plan, make_synthetic_rgb, shape_at
from signlip.errors import SignlipError

SMALL = {"n_classes": 4, "n_people": (2, 1, 1), "per_class_per_person": 1, "n_frames": 8, "frame_size": (48, 48)}


def _rows(manifest):
    with open(manifest, newline="") as fh:
        return list(csv.DictReader(fh))


def _digest(root, rows):
    return [hashlib.sha1((root / r["path"]).read_bytes()).hexdigest() for r in rows]


def test_deterministic_and_signer_disjoint(tmp_path):
    a = make_synthetic_rgb(tmp_path / "a", seed=3, **SMALL)
    b = make_synthetic_rgb(tmp_path / "b", seed=3, **SMALL)
    rows_a, rows_b = _rows(a), _rows(b)
    assert rows_a == rows_b and len(rows_a) == 4 * 4
    assert _digest(a.parent, rows_a) == _digest(b.parent, rows_b)
    c = make_synthetic_rgb(tmp_path / "c", seed=4, **SMALL)
    assert _digest(c.parent, _rows(c)) != _digest(a.parent, rows_a)
    signers = {s: {r["signer"] for r in rows_a if r["split"] == s} for s in ("train", "val", "test")}
    assert signers["train"].isdisjoint(signers["val"]) and signers["train"].isdisjoint(signers["test"])
    assert signers["val"].isdisjoint(signers["test"])
    assert {r["label"] for r in rows_a} == set(CLASSES[:4])


def test_videos_read_back_as_rgb_clips(tmp_path):
    from signlip.data.clips.video import read_frames

    manifest = make_synthetic_rgb(tmp_path, **SMALL)
    frames = read_frames(manifest.parent / _rows(manifest)[0]["path"], fps=25, gray=False)
    assert frames.shape == (8, 48, 48, 3) and frames.dtype == np.uint8
    assert frames.std() > 10  # a textured scene, not a blank frame


def test_a_class_and_its_pair_differ_only_in_frame_order():
    """Each class's pair plays it backwards: pooled over the clip, both show the same hand shapes and arc positions
    (so an order-blind model is at chance between them), while the order of shapes and the travel direction differ."""
    signer = _signer(np.random.default_rng(0), (112, 112))
    stats = {}
    for label in CLASSES:
        rng = np.random.default_rng(1)
        plans = [clip_plan(label, signer, rng, 16) for _ in range(1000)]
        shapes = [shape_at(p["order"], q) for p in plans for q in p["progress"]]
        theta = np.concatenate([p["theta"] % (2 * np.pi) for p in plans])
        first_last = {(shape_at(p["order"], p["progress"][0]), shape_at(p["order"], p["progress"][-1])) for p in plans}
        travel = np.mean([np.sign(p["theta"][1] - p["theta"][0]) for p in plans])
        stats[label] = (np.array([shapes.count(k) for k in SHAPES]) / len(shapes),
                        np.histogram(theta, 6, (0, 2 * np.pi))[0] / len(theta), first_last, round(travel))
    for label, pair in zip(CLASSES[::2], CLASSES[1::2]):
        (shape_a, theta_a, order_a, travel_a), (shape_b, theta_b, order_b, travel_b) = stats[label], stats[pair]
        assert np.abs(shape_a - shape_b).max() < 0.02 and np.abs(theta_a - theta_b).max() < 0.03, (label, pair)
        assert order_a == {(label[0], label[2])} and order_b == {(label[2], label[0])}  # reversed order …
        assert travel_a == -travel_b != 0  # … and reversed travel
    assert len({(tuple(s[2]), s[3]) for s in stats.values()}) == len(CLASSES)  # every class has its own sequence


def test_hand_shapes_are_drawn_differently():
    """The three shapes give three different hand masks, ordered by size: fist < V < open hand."""
    from signlip.data.clips.synthetic_rgb import _hand_mask, hand_pose

    masks = {}
    for k in "ofv":
        ext, spread = hand_pose(k * 3, 0.0)
        masks[k] = _hand_mask((112, 112), np.array([56.0, 60.0]), ext, spread, 1.2, 0.0)
    area = {k: m.sum() for k, m in masks.items()}
    assert area["f"] < area["v"] < area["o"]
    for a, b in (("o", "f"), ("o", "v"), ("f", "v")):
        assert np.abs(masks[a] - masks[b]).sum() > 20, (a, b)


def test_bad_class_count_is_refused(tmp_path):
    with pytest.raises(SignlipError, match="n_classes"):
        make_synthetic_rgb(tmp_path, n_classes=9)
