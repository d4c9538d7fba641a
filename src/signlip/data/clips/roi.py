"""Mouth region of interest: turn full frames into fixed-size gray mouth clips.

Three methods, one function each, and a small dispatcher (`extract_roi`) that `prepare` calls:

- `roi=mediapipe` — `mouth_roi_clip`: MediaPipe Tasks Face Landmarker (VIDEO mode) → outer-lip landmarks → a box
  per frame with a margin, smoothed over time (missing frames interpolated) → crop + resize.
- `roi=none` — `roi_none`: the video is already a mouth crop; just resize.
- `roi=box` — `roi_box`: a fixed box (x, y, w, h) in pixels, e.g. from manifest columns.

Frames in: RGB `(T, H, W, 3)` or gray `(T, H, W)` uint8. Clips out: `(T, 64, 96)` gray (or `(T, 64, 96, 3)`) uint8.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np

from signlip.data.clips.video import resize_frames, to_gray
from signlip.errors import SignlipError

# Outer lip contour of the 468/478-point face mesh (MediaPipe FACEMESH_LIPS, outer ring).
LIPS_OUTER: tuple[int, ...] = (
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185,
)
ROI_SIZE: tuple[int, int] = (64, 96)  # (H, W) of the reference recipe
ROI_METHODS = ("mediapipe", "none", "box")

_MODEL_HINT = ("run `python scripts/fetch_models.py` (puts it in models/), or download face_landmarker.task from "
               "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/latest/"
               "face_landmarker.task and set the model path in the config")


def model_sha256(model_path: str | Path) -> str:
    """sha256 of a model file, for the preprocessing fingerprint."""
    h = hashlib.sha256()
    with open(model_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_model(model_path: str | Path) -> Path:
    p = Path(model_path)
    if not p.is_file():
        raise SignlipError(f"MediaPipe face model not found: {p} — {_MODEL_HINT}")
    return p


def _as_rgb(frames: np.ndarray) -> np.ndarray:
    if frames.ndim == 3:  # (T, H, W) gray → (T, H, W, 3): the landmarker wants SRGB
        return np.repeat(frames[..., None], 3, axis=-1)
    return frames


class FaceTracker:
    """The Face Landmarker in VIDEO mode, one frame at a time: its tracking state carries from frame to frame (one
    tracker per video or stream). `tracker(frame, timestamp_ms)` → `(478, 3)` float32 landmarks in pixels (x, y)
    and the model's relative depth z; NaN when no face was found. Use as a context manager (it holds threads)."""

    def __init__(self, model_path: str | Path, min_confidence: float = 0.5):
        path = _check_model(model_path)
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=1,
            min_face_detection_confidence=min_confidence,
            min_face_presence_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
        )
        self.landmarker = vision.FaceLandmarker.create_from_options(options)

    def __call__(self, frame: np.ndarray, timestamp_ms: int) -> np.ndarray:
        import mediapipe as mp

        rgb = _as_rgb(frame[None])[0]
        h, w = rgb.shape[:2]
        out = np.full((478, 3), np.nan, dtype=np.float32)
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        result = self.landmarker.detect_for_video(image, timestamp_ms)  # timestamps must increase
        if result.face_landmarks:
            pts = result.face_landmarks[0]
            n = min(len(pts), len(out))
            out[:n] = np.array([(p.x, p.y, p.z) for p in pts[:n]], dtype=np.float32) * np.array([w, h, w], np.float32)
        return out

    def close(self) -> None:
        self.landmarker.close()

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def detect_face_landmarks(
    frames: np.ndarray,
    model_path: str | Path,
    fps: float = 25.0,
    min_confidence: float = 0.5,
) -> np.ndarray:
    """Run the Face Landmarker in VIDEO mode over a clip; one fresh tracker per clip (its tracking state is per
    video).

    frames: RGB `(T, H, W, 3)` or gray `(T, H, W)` uint8. Returns `(T, 478, 3)` float32 landmarks (see FaceTracker).
    """
    with FaceTracker(model_path, min_confidence) as tracker:
        return np.stack([tracker(frame, round(i * 1000.0 / fps)) for i, frame in enumerate(frames)]) if len(frames) \
            else np.zeros((0, 478, 3), np.float32)


