"""Synthetic RGB sign clips: deterministic, signer-disjoint splits, and a single frame does not tell the class."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest

from signlip.data.synthetic_rgb import CLASSES, _signer, clip_plan, make_synthetic_rgb
from signlip.errors import SignlipError

SMALL = {"n_classes": 4, "n_signers": (2, 1, 1), "clips_per_class_per_signer": 1, "frames": 8, "size": (48, 48)}


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
    from signlip.data.video import read_frames

    manifest = make_synthetic_rgb(tmp_path, **SMALL)
    frames = read_frames(manifest.parent / _rows(manifest)[0]["path"], fps=25, gray=False)
    assert frames.shape == (8, 48, 48, 3) and frames.dtype == np.uint8
    assert frames.std() > 10  # a textured scene, not a blank frame


def test_a_single_frame_does_not_identify_the_class():
    """Every class puts the hand at uniformly random circle positions and shapes at any given frame: the per-frame
    state (position angle, shape phase) has the same distribution in all classes; only its change over time
    differs."""
    signer = _signer(np.random.default_rng(0), (112, 112))
    frame = 5
    stats = {}
    for label in CLASSES:
        rng = np.random.default_rng(1)
        plans = [clip_plan(label, signer, rng, 16) for _ in range(2000)]
        theta = np.array([p["theta"][frame] % (2 * np.pi) for p in plans])
        psi = np.array([p["psi"][frame] % (2 * np.pi) for p in plans])
        d_theta = np.array([np.sign(p["theta"][frame + 1] - p["theta"][frame]) for p in plans])
        d_psi = np.array([np.sign(p["psi"][frame + 1] - p["psi"][frame]) for p in plans])
        # Histograms of the single-frame state over 6 bins each; the motion signs per class.
        stats[label] = (np.histogram(theta, 6, (0, 2 * np.pi))[0] / len(plans),
                        np.histogram(psi, 6, (0, 2 * np.pi))[0] / len(plans), d_theta.mean(), d_psi.mean())
    for label in CLASSES:
        h_theta, h_psi, _, _ = stats[label]
        assert np.abs(h_theta - 1 / 6).max() < 0.04 and np.abs(h_psi - 1 / 6).max() < 0.04, label
    motions = {(round(s[2]), round(s[3])) for s in stats.values()}
    assert len(motions) == len(CLASSES)  # ... while the motion separates every class


def test_bad_class_count_is_refused(tmp_path):
    with pytest.raises(SignlipError, match="n_classes"):
        make_synthetic_rgb(tmp_path, n_classes=9)
