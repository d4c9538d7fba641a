"""Mouth region of interest: turn full frames into fixed-size gray mouth clips.

Three methods, one function each, and a small dispatcher (`extract_roi`) that `prepare` calls:

- `roi=mediapipe` — `mouth_roi_clip`: MediaPipe Tasks Face Landmarker (VIDEO mode) → outer-lip landmarks → a box
  per frame along the mouth's own axis (lip corners 61 → 291) with a margin, smoothed over time (missing frames
  interpolated) → a similarity warp (rotate, scale, shift) that puts the mouth upright in the crop.
- `roi=none` — `roi_none`: the video is already a mouth crop; just resize.
- `roi=box` — `roi_box`: a fixed box (x, y, w, h) in pixels, e.g. from manifest columns.

Frames in: RGB `(T, H, W, 3)` or gray `(T, H, W)` uint8. Clips out: `(T, 64, 96)` gray (or `(T, 64, 96, 3)`) uint8.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from signlip.data.clips.video import resize_frames, to_gray
from signlip.errors import SignlipError

# Outer lip contour of the 468/478-point face mesh (MediaPipe FACEMESH_LIPS, outer ring).
LIPS_OUTER: tuple[int, ...] = (
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185,
)
LIP_CORNERS: tuple[int, int] = (61, 291)  # the subject's right and left mouth corner: the mouth's own axis
# What the mediapipe crop does beyond the box, for the preprocessing fingerprint: a change here changes every cached
# mouth clip, so caches made before it are not mixed with new ones.
ALIGNMENT = "mouth_axis_similarity_v1"
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

    def __call__(self, frame: np.ndarray, timestamp_ms: int, size: tuple[int, int] | None = None) -> np.ndarray:
        """`size`: (H, W) of the image the landmarks are wanted in pixels of (a shrunk copy of this frame; default
        the frame's own)."""
        import mediapipe as mp

        rgb = _as_rgb(frame[None])[0]
        h, w = size or rgb.shape[:2]
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


def _lip_frame(landmarks: np.ndarray, margin: float, aspect: float) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, unsmoothed: (T, 5) = cx, cy, w, cos θ, sin θ of the mouth box in its own frame, and which frames
    had a face. θ is the angle of the lip-corner line 61 → 291 (the subject's right → left corner, left → right on
    screen when upright): the box is measured along the mouth's own axis, so a tilted or sideways face gives the same
    box as an upright one."""
    lips = landmarks[:, list(LIPS_OUTER), :2].astype(np.float64)  # (T, 20, 2)
    corners = landmarks[:, list(LIP_CORNERS), :2].astype(np.float64)  # (T, 2, 2)
    found = ~(np.isnan(lips).any(axis=(1, 2)) | np.isnan(corners).any(axis=(1, 2)))
    out = np.full((len(landmarks), 5), np.nan)
    if not found.any():
        return out, found
    d = corners[found, 1] - corners[found, 0]
    theta = np.arctan2(d[:, 1], d[:, 0])
    u = np.stack([np.cos(theta), np.sin(theta)], axis=1)  # (F, 2): along the mouth
    v = np.stack([-u[:, 1], u[:, 0]], axis=1)  # across it (chin-ward when upright)
    pu, pv = np.einsum("fkd,fd->fk", lips[found], u), np.einsum("fkd,fd->fk", lips[found], v)  # (F, 20)
    mid_u, mid_v = (pu.min(1) + pu.max(1)) / 2, (pv.min(1) + pv.max(1)) / 2
    centre = mid_u[:, None] * u + mid_v[:, None] * v
    lip_w, lip_h = np.ptp(pu, axis=1), np.ptp(pv, axis=1)
    w = np.maximum(lip_w * (1 + 2 * margin), lip_h * (1 + margin) * aspect)
    out[found] = np.column_stack([centre, w, u])
    return out, found


def _no_face(source: str) -> SignlipError:
    where = f" in {source}" if source else ""
    return SignlipError(f"no face found{where} — the face must be visible and frontal enough for MediaPipe's face "
                        "landmarker; use roi=box with x,y,w,h columns or roi=none for pre-cropped mouth videos")


def mouth_geometry(
    landmarks: np.ndarray,
    margin: float = 0.35,
    smoothing: float = 0.6,
    aspect: float = ROI_SIZE[1] / ROI_SIZE[0],
    source: str = "",
) -> np.ndarray:
    """Per-frame mouth box in the mouth's own frame, `(T, 4)` float = (cx, cy, w, θ): centre and width in pixels,
    θ the roll of the lip-corner line in radians (positive = clockwise on screen, 0 = upright). Face landmarks
    `(T, N, 2|3)` in, NaN = no face.

    The box is centred on the outer-lip landmarks; its width (along the mouth axis) is the lip width × (1 + 2·margin)
    and its height `w / aspect` — sized from the lip width, which barely changes while speaking, so the mouth keeps its
    scale in the crop as it opens — but never less than the lip height × (1 + margin). Centre, size and direction
    (as cos θ, sin θ, so ±180° do not average to 0) are smoothed over time; frames without a face are interpolated
    from their neighbours. Raises SignlipError when no frame has a face.
    """
    params, found = _lip_frame(landmarks, margin, aspect)
    if not found.any():
        raise _no_face(source)
    cx, cy, w, c, s = _smooth(_fill_missing(params), smoothing).T
    return np.stack([cx, cy, w, np.arctan2(s, c)], axis=1)


def mouth_boxes(
    landmarks: np.ndarray,
    margin: float = 0.35,
    smoothing: float = 0.6,
    aspect: float = ROI_SIZE[1] / ROI_SIZE[0],
    source: str = "",
) -> np.ndarray:
    """Per-frame mouth boxes `(T, 4)` float = (x, y, w, h) in pixels, measured in the mouth's own frame (see
    `mouth_geometry`; the crop turns the box by θ about its centre — upright faces have θ ≈ 0)."""
    cx, cy, w, _ = mouth_geometry(landmarks, margin, smoothing, aspect, source).T
    h = w / aspect
    return np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)


def face_roll_deg(landmarks: np.ndarray) -> float:
    """Roll of the face in degrees, the median over the frames with a face of the lip-corner line's angle (positive =
    clockwise on screen; ±90 = a sideways face, e.g. a phone held on its side without a rotation tag); NaN when no
    frame has a face."""
    params, found = _lip_frame(landmarks, 0.0, 1.0)
    if not found.any():
        return float("nan")
    c, s = np.median(params[found, 3]), np.median(params[found, 4])
    return float(np.degrees(np.arctan2(s, c)))


def crop_transforms(geometry: np.ndarray, size: tuple[int, int] = ROI_SIZE) -> np.ndarray:
    """(T, 4) mouth geometry (cx, cy, w, θ) → `(T, 2, 3)` affine maps from frame pixels to crop pixels: the box's centre
    goes to the crop's centre, its axis to the crop's x axis, its width to the crop's width (a similarity: rotation,
    uniform scale, shift — the alignment lip-reading toolkits make to a mean face, from the mouth's own landmarks)."""
    out_h, out_w = size
    cx, cy, w, theta = np.asarray(geometry, dtype=np.float64).T
    k = out_w / w  # frame px → crop px
    c, s = np.cos(theta) * k, np.sin(theta) * k
    # crop = k · R(−θ) · (p − centre) + crop centre; pixel centres at integer coordinates, as OpenCV's warpAffine.
    ox, oy = (out_w - 1) / 2, (out_h - 1) / 2
    m = np.zeros((len(cx), 2, 3))
    m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = c, s, ox - (c * cx + s * cy)
    m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = -s, c, oy - (-s * cx + c * cy)
    return m


