"""MediaPipe holistic extraction for `signlip prepare`: face + hand + pose landmarkers → `(T, 543, 3)` float32.

No holistic_landmarker.task is available offline, so "holistic" is built from three Tasks-API landmarkers run in
VIDEO mode (tracking between frames): FaceLandmarker (478 points; the first 468 are the face mesh, the last 10 the
irises, which the GISLR layout leaves out), HandLandmarker (num_hands=2) and PoseLandmarker (33 points). Anything
not detected is NaN. Coordinates are MediaPipe's normalised image coordinates (x, y in [0, 1], z relative).

Left/right hands. The layout's left_hand is the *signer's* left hand. MediaPipe's handedness label assumes a
mirrored (selfie) image, so for ordinary, non-mirrored video its "Left" is the signer's right hand
(`mirrored_input=False`, the default, swaps the labels; pass True for selfie-mirrored footage). The label alone
flickers, so hands are assigned per frame by this rule:
  1. if the pose landmarker found both wrists (anatomical: BlazePose's left wrist is the signer's left), each hand
     goes to the slot whose pose wrist is nearest its own wrist (the better of the two pairings), provided that
     wrist lies within `pose_radius` (image units) of it;
  2. otherwise by the (mirror-corrected) handedness label; two hands with the same label are split by image x
     (in non-mirrored video the signer's right hand is the one further left);
  3. a single hand whose label disagrees with where the hands were a frame ago — its wrist lies within
     `track_radius` of the other slot's previous wrist and not of its own slot's — keeps the other slot.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from signlip.data.holistic.features import FACE, LEFT_HAND, N_FACE, N_POINTS, POSE, RIGHT_HAND
from signlip.errors import SignlipError

MODEL_FILES = {"face": "face_landmarker.task", "hand": "hand_landmarker.task", "pose": "pose_landmarker_full.task"}
FETCH_HINT = "python scripts/fetch_models.py"
_POSE_LEFT_WRIST, _POSE_RIGHT_WRIST = 15, 16


def model_path(models_dir: str | Path, kind: str) -> Path:
    """Path of the landmarker model of `kind` (face / hand / pose) under `models_dir`; SignlipError if missing.

    For pose, any pose_landmarker_*.task is accepted when pose_landmarker_full.task is absent."""
    models_dir = Path(models_dir).expanduser()
    path = models_dir / MODEL_FILES[kind]
    if not path.is_file() and kind == "pose":
        alternatives = sorted(models_dir.glob("pose_landmarker*.task"))
        if alternatives:
            return alternatives[0]
    if not path.is_file():
        raise SignlipError(f"MediaPipe model {path} not found — run `{FETCH_HINT}` (or download {path.name} from "
                           f"Google's MediaPipe model page into {models_dir})")
    return path


def iter_video_rgb(path: str | Path, max_frames: int | None = None) -> tuple[Iterator[np.ndarray], float]:
    """Open a video with OpenCV → (its frames (H, W, 3) RGB uint8 one by one, fps). SignlipError if unreadable."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SignlipError(f"{path}: OpenCV cannot open this video — check the file or re-encode it (e.g. H.264 mp4)")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0

    def frames() -> Iterator[np.ndarray]:
        try:
            n = 0
            while max_frames is None or n < max_frames:
                ok, frame = cap.read()
                if not ok:
                    break
                n += 1
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()

    return frames(), float(fps if 1 <= fps <= 1000 else 30.0)


def _no_frame(path: str | Path) -> SignlipError:
    return SignlipError(f"{path}: no frame could be decoded — check the file or re-encode it")


