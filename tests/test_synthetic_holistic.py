"""Synthetic holistic dataset: format, determinism, idempotence, signer-disjoint splits."""

from __future__ import annotations

import csv
import json

import numpy as np

from signlip.data.holistic.features import N_POINTS, holistic_features
from signlip.data.holistic.synthetic import SETTINGS_FILE, make_synthetic_holistic

KW = {"n_people": [3, 1, 1], "per_class_per_person": 1, "n_classes": 6, "seed": 3}


def _rows(manifest):
    return list(csv.DictReader(manifest.open()))


def test_format_determinism_and_splits(tmp_path):
    a = make_synthetic_holistic(tmp_path / "a", **KW)
    b = make_synthetic_holistic(tmp_path / "b", **KW)
    ra, rb = _rows(a), _rows(b)
    assert list(ra[0]) == ["path", "label", "split", "signer"]
    assert len(ra) == 5 * 6 and len({r["label"] for r in ra}) == 6
    for x, y in zip(ra, rb):
        assert x == y
        np.testing.assert_array_equal(np.load(a.parent / x["path"]), np.load(b.parent / y["path"]))
    signers = {s: {r["signer"] for r in ra if r["split"] == s} for s in ("train", "val", "test")}
    assert all(signers.values())
    assert not (signers["train"] & signers["val"]) and not (signers["train"] & signers["test"])
    assert not (signers["val"] & signers["test"])
    arr = np.load(a.parent / ra[0]["path"])
    assert arr.dtype == np.float32 and arr.ndim == 3 and arr.shape[1:] == (N_POINTS, 3)
    assert np.isnan(arr).any()  # some missing hands
    feats, info = holistic_features(arr)
    assert feats.shape[1] == 744 and 0 < info["n_frames"] < arr.shape[0]  # hand-less lead-in dropped


def test_idempotent_and_regenerates_on_new_settings(tmp_path):
    m = make_synthetic_holistic(tmp_path, **KW)
    stamp = m.stat().st_mtime_ns
    assert make_synthetic_holistic(tmp_path, **KW) == m and m.stat().st_mtime_ns == stamp
    m2 = make_synthetic_holistic(tmp_path, **{**KW, "seed": 4})
    assert json.loads((tmp_path / SETTINGS_FILE).read_text())["seed"] == 4
    assert len(_rows(m2)) == 30
