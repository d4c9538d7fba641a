"""Real MediaPipe hand landmarker on a real photo (handSrc.jpg) made into a short shifted clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from signlip.data.holistic.features import FACE, LEFT_HAND, POSE, RIGHT_HAND
from signlip.errors import SignlipError

MODELS = Path(__file__).resolve().parents[1] / "models"
HAND_MODEL, PHOTO = MODELS / "hand_landmarker.task", MODELS / "handSrc.jpg"

pytestmark = [
    pytest.mark.mediapipe,
    pytest.mark.skipif(not (HAND_MODEL.is_file() and PHOTO.is_file()),
                       reason="run python scripts/fetch_models.py --photos"),
]


def _clip(n: int = 6, step: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The photo shifted right by `step` pixels per frame (edge pixels repeated); returns frames and skin mask."""
    import cv2

    img = cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB)
    frames = []
    for i in range(n):
        s = i * step
        frames.append(np.concatenate([np.repeat(img[:, :1], s, 1), img[:, : img.shape[1] - s]], 1) if s else img)
    ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)
    skin = (ycc[..., 1] >= 133) & (ycc[..., 1] <= 180) & (ycc[..., 2] >= 77) & (ycc[..., 2] <= 135)
    return np.stack(frames), skin


def test_hand_points_land_on_the_hand_in_the_right_slot(tmp_path):
    import shutil

    from signlip.data.holistic.extract import extract_holistic

    shutil.copy(HAND_MODEL, tmp_path / HAND_MODEL.name)  # a models folder with the hand model only
    frames, skin = _clip()
    out = extract_holistic(frames, tmp_path, fps=30, face=False, pose=False)
    t, h, w = frames.shape[:3]
    assert out.shape == (t, 543, 3) and out.dtype == np.float32
    assert np.isnan(out[:, FACE]).all() and np.isnan(out[:, POSE]).all()
    # MediaPipe labels this open right palm "Left" (it assumes selfie input): for a normal photo it is the
    # signer's right hand, so it must land in right_hand [522:543] and left_hand stays empty.
    found = np.isfinite(out[:, RIGHT_HAND, 0]).all(1)
    assert found.sum() >= t - 1
    assert np.isnan(out[:, LEFT_HAND]).all()
    ys, xs = np.nonzero(skin)
    x0, x1, y0, y1 = xs.min() / w, xs.max() / w, ys.min() / h, ys.max() / h
    for k in np.flatnonzero(found):
        hand = out[k, RIGHT_HAND]
        shift = 4 * k / w
        inside = ((hand[:, 0] >= x0 + shift - 0.05) & (hand[:, 0] <= x1 + shift + 0.05)
                  & (hand[:, 1] >= y0 - 0.05) & (hand[:, 1] <= y1 + 0.05))
        assert inside.all(), hand[~inside]
        px = np.clip(((hand[:, 0] - shift) * w).astype(int), 0, w - 1)
        py = np.clip((hand[:, 1] * h).astype(int), 0, h - 1)
        assert skin[py, px].mean() >= 0.8  # the points sit on skin pixels, not on the background
        # layout within the hand: index 0 is the wrist, farthest of all points from the middle fingertip (12)
        d = np.linalg.norm(hand[:, :2] - hand[12, :2], axis=1)
        assert d.argmax() in (0, 1) and d[0] > 0.8 * d.max()
        tips = hand[[4, 8, 12, 16, 20], :2]
        assert np.linalg.norm(tips - hand[0, :2], axis=1).min() > np.linalg.norm(hand[1, :2] - hand[0, :2])
    # the clip moves right, and so do the landmarks
    first, last = np.flatnonzero(found)[[0, -1]]
    moved = np.nanmean(out[last, RIGHT_HAND, 0] - out[first, RIGHT_HAND, 0])
    assert abs(moved - 4 * (last - first) / w) < 0.02


def test_missing_model_names_the_file(tmp_path):
    from signlip.data.holistic.extract import extract_holistic

    frames = np.zeros((2, 32, 32, 3), np.uint8)
    with pytest.raises(SignlipError, match=r"hand_landmarker\.task.*scripts/fetch_models\.py"):
        extract_holistic(frames, tmp_path)
