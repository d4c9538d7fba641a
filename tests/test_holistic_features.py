"""Holistic layout, feature pipeline and batch augmentations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from signlip.data.holistic import features as H
from signlip.data.holistic.augment import HolisticAugment, HolisticBatchTransform, flip, temporal_resample
from signlip.errors import SignlipError

MODELS = Path(__file__).resolve().parents[1] / "models"


def _sequence(t: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    arr = rng.uniform(0.2, 0.8, (t, H.N_POINTS, 3)).astype(np.float32)
    arr[:, H.POSE.start + H.POSE_L_SHOULDER, :2] = (0.7, 0.6)
    arr[:, H.POSE.start + H.POSE_R_SHOULDER, :2] = (0.3, 0.6)  # shoulder width 0.4
    arr[:, H.FACE.start + H.FACE_NOSE_TIP, :2] = (0.5, 0.3)
    return arr


def test_presets_and_dimensions():
    assert len(H.PRESETS["hands_lips_nose_eyes"]) == 62
    assert len(set(H.PRESETS["hands_lips_nose_eyes"])) == 62
    assert H.feature_dim() == 744
    assert len(H.PRESETS["hands"]) == 42
    with pytest.raises(SignlipError, match="unknown landmark preset"):
        H.preset_indices("nope")


def test_features_shape_and_nose_normalisation():
    arr = _sequence()
    feats, info = H.holistic_features(arr)
    assert feats.shape == (20, 744) and feats.dtype == np.float32
    assert info["scale_from"] == "shoulders" and info["scale"] == pytest.approx(0.4)
    k = H.PRESETS[H.DEFAULT_PRESET].index(H.FACE.start + H.FACE_NOSE_TIP)
    pos = feats[:, : 62 * 3].reshape(20, 62, 3)
    np.testing.assert_allclose(pos[:, k, :2], 0, atol=1e-6)  # nose at the origin
    w = H.PRESETS[H.DEFAULT_PRESET].index(H.LEFT_HAND.start)
    np.testing.assert_allclose(pos[:, w, :2], (arr[:, H.LEFT_HAND.start, :2] - (0.5, 0.3)) / 0.4, rtol=1e-5)
    vel = feats[:, 62 * 3: 2 * 62 * 3].reshape(20, 62, 3)
    np.testing.assert_allclose(vel[:-1], pos[1:] - pos[:-1], atol=1e-5)
    assert np.all(vel[-1] == 0)
    rel = feats[:, 3 * 62 * 3:].reshape(20, 62, 3)
    assert np.all(rel[:, w] == 0)  # the wrist moves with itself


def test_handless_frames_dropped_nan_zeroed_and_resampled():
    arr = _sequence(30)
    arr[[0, 1, 29], H.LEFT_HAND] = np.nan
    arr[[0, 1, 29], H.RIGHT_HAND] = np.nan
    arr[5, H.RIGHT_HAND] = np.nan  # one hand missing: frame kept
    feats, info = H.holistic_features(arr)
    assert info["n_frames"] == 27 and np.isfinite(feats).all()
    feats, info = H.holistic_features(_sequence(500), max_len=384)
    assert feats.shape == (384, 744)
    empty = _sequence(5)
    empty[:, H.LEFT_HAND] = np.nan
    empty[:, H.RIGHT_HAND] = np.nan
    assert H.holistic_features(empty)[0].shape == (0, 744)
    with pytest.raises(SignlipError, match="expected"):
        H.holistic_features(np.zeros((4, 75, 3), np.float32))


def test_torch_features_match_numpy_and_ignore_padding():
    pts, _ = H.select_normalize(_sequence(12))
    pts[4, :21] = np.nan
    ref = H.motion_features(pts)
    batch = torch.full((2, 20, 62, 3), 1e3)
    batch[0, :12] = torch.from_numpy(pts)
    batch[1, :12] = torch.from_numpy(pts)
    mask = torch.arange(20)[None] < torch.tensor([12, 12])[:, None]
    out = H.motion_features_torch(batch, mask)
    torch.testing.assert_close(out[0, :12], torch.from_numpy(ref), atol=1e-5, rtol=1e-5)
    assert torch.all(out[:, 12:] == 0)


def test_mirror_maps_are_involutions():
    perm = H.holistic_mirror_index()
    assert np.array_equal(perm[perm], np.arange(H.N_POINTS))
    assert perm[H.LEFT_HAND.start] == H.RIGHT_HAND.start
    face = np.asarray(H.FACE_MIRROR)
    assert face[33] == 263 and face[61] == 291 and face[1] == 1
    pose = np.asarray(H.POSE_MIRROR)
    assert pose[11] == 12 and pose[15] == 16 and pose[0] == 0 and pose[1] == 4
    pm = H.preset_mirror_index(H.DEFAULT_PRESET)
    assert np.array_equal(pm[pm], np.arange(62))


@pytest.mark.skipif(not (MODELS / "face_landmarker.task").is_file(), reason="run python scripts/fetch_models.py")
def test_face_mirror_matches_canonical_face():
    v = H.canonical_face_from_task(str(MODELS / "face_landmarker.task"))
    assert v.shape == (468, 3)
    mirrored = v * np.array([-1, 1, 1], np.float32)
    np.testing.assert_allclose(mirrored, v[np.asarray(H.FACE_MIRROR)], atol=1e-4)


def test_flip_swaps_hands_and_twice_is_identity():
    torch.manual_seed(0)
    x = torch.randn(3, 10, H.N_POINTS, 3)
    perm = H.holistic_mirror_index()
    y = flip(x, 1.0, perm)
    torch.testing.assert_close(y[:, :, H.RIGHT_HAND, 0], -x[:, :, H.LEFT_HAND, 0])
    torch.testing.assert_close(y[:, :, H.LEFT_HAND, 1:], x[:, :, H.RIGHT_HAND, 1:])
    torch.testing.assert_close(flip(y, 1.0, perm), x)
    assert torch.equal(flip(x, 0.0, perm), x)
    pts = torch.randn(2, 5, 62, 3)
    pm = H.preset_mirror_index(H.DEFAULT_PRESET)
    torch.testing.assert_close(flip(flip(pts, 1.0, pm), 1.0, pm), pts)


def test_temporal_resample_lengths_and_mask():
    x = torch.arange(40, dtype=torch.float32).view(1, 40, 1, 1).expand(2, 40, 4, 3).clone()
    mask = torch.arange(40)[None] < torch.tensor([40, 20])[:, None]
    y, m = temporal_resample(x, mask, p=1.0, low=0.5, high=0.5)
    assert m.sum(1).tolist() == [20, 10]
    assert y[0, 0, 0, 0] == 0 and y[0, 19, 0, 0] == 39 and torch.isnan(y[1, 10:]).all()
    y, m = temporal_resample(x, mask, p=1.0, low=1.5, high=1.5, max_len=50)
    assert m.sum(1).tolist() == [50, 30]
    y, m = temporal_resample(x, mask, p=0.0)
    assert torch.equal(m, mask) and torch.equal(y[0], x[0])


def test_augment_and_batch_transform_run():
    torch.manual_seed(0)
    pts = torch.randn(4, 30, 62, 3)
    mask = torch.arange(30)[None] < torch.tensor([30, 25, 10, 3])[:, None]
    aug = HolisticAugment(p_hflip=1, p_rotate=1, p_scale=1, p_shear=1, p_shift=1, p_resample=1, p_frame_mask=1)
    y, m = aug(pts, mask)
    assert y.shape[:2] == m.shape and y.shape[2:] == (62, 3) and m.any(1).all()
    tf = HolisticBatchTransform(augment={})  # every augmentation at its default probability
    out = tf({"x": pts, "mask": mask, "y": torch.zeros(4, dtype=torch.long)}, training=True)
    assert out["x"].shape[-1] == 744 and torch.isfinite(out["x"]).all()
    out = tf({"x": pts, "mask": mask}, training=False)
    assert out["x"].shape == (4, 30, 744) and torch.equal(out["mask"], mask)


def test_assign_hands_rules():
    from signlip.data.holistic.extract import assign_hands

    a, b = np.zeros((21, 3), np.float32), np.zeros((21, 3), np.float32)
    a[:, 0], b[:, 0] = 0.3, 0.7  # hand a on the image left, b on the image right
    none = np.full((2, 2), np.nan, np.float32)
    # non-mirrored video: MediaPipe's "Left" is the signer's right hand
    assert assign_hands([a], ["Left"], None, none)["right"] is a
    assert assign_hands([a], ["Left"], None, none, mirrored_input=True)["left"] is a
    # same label twice: image x decides (signer's right hand is further left in the image)
    got = assign_hands([a, b], ["Right", "Right"], None, none)
    assert got["right"] is a and got["left"] is b
    # pose wrists (anatomical) override a wrong label
    pose = np.array([[0.31, 0.0], [0.69, 0.0]], np.float32)  # signer's left wrist at x=0.31
    got = assign_hands([a, b], ["Left", "Right"], pose, none)
    assert got["left"] is a and got["right"] is b
    # a single hand whose label flips keeps the slot it was tracked in
    prev = np.array([[0.305, 0.0], [np.nan, np.nan]], np.float32)
    assert assign_hands([a], ["Left"], None, prev)["left"] is a