def warp_crops(frames: np.ndarray | Sequence[np.ndarray], geometry: np.ndarray, size: tuple[int, int] = ROI_SIZE,
               gray: bool = True) -> np.ndarray:
    """Cut each frame's mouth box (cx, cy, w, θ) out upright and resize it to `size` = (H, W); parts outside the
    frame repeat the edge. frames `(T, H0, W0[, 3])` uint8 (or a list of such frames) → `(T, H, W)` gray or
    `(T, H, W, 3)` uint8."""
    import cv2

    geometry = np.asarray(geometry, dtype=np.float64)
    out_h, out_w = size
    channels = () if gray or not len(frames) else frames[0].shape[2:]
    out = np.empty((len(frames), out_h, out_w) + channels, dtype=np.uint8)
    for i, (f, g) in enumerate(zip(frames, geometry)):
        # A box wider than the crop is warped at its own scale first, then shrunk with INTER_AREA: a warp straight
        # to a much smaller size samples (aliases) instead of averaging.
        scale = max(1.0, g[2] / out_w)
        mid_h, mid_w = max(out_h, round(out_h * scale)), max(out_w, round(out_w * scale))
        m = crop_transforms(g[None], (mid_h, mid_w))[0]
        crop = cv2.warpAffine(np.ascontiguousarray(f), m, (mid_w, mid_h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        if gray:  # per pixel, so the crop's gray is the gray frame's crop — at a fraction of the pixels
            crop = to_gray(crop[None])[0]
        out[i] = resize_frames(crop[None], size)[0] if (mid_h, mid_w) != (out_h, out_w) else crop
    return out


def crop_boxes(
    frames: np.ndarray, boxes: np.ndarray, size: tuple[int, int] = ROI_SIZE, gray: bool = True
) -> np.ndarray:
    """Crop each frame to its axis-aligned box (x, y, w, h) and resize to `size` = (H, W); parts outside the frame
    repeat the edge.

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


def track_face(frames: np.ndarray, model_path: str | Path, fps: float = 25.0) -> np.ndarray:
    """`detect_face_landmarks`, and when the face is missing in most frames, again on the frames turned by 180°, 90°
    and 270° (MediaPipe finds faces rolled up to about ±90°, not upside down): the orientation with the most faces
    wins, its landmarks mapped back to the frames' own pixels. `(T, 478, 3)` float32, NaN = no face."""
    landmarks = detect_face_landmarks(frames, model_path, fps=fps)
    found = ~np.isnan(landmarks[:, :, 0]).any(axis=1)
    if len(frames) == 0 or found.mean() >= 0.5:
        return landmarks
    h, w = frames.shape[1:3]
    best, best_found = landmarks, found.sum()
    for k in (2, 1, 3):  # np.rot90's k: quarter turns counter-clockwise
        turned = detect_face_landmarks(np.ascontiguousarray(np.rot90(frames, k, axes=(1, 2))), model_path, fps=fps)
        n = (~np.isnan(turned[:, :, 0]).any(axis=1)).sum()
        if n > best_found:
            x, y = turned[..., 0].copy(), turned[..., 1].copy()
            # Back from the turned image's pixels to the frame's: undo k quarter turns counter-clockwise.
            if k == 1:
                turned[..., 0], turned[..., 1] = w - 1 - y, x
            elif k == 2:
                turned[..., 0], turned[..., 1] = w - 1 - x, h - 1 - y
            else:
                turned[..., 0], turned[..., 1] = y, h - 1 - x
            best, best_found = turned, n
        if best_found >= 0.5 * len(frames):
            break
    return best


def track_video(
    path: str | Path,
    model_path: str | Path,
    fps: float,
    keep: Callable[[int], np.ndarray],
    max_side: int | None = None,
    stats: dict | None = None,
) -> tuple[list[np.ndarray | None], np.ndarray]:
    """`track_face` on a video file while it decodes, in one pass that holds only the frames a clip keeps: returns
    `read_kept_frames`' list (frames at `fps` shrunk to `max_side` at the indices `keep(length)` picks, None elsewhere)
    and the landmarks `(T, 478, 3)` of every frame in those frames' pixels.

    The tracker sees each frame at its source size (MediaPipe resizes internally; for a video within `max_side` these
    are exactly the frames `read_frames` gives). When the face is missing in most frames the whole video is read and
    handed to `track_face`, which also tries it turned (a sideways phone video)."""
    from signlip.data.clips.video import _target_size, read_frames, read_kept_frames

    landmarks: list[np.ndarray] = []
    sizes: list[tuple[int, int]] = []  # the kept frames' (H, W): all are shrunk to the first frame's target size
    with FaceTracker(model_path) as tracker:
        def on_frame(rgb: np.ndarray, index: int) -> None:
            sizes.append(sizes[0] if sizes else _target_size(rgb.shape, None, max_side))
            landmarks.append(tracker(rgb, round(index * 1000.0 / fps), size=sizes[0]))

        frames = read_kept_frames(path, fps, keep, max_side=max_side, on_frame=on_frame, stats=stats)
    found = ~np.isnan(np.stack(landmarks)[:, :, 0]).any(axis=1)
    if found.mean() >= 0.5:
        return frames, np.stack(landmarks)
    whole = read_frames(path, fps=fps, max_side=max_side)
    return list(whole), track_face(whole, model_path, fps=fps)


def mouth_roi_clip(
    frames: np.ndarray | Sequence[np.ndarray | None],
    model_path: str | Path,
    margin: float = 0.35,
    smoothing: float = 0.6,
    size: tuple[int, int] = ROI_SIZE,
    fps: float = 25.0,
    gray: bool = True,
    source: str = "",
    landmarks: np.ndarray | None = None,
    keep: np.ndarray | None = None,
) -> np.ndarray:
    """`roi=mediapipe`: full RGB frames `(T, H0, W0, 3)` → mouth clip `(T, H, W)` uint8 (gray) centred on the lips,
    turned so the lip corners lie level (roll-corrected: a tilted or sideways face gives an upright mouth).

    `source` (the video's path) only appears in error messages. Raises SignlipError when the model file is missing or
    no face is found in the whole clip; a few frames without a face are interpolated from their neighbours.
    `landmarks`: the frames' face landmarks `(T, 478, 3)` when a tracker already ran over them (streaming).
    `keep`: crop only the frames at these indices (the box still comes from all frames' landmarks); frames not kept
    may then be None.
    """
    if landmarks is None:
        landmarks = track_face(np.asarray(frames), model_path, fps=fps)
    geometry = mouth_geometry(landmarks, margin=margin, smoothing=smoothing, aspect=size[1] / size[0], source=source)
    if keep is not None:
        frames, geometry = [frames[i] for i in keep], geometry[keep]
    return warp_crops(frames, geometry, size=size, gray=gray)


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
    frames: np.ndarray | Sequence[np.ndarray | None],
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
    keep: np.ndarray | None = None,
) -> np.ndarray:
    """Dispatch on the ROI method name from config (`mediapipe`, `none`, `box`); same output as the method functions.
    `landmarks`: face landmarks of the frames already tracked (roi=mediapipe, streaming). `keep`: indices of the frames
    to crop (a clip's temporal sampling, done before the per-frame work: the same output as sampling after it);
    frames not kept may be None."""
    if method == "mediapipe":
        if model_path is None:
            raise SignlipError(f"roi=mediapipe needs the face model path — {_MODEL_HINT}")
        return mouth_roi_clip(frames, model_path, margin=margin, smoothing=smoothing, size=size, fps=fps, gray=gray,
                              source=source, landmarks=landmarks, keep=keep)
    if keep is not None:
        frames = np.stack([frames[i] for i in keep])
    if method == "none":
        return roi_none(frames, size=size, gray=gray)
    if method == "box":
        if box is None:
            where = f" for {source}" if source else ""
            raise SignlipError(f"roi=box needs a box{where} — add x,y,w,h columns (pixels) to the manifest")
        return roi_box(frames, box, size=size, gray=gray)
    raise SignlipError(f"unknown roi method {method!r} — choose one of: {', '.join(ROI_METHODS)}")