def _fill_missing(values: np.ndarray) -> np.ndarray:
    """Linearly interpolate NaN rows of a (T, D) array over time; leading/trailing gaps hold the nearest value."""
    ok = ~np.isnan(values).any(axis=1)
    t = np.arange(len(values))
    return np.stack([np.interp(t, t[ok], values[ok, d]) for d in range(values.shape[1])], axis=1)


def _smooth(values: np.ndarray, smoothing: float) -> np.ndarray:
    """Zero-phase exponential smoothing along time (forward then backward pass): no lag, no jitter.

    smoothing in [0, 1): 0 = none; 0.6 ≈ a few frames of memory at 25 fps.
    """
    if not 0.0 <= smoothing < 1.0:
        raise SignlipError(f"roi smoothing must be in [0, 1), got {smoothing} — set e.g. smoothing=0.6")
    if smoothing == 0.0 or len(values) < 2:
        return values
    a = 1.0 - smoothing
    out = values.astype(np.float64).copy()
    for i in range(1, len(out)):  # T is a few dozen frames of 4 numbers: a Python loop is fine here
        out[i] = a * out[i] + smoothing * out[i - 1]
    for i in range(len(out) - 2, -1, -1):
        out[i] = a * out[i] + smoothing * out[i + 1]
    return out


def mouth_boxes(
    landmarks: np.ndarray,
    margin: float = 0.35,
    smoothing: float = 0.6,
    aspect: float = ROI_SIZE[1] / ROI_SIZE[0],
    source: str = "",
) -> np.ndarray:
    """Per-frame mouth boxes `(T, 4)` float = (x, y, w, h) in pixels from face landmarks `(T, N, 2|3)` (NaN = no face).

    The box is centred on the outer-lip landmarks; its width is the lip width × (1 + 2·margin) and its height follows
    `aspect` (W/H) — sized from the lip width, which barely changes while speaking, so the mouth keeps its scale in the
    crop as it opens — but never less than the lip height × (1 + margin). Centre and size are smoothed over time;
    frames without a face are interpolated from their neighbours. Raises SignlipError when no frame has a face.
    """
    lips = landmarks[:, list(LIPS_OUTER), :2].astype(np.float64)  # (T, 20, 2)
    found = ~np.isnan(lips).any(axis=(1, 2))
    if not found.any():
        where = f" in {source}" if source else ""
        raise SignlipError(f"no face found{where} — the face must be visible and frontal enough for MediaPipe's face "
                           "landmarker; use roi=box with x,y,w,h columns or roi=none for pre-cropped mouth videos")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames without a face: NaN rows, filled below
        lo, hi = np.nanmin(lips, axis=1), np.nanmax(lips, axis=1)  # (T, 2) each
    centre = (lo + hi) / 2
    lip_w, lip_h = hi[:, 0] - lo[:, 0], hi[:, 1] - lo[:, 1]
    w = np.maximum(lip_w * (1 + 2 * margin), lip_h * (1 + margin) * aspect)
    params = np.stack([centre[:, 0], centre[:, 1], w], axis=1)  # (T, 3): cx, cy, w
    params[~found] = np.nan
    params = _smooth(_fill_missing(params), smoothing)
    cx, cy, w = params.T
    h = w / aspect
    return np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)


def crop_boxes(
    frames: np.ndarray, boxes: np.ndarray, size: tuple[int, int] = ROI_SIZE, gray: bool = True
) -> np.ndarray:
    """Crop each frame to its box (x, y, w, h) and resize to `size` = (H, W); parts outside the frame repeat the edge.

    frames: `(T, H0, W0[, 3])` uint8; boxes: `(T, 4)` or one `(4,)` box for all frames.
    Returns `(T, H, W)` gray (gray=True) or `(T, H, W, 3)` uint8.
    """
    boxes = np.broadcast_to(np.asarray(boxes, dtype=np.float64), (len(frames), 4))
    h0, w0 = frames.shape[1:3]
    crops = []
    for f, (x, y, bw, bh) in zip(frames, boxes):
        x0, y0 = round(x), round(y)
        x1, y1 = x0 + max(1, round(bw)), y0 + max(1, round(bh))
        crop = f[max(y0, 0):max(min(y1, h0), 0), max(x0, 0):max(min(x1, w0), 0)]
        if crop.size == 0:
            raise SignlipError(f"mouth box {x0, y0, x1 - x0, y1 - y0} lies outside the {w0}×{h0} frame — "
                               "check the roi box (x, y, w, h in pixels of the source video)")
        pad = [(max(-y0, 0), max(y1 - h0, 0)), (max(-x0, 0), max(x1 - w0, 0))] + [(0, 0)] * (f.ndim - 2)
        if gray:  # per pixel, so the crop's gray is the gray frame's crop — at a fraction of the pixels
            crop = to_gray(crop[None])[0]
            pad = pad[:2]
        if any(p for pair in pad for p in pair):
            crop = np.pad(crop, pad, mode="edge")
        crops.append(crop)
    out = np.empty((len(crops), *size) + crops[0].shape[2:], dtype=np.uint8)
    for i, c in enumerate(crops):
        out[i] = resize_frames(c[None], size)[0]
    return out


