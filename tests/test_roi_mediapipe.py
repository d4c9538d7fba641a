"""The real MediaPipe Face Landmarker on a real photo: the mouth crop box sits on the lips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from signlip.data.clips.roi import LIPS_OUTER, crop_boxes, detect_face_landmarks, extract_roi, mouth_boxes

FACE_MODEL = REPO / "models" / "face_landmarker.task"

pytestmark = [
    pytest.mark.mediapipe,
    pytest.mark.skipif(not FACE_MODEL.is_file(),
                       reason=f"{FACE_MODEL} missing — run `python scripts/fetch_models.py` to fetch the "
                              f"MediaPipe models"),
]


def astronaut_clip(n: int = 6, step: int = 4) -> np.ndarray:
    """scikit-image's astronaut (a real frontal face), shifted `step` px right and down per frame: (n, 448, 448, 3)."""
    skimage_data = pytest.importorskip("skimage.data", reason="pip install scikit-image (the dev extra)")
    img = skimage_data.astronaut()  # (512, 512, 3) RGB uint8
    return np.stack([img[32 - i * step:480 - i * step, 40 - i * step:488 - i * step] for i in range(n)])


def test_mouth_box_contains_the_lips_in_the_lower_third_of_the_face():
    frames = astronaut_clip()
    landmarks = detect_face_landmarks(frames, FACE_MODEL, fps=25)
    assert not np.isnan(landmarks).any(), "the face must be found in every frame"
    boxes = mouth_boxes(landmarks, margin=0.35, smoothing=0.6)
    for lm, (x, y, w, h) in zip(landmarks, boxes):
        lips = lm[list(LIPS_OUTER), :2]
        assert (lips[:, 0] >= x).all() and (lips[:, 0] <= x + w).all()
        assert (lips[:, 1] >= y).all() and (lips[:, 1] <= y + h).all()
        # The mesh spans forehead (no hair) to chin: the mouth centre lies in its lower part, between the nose tip
        # (landmark 1) and the chin (152), and on the face's vertical mid-line.
        top, bottom = np.nanmin(lm[:, 1]), np.nanmax(lm[:, 1])
        left, right = np.nanmin(lm[:, 0]), np.nanmax(lm[:, 0])
        cx, cy = x + w / 2, y + h / 2
        assert cy > top + 0.6 * (bottom - top) and lm[1, 1] < cy < lm[152, 1], (cy, top, bottom)
        assert abs(cx - (left + right) / 2) < 0.15 * (right - left)
        assert w / h == pytest.approx(96 / 64)
    # The face moves 4 px right and down per frame (20 px in all); the smoothed box follows it steadily.
    for axis in (0, 1):
        assert (np.diff(boxes[:, axis]) > 0).all() and boxes[-1, axis] - boxes[0, axis] > 8
    crops = crop_boxes(frames, boxes, size=(64, 96), gray=True)
    assert crops.shape == (6, 64, 96) and crops.dtype == np.uint8


def test_blank_video_has_no_face(tmp_path):
    from signlip.errors import SignlipError

    blank = np.full((4, 240, 320, 3), 128, np.uint8)
    with pytest.raises(SignlipError, match="no face found in blank.mp4"):
        extract_roi(blank, "mediapipe", model_path=Path(FACE_MODEL), source="blank.mp4")
