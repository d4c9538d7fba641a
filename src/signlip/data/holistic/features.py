"""Holistic landmark layout (MediaPipe / GISLR), landmark presets and the `asl_tcn_transformer` feature pipeline.

Layout of one frame, 543 points (x, y, z; NaN = not detected), the order GISLR parquet files use:

    face        468  [0:468]     MediaPipe face mesh (the face landmarker's 478 minus the 10 iris points)
    left_hand    21  [468:489]   the signer's left hand
    pose         33  [489:522]   MediaPipe BlazePose
    right_hand   21  [522:543]   the signer's right hand

Pipeline (per sequence, numpy, run once when a dataset is built and cached):

    (T, 543, 3) ──select_normalize──▶ (T', K, 3) ──motion_features──▶ (T', K·3·4)   (K=62 → 744)

`select_normalize` drops frames without any hand, normalises relative to the nose (position and a robust body
size), then resamples long sequences to `max_len`. `motion_features` (numpy) / `motion_features_torch` (batched,
masked) turn normalised points into four groups of K·3 features, concatenated in this order:

    position      p[t]                                  (relative to the nose, in body-size units)
    velocity      v[t] = p[t+1] - p[t]                  (0 at the last frame, as in the reference)
    acceleration  a[t] = v[t+1] - v[t]
    relative      r[t] = v[t] - v[t] of the point's anchor (wrist for a hand, nose for the face, pose nose for pose)

The reference system (003_725091393ed416e2.txt) lists "velocity, acceleration, relative motion, temporal
consistency"; relative motion here is each point's motion relative to its own body part, i.e. hand shape change
separated from hand travel. (The reference code's version, `x[t+1, i] - x[t, i+1]`, mixes a spatial offset between
unrelated neighbouring indexes into the motion, so it is not copied.) NaN becomes 0 after all features exist.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from signlip.errors import SignlipError

N_FACE, N_HAND, N_POSE = 468, 21, 33
N_POINTS = 543
FACE = slice(0, 468)
LEFT_HAND = slice(468, 489)
POSE = slice(489, 522)
RIGHT_HAND = slice(522, 543)
PARTS: dict[str, slice] = {"face": FACE, "left_hand": LEFT_HAND, "pose": POSE, "right_hand": RIGHT_HAND}
# GISLR `type` values in layout order, with their sizes.
PART_SIZES: dict[str, int] = {"face": N_FACE, "left_hand": N_HAND, "pose": N_POSE, "right_hand": N_HAND}

# --- face mesh indexes (standard MediaPipe face-mesh numbering; "right" = the subject's right) -----------------
FACE_NOSE_TIP = 1
NOSE = [1, 168]  # nose tip, nose bridge between the eyes
EYES = [33, 133, 159, 145,  # right eye: outer corner, inner corner, upper lid, lower lid
        263, 362, 386, 374]  # left eye:  outer corner, inner corner, upper lid, lower lid
LIPS = [61, 291,  # mouth corners (right, left)
        0, 17,  # outer lip centre top / bottom
        13, 14,  # inner lip centre top / bottom
        37, 267,  # upper outer lip, right / left
        84, 314]  # lower outer lip, right / left
FACE_RIGHT_EYE_OUTER, FACE_LEFT_EYE_OUTER = 33, 263

# --- pose indexes (BlazePose) ----------------------------------------------------------------------------------
POSE_NOSE, POSE_L_SHOULDER, POSE_R_SHOULDER = 0, 11, 12
POSE_UPPER_BODY = [0, 11, 12, 13, 14, 15, 16, 23, 24]  # nose, shoulders, elbows, wrists, hips

HAND_WRIST = 0


def _face(idx: list[int]) -> list[int]:
    return [FACE.start + i for i in idx]


def _pose(idx: list[int]) -> list[int]:
    return [POSE.start + i for i in idx]


LEFT_HAND_IDX = list(range(LEFT_HAND.start, LEFT_HAND.stop))
RIGHT_HAND_IDX = list(range(RIGHT_HAND.start, RIGHT_HAND.stop))

# Presets: name → indexes into the 543-point layout. Order matters (it is the feature order).
PRESETS: dict[str, list[int]] = {
    # 21 + 21 + 10 + 2 + 8 = 62 points → 744 features
    "hands_lips_nose_eyes": LEFT_HAND_IDX + RIGHT_HAND_IDX + _face(LIPS) + _face(NOSE) + _face(EYES),
    "hands": LEFT_HAND_IDX + RIGHT_HAND_IDX,  # 42
    "hands_pose": LEFT_HAND_IDX + RIGHT_HAND_IDX + _pose(POSE_UPPER_BODY),  # 51
    "all": list(range(N_POINTS)),
}
DEFAULT_PRESET = "hands_lips_nose_eyes"
N_MOTION_GROUPS = 4

# Mirror map of the 468 face-mesh points: FACE_MIRROR[i] is the point at i's mirror position. Computed from
# MediaPipe's canonical face model (the 468 vertices in face_landmarker.task → geometry_pipeline_metadata_landmarks
# .binarypb, an exactly symmetric mesh): for each vertex the vertex nearest to (-x, y, z); every match is exact
# (distance 0), the map is an involution with 28 points on the midline. `canonical_face_from_task` re-derives it.
FACE_MIRROR: tuple[int, ...] = (
    0, 1, 2, 248, 4, 5, 6, 249, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 250, 251, 252, 253, 254, 255, 256,
    257, 258, 259, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 270, 271, 272, 273, 274, 275, 276, 277, 278,
    279, 280, 281, 282, 283, 284, 285, 286, 287, 288, 289, 290, 291, 292, 293, 294, 295, 296, 297, 298, 299, 300,
    301, 302, 303, 304, 305, 306, 307, 308, 309, 310, 311, 312, 313, 314, 315, 316, 317, 318, 319, 320, 321, 322,
    323, 94, 324, 325, 326, 327, 328, 329, 330, 331, 332, 333, 334, 335, 336, 337, 338, 339, 340, 341, 342, 343,
    344, 345, 346, 347, 348, 349, 350, 351, 352, 353, 354, 355, 356, 357, 358, 359, 360, 361, 362, 363, 364, 365,
    366, 367, 368, 369, 370, 371, 372, 373, 374, 375, 376, 377, 378, 379, 151, 152, 380, 381, 382, 383, 384, 385,
    386, 387, 388, 389, 390, 164, 391, 392, 393, 168, 394, 395, 396, 397, 398, 399, 175, 400, 401, 402, 403, 404,
    405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 195, 419, 197, 420, 199, 200, 421, 422,
    423, 424, 425, 426, 427, 428, 429, 430, 431, 432, 433, 434, 435, 436, 437, 438, 439, 440, 441, 442, 443, 444,
    445, 446, 447, 448, 449, 450, 451, 452, 453, 454, 455, 456, 457, 458, 459, 460, 461, 462, 463, 464, 465, 466,
    467, 3, 7, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44,
    45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72,
    73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 95, 96, 97, 98, 99, 100,
    101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122,
    123, 124, 125, 126, 127, 128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 140, 141, 142, 143, 144,
    145, 146, 147, 148, 149, 150, 153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163, 165, 166, 167, 169, 170,
    171, 172, 173, 174, 176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191, 192, 193,
    194, 196, 198, 201, 202, 203, 204, 205, 206, 207, 208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219,
    220, 221, 222, 223, 224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239, 240, 241,
    242, 243, 244, 245, 246, 247,
)

# BlazePose left/right pairs (0 nose and nothing else on the midline).
POSE_MIRROR: tuple[int, ...] = (0, 4, 5, 6, 1, 2, 3, 8, 7, 10, 9) + tuple(
    i + 1 if i % 2 else i - 1 for i in range(11, 33))


def holistic_mirror_index() -> np.ndarray:
    """(543,) int64 permutation for a horizontal flip: out[:, i] = mirrored(in[:, perm[i]]).

    Face and pose points take their mirror partner's place; the left and right hands swap blocks (hand point j
    stays hand point j — a mirrored left hand is a right hand)."""
    perm = np.arange(N_POINTS)
    perm[FACE] = np.asarray(FACE_MIRROR) + FACE.start
    perm[POSE] = np.asarray(POSE_MIRROR) + POSE.start
    perm[LEFT_HAND] = np.arange(RIGHT_HAND.start, RIGHT_HAND.stop)
    perm[RIGHT_HAND] = np.arange(LEFT_HAND.start, LEFT_HAND.stop)
    return perm


def preset_indices(preset: str | list[int] | tuple[int, ...]) -> list[int]:
    """Indexes into the 543-point layout for a preset name (or an explicit index list, validated)."""
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise SignlipError(f"unknown landmark preset {preset!r}; choose one of: {', '.join(PRESETS)} "
                               f"or give an explicit list of indexes into the 543-point holistic layout")
        return list(PRESETS[preset])
    idx = [int(i) for i in preset]
    if not idx or min(idx) < 0 or max(idx) >= N_POINTS:
        raise SignlipError(f"landmark preset indexes must lie in 0..{N_POINTS - 1}; got {preset!r}")
    return idx


def preset_mirror_index(preset: str | list[int] | tuple[int, ...]) -> np.ndarray:
    """(K,) permutation of a preset's points for a horizontal flip (see `holistic_mirror_index`).

    Raises SignlipError when the preset is not closed under mirroring (some point's partner is missing)."""
    idx = preset_indices(preset)
    pos = {p: k for k, p in enumerate(idx)}
    full = holistic_mirror_index()
    try:
        return np.asarray([pos[int(full[p])] for p in idx], dtype=np.int64)
    except KeyError as exc:
        raise SignlipError(f"landmark preset {preset!r} lacks the mirror partner {int(exc.args[0])} of one of its "
                           f"points, so it cannot be flipped — add the partner or set flip probability 0") from None


def feature_dim(preset: str | list[int] | tuple[int, ...] = DEFAULT_PRESET) -> int:
    """Features per frame for a preset: K points × 3 coordinates × 4 motion groups (62 → 744)."""
    return len(preset_indices(preset)) * 3 * N_MOTION_GROUPS


def anchor_index(preset: str | list[int] | tuple[int, ...] = DEFAULT_PRESET) -> np.ndarray:
    """(K,) index *within the preset* of each point's anchor for relative motion (wrist / nose tip / pose nose).

    A point whose anchor is not in the preset anchors to itself (relative motion 0)."""
    idx = preset_indices(preset)
    pos = {p: k for k, p in enumerate(idx)}
    out = []
    for k, p in enumerate(idx):
        if LEFT_HAND.start <= p < LEFT_HAND.stop:
            a = LEFT_HAND.start + HAND_WRIST
        elif RIGHT_HAND.start <= p < RIGHT_HAND.stop:
            a = RIGHT_HAND.start + HAND_WRIST
        elif FACE.start <= p < FACE.stop:
            a = FACE.start + FACE_NOSE_TIP
        else:
            a = POSE.start + POSE_NOSE
        out.append(pos.get(a, k))
    return np.asarray(out, dtype=np.int64)


def check_holistic(arr: np.ndarray, source: str = "array") -> np.ndarray:
    """Validate a `(T, 543, 3)` landmark array (float32 view); SignlipError naming `source` otherwise."""
    if arr.ndim != 3 or arr.shape[1] != N_POINTS or arr.shape[2] not in (2, 3):
        raise SignlipError(f"{source}: landmark array has shape {tuple(arr.shape)}, expected (T, {N_POINTS}, 3) "
                           f"in the face/left_hand/pose/right_hand layout — re-run `signlip prepare`")
    if arr.shape[2] == 2:  # x, y only: z unknown
        arr = np.concatenate([arr, np.full(arr.shape[:2] + (1,), np.nan, arr.dtype)], axis=2)
    return arr.astype(np.float32, copy=False)


def hand_present(arr: np.ndarray) -> np.ndarray:
    """(T,) bool: frames where at least one point of either hand is finite."""
    hands = np.concatenate([arr[:, LEFT_HAND, :2], arr[:, RIGHT_HAND, :2]], axis=1)
    return np.isfinite(hands).all(-1).any(-1)


def _nanmedian(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else float("nan")


def body_scale(arr: np.ndarray) -> tuple[float, str]:
    """A robust per-sequence size: median shoulder width, else 4 × median outer-eye-corner distance (a face is
    about a quarter of the shoulder width), else 1. Returns (scale, which)."""
    sh = np.linalg.norm(arr[:, POSE.start + POSE_L_SHOULDER, :2] - arr[:, POSE.start + POSE_R_SHOULDER, :2], axis=-1)
    s = _nanmedian(sh)
    if np.isfinite(s) and s > 1e-6:
        return s, "shoulders"
    eyes = np.linalg.norm(arr[:, FACE.start + FACE_LEFT_EYE_OUTER, :2] - arr[:, FACE.start + FACE_RIGHT_EYE_OUTER, :2],
                          axis=-1)
    s = _nanmedian(eyes)
    if np.isfinite(s) and s > 1e-6:
        return 4.0 * s, "eyes"
    return 1.0, "none"


def nose_position(arr: np.ndarray) -> tuple[np.ndarray, str]:
    """(2,) per-sequence nose x/y: mean over frames of the face-mesh nose tip, else the pose nose, else the centroid
    of all finite points. Per sequence (not per frame) so head and body movement stay in the signal."""
    for point, name in ((FACE.start + FACE_NOSE_TIP, "face"), (POSE.start + POSE_NOSE, "pose")):
        xy = arr[:, point, :2]
        ok = np.isfinite(xy).all(-1)
        if ok.any():
            return xy[ok].mean(0), name
    pts = arr[..., :2].reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(-1)]
    return (pts.mean(0) if len(pts) else np.zeros(2)), "centroid"


def uniform_indices(n: int, max_len: int) -> np.ndarray:
    """Frame indexes that uniformly resample n frames to at most max_len (identity when n <= max_len)."""
    if n <= max_len:
        return np.arange(n)
    return np.round(np.linspace(0, n - 1, max_len)).astype(np.int64)


def select_normalize(arr: np.ndarray, preset: str | list[int] = DEFAULT_PRESET, max_len: int = 384,
                     drop_handless: bool = True, long_mode: str = "resample",
                     source: str = "array") -> tuple[np.ndarray, dict[str, Any]]:
    """`(T, 543, 3)` → `(T', K, 3)` float32 normalised preset points (NaN kept) + info.

    Drops frames without any hand, subtracts the sequence's nose x/y, divides x/y/z by `body_scale` (MediaPipe z
    is already relative to each part's own origin, so it is scaled but not shifted), then resamples
    (`long_mode="resample"`, uniform) or truncates (`"truncate"`) sequences longer than `max_len`.
    T' may be 0 (no hand anywhere) — callers report such samples; `info["n_frames"]` says so."""
    arr = check_holistic(np.asarray(arr), source)
    n_in = arr.shape[0]
    if drop_handless:
        arr = arr[hand_present(arr)]
    nose, nose_from = nose_position(arr)
    scale, scale_from = body_scale(arr)
    if long_mode == "resample":
        arr = arr[uniform_indices(len(arr), max_len)]
    elif long_mode == "truncate":
        arr = arr[:max_len]
    else:
        raise SignlipError(f"long_mode must be 'resample' or 'truncate', got {long_mode!r}")
    pts = arr[:, preset_indices(preset)].copy()  # (T', K, 3)
    pts[..., :2] -= nose.astype(np.float32)
    pts /= np.float32(scale)
    info = {"n_frames_in": n_in, "n_frames": len(pts), "nose": [float(v) for v in nose], "nose_from": nose_from,
            "scale": float(scale), "scale_from": scale_from}
    return pts.astype(np.float32, copy=False), info


def motion_features(pts: np.ndarray, anchors: np.ndarray | None = None) -> np.ndarray:
    """`(T, K, 3)` normalised points → `(T, K·3·4)` float32 [position, velocity, acceleration, relative]; NaN → 0.

    `anchors` (K,) from `anchor_index(preset)`; None means the default preset's anchors."""
    pts = np.asarray(pts, dtype=np.float32)
    t, k, _ = pts.shape
    anchors = anchor_index() if anchors is None else anchors
    vel = np.zeros_like(pts)
    acc = np.zeros_like(pts)
    if t > 1:
        vel[:-1] = pts[1:] - pts[:-1]
    if t > 2:
        acc[:-2] = vel[1:-1] - vel[:-2]
    rel = vel - vel[:, anchors]
    feats = np.concatenate([g.reshape(t, k * 3) for g in (pts, vel, acc, rel)], axis=1)
    return np.nan_to_num(feats, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def motion_features_torch(pts, mask=None, anchors=None):
    """Batched, masked `motion_features`: `(B, T, K, 3)` float + mask `(B, T)` bool → `(B, T, K·3·4)`.

    Velocity/acceleration are 0 wherever a difference would reach into padding, and padded frames are all 0,
    so the result for a sequence does not depend on how much padding follows it."""
    import torch

    b, t, k, _ = pts.shape
    if mask is None:
        mask = torch.ones(b, t, dtype=torch.bool, device=pts.device)
    anchors = torch.as_tensor(anchor_index() if anchors is None else anchors, device=pts.device)
    m = mask[:, :, None, None]
    pts = torch.where(m, pts, torch.zeros((), dtype=pts.dtype, device=pts.device))
    vel = torch.zeros_like(pts)
    acc = torch.zeros_like(pts)
    if t > 1:
        both = m[:, 1:] & m[:, :-1]
        vel[:, :-1] = torch.where(both, pts[:, 1:] - pts[:, :-1], 0.0)
    if t > 2:
        both = m[:, 2:] & m[:, :-2]
        acc[:, :-2] = torch.where(both, vel[:, 1:-1] - vel[:, :-2], 0.0)
    rel = vel - vel[:, :, anchors]
    feats = torch.cat([g.reshape(b, t, k * 3) for g in (pts, vel, acc, rel)], dim=-1)
    feats = torch.nan_to_num(feats, nan=0.0, posinf=0.0, neginf=0.0)
    return torch.where(mask[..., None], feats, 0.0)


def holistic_features(arr: np.ndarray, preset: str | list[int] = DEFAULT_PRESET, max_len: int = 384,
                      drop_handless: bool = True, long_mode: str = "resample",
                      source: str = "array") -> tuple[np.ndarray, dict[str, Any]]:
    """The full per-sequence pipeline: `(T, 543, 3)` → `(T', K·12)` float32 (744 for the default preset) + info."""
    pts, info = select_normalize(arr, preset, max_len, drop_handless, long_mode, source)
    return motion_features(pts, anchor_index(preset)), info


def preprocessing_fingerprint(preset: str | list[int] = DEFAULT_PRESET, max_len: int = 384,
                              drop_handless: bool = True, long_mode: str = "resample") -> dict[str, Any]:
    """Plain data describing the pipeline, for the checkpoint's preprocessing record."""
    return {"pipeline": "holistic_motion_v1", "preset": preset if isinstance(preset, str) else list(preset),
            "max_len": max_len, "drop_handless": drop_handless, "long_mode": long_mode,
            "features": ["position", "velocity", "acceleration", "relative_motion"],
            "normalisation": "nose (sequence mean) / body scale (median shoulder width)",
            "feature_dim": feature_dim(preset)}


def canonical_face_from_task(task_path: str) -> np.ndarray:
    """(468, 3) canonical face-mesh vertices read from a face_landmarker.task bundle (no protobuf dependency).

    The bundle's geometry_pipeline_metadata_landmarks.binarypb holds a Mesh3d whose vertex_buffer (field 3, float)
    stores x, y, z, u, v per vertex."""
    import struct
    import zipfile

    with zipfile.ZipFile(task_path) as z:
        raw = z.read("geometry_pipeline_metadata_landmarks.binarypb")

    def varint(b: bytes, i: int) -> tuple[int, int]:
        r = s = 0
        while True:
            c = b[i]
            i += 1
            r |= (c & 0x7F) << s
            s += 7
            if c < 0x80:
                return r, i

    _, i = varint(raw, 0)  # field 1: the canonical mesh
    n, i = varint(raw, i)
    mesh, j, floats = raw[i:i + n], 0, []
    while j < len(mesh):
        key, j = varint(mesh, j)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, j = varint(mesh, j)
        elif wire == 5:
            if field == 3:
                floats.append(struct.unpack("<f", mesh[j:j + 4])[0])
            j += 4
        elif wire == 2:
            size, j = varint(mesh, j)
            if field == 3:  # packed encoding
                floats.extend(struct.unpack(f"<{size // 4}f", mesh[j:j + size]))
            j += size
        elif wire == 1:
            j += 8
        else:
            raise ValueError(f"unexpected protobuf wire type {wire} in {task_path}")
    return np.asarray(floats, dtype=np.float32).reshape(-1, 5)[:, :3]