def mouth_roi_clip(
    frames: np.ndarray,
    model_path: str | Path,
    margin: float = 0.35,
    smoothing: float = 0.6,
    size: tuple[int, int] = ROI_SIZE,
    fps: float = 25.0,
    gray: bool = True,
    source: str = "",
    landmarks: np.ndarray | None = None,
) -> np.ndarray:
    """`roi=mediapipe`: full RGB frames `(T, H0, W0, 3)` → mouth clip `(T, H, W)` uint8 (gray) centred on the lips.

    `source` (the video's path) only appears in error messages. Raises SignlipError when the model file is missing or
    no face is found in the whole clip; a few frames without a face are interpolated from their neighbours.
    `landmarks`: the frames' face landmarks `(T, 478, 3)` when a tracker already ran over them (streaming).
    """
    if landmarks is None:
        landmarks = detect_face_landmarks(frames, model_path, fps=fps)
    boxes = mouth_boxes(landmarks, margin=margin, smoothing=smoothing, aspect=size[1] / size[0], source=source)
    return crop_boxes(frames, boxes, size=size, gray=gray)


def roi_none(frames: np.ndarray, size: tuple[int, int] = ROI_SIZE, gray: bool = True) -> np.ndarray:
    """`roi=none`: the frames are already mouth crops — resize `(T, H0, W0[, 3])` to `(T, H, W[, 3])` uint8."""
    return resize_frames(frames, size, gray=gray)


def roi_box(
    frames: np.ndarray, box: tuple[float, float, float, float], size: tuple[int, int] = ROI_SIZE, gray: bool = True
) -> np.ndarray:
    """`roi=box`: crop the same (x, y, w, h) pixel box from every frame, then resize to `size`."""
    box_arr = np.asarray(box, dtype=np.float64)
    if box_arr.shape != (4,) or not np.isfinite(box_arr).all() or box_arr[2] <= 0 or box_arr[3] <= 0:
        raise SignlipError(f"bad roi box {box!r} — give x, y, w, h in pixels with w > 0 and h > 0 (manifest columns "
                           "x,y,w,h)")
    return crop_boxes(frames, box_arr, size=size, gray=gray)


def extract_roi(
    frames: np.ndarray,
    method: str = "mediapipe",
    *,
    model_path: str | Path | None = None,
    box: tuple[float, float, float, float] | None = None,
    margin: float = 0.35,
    smoothing: float = 0.6,
    size: tuple[int, int] = ROI_SIZE,
    fps: float = 25.0,
    gray: bool = True,
    source: str = "",
    landmarks: np.ndarray | None = None,
) -> np.ndarray:
    """Dispatch on the ROI method name from config (`mediapipe`, `none`, `box`); same output as the method functions.
    `landmarks`: face landmarks of the frames already tracked (roi=mediapipe, streaming)."""
    if method == "mediapipe":
        if model_path is None:
            raise SignlipError(f"roi=mediapipe needs the face model path — {_MODEL_HINT}")
        return mouth_roi_clip(frames, model_path, margin=margin, smoothing=smoothing, size=size, fps=fps, gray=gray,
                              source=source, landmarks=landmarks)
    if method == "none":
        return roi_none(frames, size=size, gray=gray)
    if method == "box":
        if box is None:
            where = f" for {source}" if source else ""
            raise SignlipError(f"roi=box needs a box{where} — add x,y,w,h columns (pixels) to the manifest")
        return roi_box(frames, box, size=size, gray=gray)
    raise SignlipError(f"unknown roi method {method!r} — choose one of: {', '.join(ROI_METHODS)}")