def read_video_rgb(path: str | Path, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Decode a video with OpenCV → (frames (T, H, W, 3) RGB uint8, fps). SignlipError if unreadable."""
    frames, fps = iter_video_rgb(path, max_frames)
    frames = list(frames)
    if not frames:
        raise _no_frame(path)
    return np.stack(frames), fps


def _points(landmarks) -> np.ndarray:
    return np.asarray([[p.x, p.y, p.z] for p in landmarks], dtype=np.float32)


def assign_hands(hands: list[np.ndarray], labels: list[str], pose_wrists: np.ndarray | None,
                 prev_wrists: np.ndarray, mirrored_input: bool = False, pose_radius: float = 0.15,
                 track_radius: float = 0.08) -> dict[str, np.ndarray]:
    """Decide which detected hand is the signer's left / right (see the module docstring for the rule).

    hands: list of (21, 3) arrays; labels: MediaPipe handedness ("Left"/"Right") per hand; pose_wrists: (2, 2)
    signer's left / right wrist x/y (NaN when not detected) or None; prev_wrists: (2, 2) last frame's left / right
    hand wrist x/y (NaN when absent). Returns {"left": (21, 3), "right": (21, 3)} with the slots that got a hand."""
    if not hands:
        return {}
    wrists = [h[0, :2] for h in hands]
    slots = ("left", "right")
    if pose_wrists is not None and np.isfinite(pose_wrists).all():
        best, best_cost = None, np.inf
        orders = [(0,), (1,)] if len(hands) == 1 else [(0, 1), (1, 0)]
        for order in orders:  # order[i] = slot of hand i
            d = [float(np.linalg.norm(wrists[i] - pose_wrists[s])) for i, s in enumerate(order)]
            if max(d) <= pose_radius and sum(d) < best_cost:
                best, best_cost = order, sum(d)
        if best is not None:
            return {slots[s]: hands[i] for i, s in enumerate(best)}
    # handedness label; MediaPipe's label is correct for mirrored (selfie) input only
    slot_of = []
    for lab in labels:
        is_left = lab.lower().startswith("left")
        slot_of.append(0 if is_left == mirrored_input else 1)
    if len(hands) == 2 and slot_of[0] == slot_of[1]:
        # signer's right hand is further left in the image for non-mirrored input
        left_first = wrists[0][0] > wrists[1][0]
        if mirrored_input:
            left_first = not left_first
        slot_of = [0, 1] if left_first else [1, 0]
    if len(hands) == 1 and np.isfinite(prev_wrists).all(1).any():
        s = slot_of[0]
        d_own = np.linalg.norm(wrists[0] - prev_wrists[s]) if np.isfinite(prev_wrists[s]).all() else np.inf
        d_other = np.linalg.norm(wrists[0] - prev_wrists[1 - s]) if np.isfinite(prev_wrists[1 - s]).all() else np.inf
        if d_other <= track_radius and not d_own <= track_radius:
            slot_of = [1 - s]
    return {slots[s]: hands[i] for i, s in enumerate(slot_of)}


class HolisticTracker:
    """The face, hand and pose landmarkers in VIDEO mode, one frame at a time (tracking carries from frame to frame;
    one tracker per video or stream). `tracker(frame, timestamp_ms)` → `(543, 3)` float32, NaN where nothing was
    found. Use as a context manager (the landmarkers hold threads). Settings as `extract_holistic`."""

    def __init__(self, models_dir: str | Path = "models", mirrored_input: bool = False, face: bool = True,
                 pose: bool = True, min_confidence: float = 0.5):
        import mediapipe as mp

        vision, base = mp.tasks.vision, mp.tasks.BaseOptions
        video = vision.RunningMode.VIDEO
        self.mirrored_input = mirrored_input
        hand_opts = vision.HandLandmarkerOptions(
            base_options=base(model_asset_path=str(model_path(models_dir, "hand"))), running_mode=video, num_hands=2,
            min_hand_detection_confidence=min_confidence, min_hand_presence_confidence=min_confidence,
            min_tracking_confidence=min_confidence)
        self.runners = {"hand": vision.HandLandmarker.create_from_options(hand_opts)}
        try:
            if face:
                self.runners["face"] = vision.FaceLandmarker.create_from_options(vision.FaceLandmarkerOptions(
                    base_options=base(model_asset_path=str(model_path(models_dir, "face"))), running_mode=video,
                    num_faces=1, min_face_detection_confidence=min_confidence))
            if pose:
                self.runners["pose"] = vision.PoseLandmarker.create_from_options(vision.PoseLandmarkerOptions(
                    base_options=base(model_asset_path=str(model_path(models_dir, "pose"))), running_mode=video,
                    num_poses=1, min_pose_detection_confidence=min_confidence))
        except BaseException:
            self.close()
            raise
        self.prev = np.full((2, 2), np.nan, np.float32)  # each hand slot's wrist a frame ago

    def __call__(self, frame: np.ndarray, timestamp_ms: int) -> np.ndarray:
        import mediapipe as mp

        out = np.full((N_POINTS, 3), np.nan, np.float32)
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
        pose_wrists = None
        if "face" in self.runners:
            res = self.runners["face"].detect_for_video(image, timestamp_ms)
            if res.face_landmarks:
                out[FACE] = _points(res.face_landmarks[0])[:N_FACE]  # drop the 10 iris points
        if "pose" in self.runners:
            res = self.runners["pose"].detect_for_video(image, timestamp_ms)
            if res.pose_landmarks:
                p = _points(res.pose_landmarks[0])
                out[POSE] = p
                pose_wrists = p[[_POSE_LEFT_WRIST, _POSE_RIGHT_WRIST], :2]
        res = self.runners["hand"].detect_for_video(image, timestamp_ms)
        hands = [_points(h) for h in res.hand_landmarks]
        labels = [h[0].category_name for h in res.handedness]
        got = assign_hands(hands, labels, pose_wrists, self.prev, self.mirrored_input)
        self.prev[:] = np.nan
        for slot, part in (("left", LEFT_HAND), ("right", RIGHT_HAND)):
            if slot in got:
                out[part] = got[slot]
                self.prev[0 if slot == "left" else 1] = got[slot][0, :2]
        return out

    def close(self) -> None:
        for r in self.runners.values():
            r.close()

    def __enter__(self) -> HolisticTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def extract_holistic(frames: np.ndarray | str | Path, models_dir: str | Path = "models", fps: float | None = None,
                     mirrored_input: bool = False, face: bool = True, pose: bool = True,
                     min_confidence: float = 0.5) -> np.ndarray:
    """Run the face, hand and pose landmarkers over a video → `(T, 543, 3)` float32, NaN where nothing was found.

    frames: RGB uint8 `(T, H, W, 3)` or a video path (decoded with OpenCV). models_dir holds hand_landmarker.task,
    face_landmarker.task and pose_landmarker_full.task (missing file → SignlipError naming it). `face=False` /
    `pose=False` skip those landmarkers (their points stay NaN; pose still helps assign hands when on)."""
    path = frames if isinstance(frames, (str, Path)) else None
    if path is not None:  # tracked as it decodes (a thread decodes ahead): the whole video is never held
        from signlip.data.clips.video import run_ahead

        frames, video_fps = iter_video_rgb(path)
        frames = run_ahead(frames)
        fps = fps or video_fps
    else:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise SignlipError(f"frames must be RGB uint8 (T, H, W, 3); got {frames.dtype} {tuple(frames.shape)}")
    fps = float(fps or 30.0)
    with HolisticTracker(models_dir, mirrored_input, face, pose, min_confidence) as tracker:
        out = [tracker(frame, round(t * 1000.0 / fps)) for t, frame in enumerate(frames)]
    if path is not None and not out:
        raise _no_frame(path)
    return np.stack(out) if out else np.full((0, N_POINTS, 3), np.nan, np.float32)
