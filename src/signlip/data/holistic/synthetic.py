"""Built-in synthetic holistic sign dataset: 25 two-hand motion patterns over a plausible body/face skeleton.

Written in the user format — one float32 `(T, 543, 3)` `.npy` per sample (face/left_hand/pose/right_hand, NaN =
not detected) and a manifest `path,label,split,signer` — so `signlip train task=asl_tcn_transformer` runs the real
data path without user data.

Each class combines a handshape (finger curls), a path of the dominant hand (circle either way, lines, zigzag, taps,
wave, handshape change) at a location (chest, chin, forehead, side) and, for 10 classes, a second hand (apart,
together, alternating, parallel/mirrored circles, base + tap). Several classes differ in one component only
(circle direction, handshape, location), so the task is learnable but not trivial. Signers differ in body size and
position, speed, amplitude and handedness (every fifth signer is left-handed and mirrors the signs); hands drop out
in random frames, are absent for a few frames at the start and end, and the idle hand of one-hand signs is often
out of frame. Signers are disjoint between train/val/test. Output is a deterministic function of the settings.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from signlip.data.holistic.features import FACE, FACE_MIRROR, LEFT_HAND, N_POINTS, POSE, RIGHT_HAND
from signlip.data.manifest import write_manifest
from signlip.errors import SignlipError

SETTINGS_FILE = "synthetic_holistic.json"
VERSION = 1

# handshape → finger curl (thumb, index, middle, ring, pinky); 0 = straight, 1 = fully bent
SHAPES: dict[str, tuple[float, ...]] = {
    "open": (0.0, 0.0, 0.0, 0.0, 0.0), "fist": (0.7, 1.0, 1.0, 1.0, 1.0), "point": (0.8, 0.0, 1.0, 1.0, 1.0),
    "v": (0.8, 0.0, 0.0, 1.0, 1.0), "y": (0.0, 1.0, 1.0, 1.0, 0.0), "l": (0.0, 0.0, 1.0, 1.0, 1.0),
    "claw": (0.5, 0.55, 0.55, 0.55, 0.55),
}
# (name, handshape[, end handshape], path, location, second hand)
CLASSES: list[tuple[str, str, str, str, str, str]] = [
    ("open_circle_cw", "open", "open", "circle_cw", "chest", "none"),
    ("open_circle_ccw", "open", "open", "circle_ccw", "chest", "none"),
    ("fist_circle_cw", "fist", "fist", "circle_cw", "chest", "none"),
    ("point_right", "point", "point", "line_right", "chest", "none"),
    ("point_up_face", "point", "point", "line_up", "chin", "none"),
    ("v_down_face", "v", "v", "line_down", "chin", "none"),
    ("y_zigzag", "y", "y", "zigzag", "chest", "none"),
    ("l_tap_chin", "l", "l", "tap", "chin", "none"),
    ("fist_tap_chest", "fist", "fist", "tap", "chest", "none"),
    ("open_wave_side", "open", "open", "wave", "side", "none"),
    ("open_to_fist", "open", "fist", "hold", "chest", "none"),
    ("fist_to_open", "fist", "open", "hold", "chest", "none"),
    ("point_circle_face", "point", "point", "circle_cw", "chin", "none"),
    ("claw_left_side", "claw", "claw", "line_left", "side", "none"),
    ("v_tap_forehead", "v", "v", "tap", "forehead", "none"),
    ("two_open_apart", "open", "open", "apart", "chest", "mirror"),
    ("two_open_together", "open", "open", "together", "chest", "mirror"),
    ("two_fist_alternate", "fist", "fist", "alternate", "chest", "mirror"),
    ("two_open_parallel_circles", "open", "open", "circle_cw", "chest", "parallel"),
    ("two_point_tap_base", "point", "point", "tap_base", "chest", "base"),
    ("two_y_apart_face", "y", "y", "apart", "chin", "mirror"),
    ("two_l_together_high", "l", "l", "together", "forehead", "mirror"),
    ("two_claw_alternate", "claw", "claw", "alternate", "chest", "mirror"),
    ("two_v_mirror_circles", "v", "v", "circle_cw", "chest", "mirror"),
    ("two_fist_down", "fist", "fist", "line_down", "chest", "mirror"),
]
# locations relative to the nose, in shoulder widths (x to the signer's right = image left for the dominant hand)
LOCATIONS = {"chest": (-0.15, 0.85), "chin": (-0.05, 0.35), "forehead": (-0.05, -0.2), "side": (-0.55, 0.55)}


def _face_template() -> np.ndarray:
    """(468, 3) face points in face units (nose tip at 0, face width ≈ 1), mirror-consistent with FACE_MIRROR:
    an ellipse-ish cloud with eyes, nose, lips and contour at plausible places. Fixed (not seeded by the user)."""
    rng = np.random.default_rng(1234)
    pts = np.zeros((468, 3), np.float32)
    mirror = np.asarray(FACE_MIRROR)
    for i in range(468):
        j = mirror[i]
        if j < i:
            continue
        ang, rad = rng.uniform(0, 2 * np.pi), np.sqrt(rng.uniform(0, 1))
        x, y = 0.5 * rad * np.cos(ang), 0.65 * rad * np.sin(ang) - 0.05
        z = -0.3 * (1 - rad ** 2)
        if i == j:
            pts[i] = (0.0, y, z)
        else:  # lower index = subject's right = image left (as MediaPipe's canonical mesh)
            pts[i], pts[j] = (-abs(x), y, z), (abs(x), y, z)
    named = {1: (0, 0, -0.35), 168: (0, -0.28, -0.2), 33: (-0.32, -0.3, 0), 133: (-0.12, -0.3, 0),
             159: (-0.22, -0.34, 0), 145: (-0.22, -0.26, 0), 61: (-0.18, 0.3, -0.1), 0: (0, 0.22, -0.2),
             17: (0, 0.4, -0.15), 13: (0, 0.28, -0.18), 14: (0, 0.32, -0.18), 37: (-0.08, 0.23, -0.18),
             84: (-0.08, 0.38, -0.15), 10: (0, -0.7, 0), 152: (0, 0.68, 0)}
    for i, p in named.items():
        pts[i] = p
        if mirror[i] != i:
            pts[mirror[i]] = (-p[0], p[1], p[2])
    return pts


# BlazePose template (x, y) in shoulder widths relative to the neck (midpoint of the shoulders), y down.
_POSE_XY = {0: (0, -0.75), 1: (-0.06, -0.82), 2: (-0.09, -0.82), 3: (-0.12, -0.82), 4: (0.06, -0.82),
            5: (0.09, -0.82), 6: (0.12, -0.82), 7: (-0.2, -0.78), 8: (0.2, -0.78), 9: (-0.05, -0.62), 10: (0.05, -0.62),
            11: (0.5, 0), 12: (-0.5, 0), 23: (0.3, 1.35), 24: (-0.3, 1.35), 25: (0.32, 2.2), 26: (-0.32, 2.2),
            27: (0.33, 3.0), 28: (-0.33, 3.0), 29: (0.33, 3.1), 30: (-0.33, 3.1), 31: (0.33, 3.15), 32: (-0.33, 3.15)}


def _hand(curls: np.ndarray, roll: float, size: float, left: bool) -> np.ndarray:
    """(21, 3) hand points relative to the wrist (MediaPipe hand order) for finger curls (5,), in image units."""
    bases = np.array([[-0.35, -0.25], [-0.25, -0.95], [-0.05, -1.0], [0.15, -0.95], [0.33, -0.85]])
    spreads = np.array([-0.7, -0.12, 0.0, 0.1, 0.25])  # finger directions (radians from straight up)
    segs = np.array([[0.35, 0.3, 0.25], [0.45, 0.3, 0.25], [0.5, 0.33, 0.25], [0.45, 0.3, 0.23], [0.35, 0.25, 0.2]])
    pts = np.zeros((21, 3))
    for f in range(5):
        p = np.array([bases[f, 0], bases[f, 1], 0.0])
        pts[1 + 4 * f] = p
        bend = 0.0
        for s in range(3):
            bend += curls[f] * (1.0 if f else 0.6)  # each joint bends; the thumb bends less
            d = np.array([np.sin(spreads[f]) * np.cos(bend), -np.cos(spreads[f]) * np.cos(bend), -np.sin(bend)])
            p = p + segs[f, s] * d
            pts[2 + 4 * f + s] = p
    c, s = np.cos(roll), np.sin(roll)
    xy = pts[:, :2] @ np.array([[c, s], [-s, c]])
    pts = np.concatenate([xy, pts[:, 2:]], 1) * size
    if left:
        pts[:, 0] *= -1
    return pts


def _path(kind: str, s: np.ndarray, amp: float) -> np.ndarray:
    """(T, 2) dominant-hand offset in shoulder widths for normalised time s ∈ [0, 1] (signer's right = −x)."""
    z = np.zeros_like(s)
    two_pi = 2 * np.pi
    if kind == "circle_cw":
        return amp * 0.25 * np.stack([np.cos(two_pi * s), np.sin(two_pi * s)], 1)
    if kind == "circle_ccw":
        return amp * 0.25 * np.stack([np.cos(two_pi * s), -np.sin(two_pi * s)], 1)
    if kind == "line_right":
        return amp * np.stack([-0.5 * s + 0.25, z], 1)
    if kind == "line_left":
        return amp * np.stack([0.5 * s - 0.25, z], 1)
    if kind == "line_up":
        return amp * np.stack([z, -0.45 * s + 0.2], 1)
    if kind == "line_down":
        return amp * np.stack([z, 0.45 * s - 0.2], 1)
    if kind == "zigzag":
        return amp * np.stack([0.5 * s - 0.25,
                               0.12 * np.sign(np.sin(3 * two_pi * s)) * np.abs(np.sin(3 * two_pi * s))], 1)
    if kind in ("tap", "tap_base"):
        return amp * np.stack([z, -0.15 * np.abs(np.sin(2 * np.pi * s))], 1)  # two taps: away and back
    if kind == "wave":
        return amp * np.stack([0.05 * np.sin(3 * two_pi * s), z], 1)
    if kind == "hold":
        return np.stack([z, z], 1)
    if kind == "apart":
        return amp * np.stack([-0.4 * s + 0.05, z], 1)
    if kind == "together":
        return amp * np.stack([0.4 * s - 0.35, z], 1)
    if kind == "alternate":
        return amp * np.stack([z - 0.2, 0.2 * np.sin(2 * two_pi * s)], 1)
    raise ValueError(kind)


def _sample(cls: int, signer: dict, rng: np.random.Generator, face_tpl: np.ndarray) -> np.ndarray:
    """One (T, 543, 3) float32 sequence."""
    _name, shape0, shape1, path, loc, second = CLASSES[cls]
    sw = signer["size"] * rng.uniform(0.95, 1.05)
    n_core = round(rng.uniform(34, 46) / (signer["speed"] * rng.uniform(0.88, 1.12)))
    lead, tail = rng.integers(2, 7), rng.integers(2, 7)
    t = lead + n_core + tail
    s = np.clip((np.arange(t) - lead) / max(n_core - 1, 1), 0, 1)
    amp = signer["amp"] * rng.uniform(0.85, 1.15)
    left = signer["left_handed"]
    sgn = -1.0 if left else 1.0  # mirror x for left-handed signers (dominant hand = left hand)

    nose = np.array(signer["nose"]) + rng.normal(0, 0.01, 2)
    sway = np.stack([0.01 * np.sin(2 * np.pi * (s * 0.7 + rng.uniform())), 0.005 * np.sin(2 * np.pi * s)], 1)
    nose_t = nose + sway * sw / 0.25  # (T, 2)
    neck = nose_t + np.array([0, 0.75 * sw])

    out = np.full((t, N_POINTS, 3), np.nan, np.float32)
    face_w = 0.55 * sw
    out[:, FACE, :2] = nose_t[:, None] + face_tpl[None, :, :2] * face_w
    out[:, FACE, 2] = face_tpl[None, :, 2] * face_w

    # dominant hand path (signer's right is image left: locations are given with x < 0 on the dominant side)
    loc_xy = np.array(LOCATIONS[loc]) + np.array(signer["loc_shift"]) + rng.normal(0, 0.06, 2)
    off = _path(path, s, amp)
    dom = nose_t + sw * np.stack([sgn * (loc_xy[0] + off[:, 0]), loc_xy[1] + off[:, 1]], 1)
    if second == "none":
        other = None
    elif second == "mirror":  # mirror image of the dominant hand's path (circles turn the other way)
        other = nose_t + sw * np.stack([-sgn * (loc_xy[0] + off[:, 0]), loc_xy[1] + off[:, 1]], 1)
        if path == "alternate":  # … except alternating, where the hands move in antiphase
            other[:, 1] = nose_t[:, 1] + sw * (loc_xy[1] - off[:, 1])
    elif second == "parallel":
        other = dom + np.array([-sgn * 0.45 * sw, 0])
    else:  # base: the other hand holds still under the tapping hand
        other = np.repeat((nose_t[:1] + sw * np.array([sgn * loc_xy[0], loc_xy[1] + 0.22])), t, 0)
    # hands travel in from below during the lead-in and out in the tail (absent there)
    curls0, curls1 = np.array(SHAPES[shape0]), np.array(SHAPES[shape1])
    hand_size = 0.25 * sw * rng.uniform(0.92, 1.08)
    roll_base = rng.normal(0, 0.12)
    dom_part, oth_part = (LEFT_HAND, RIGHT_HAND) if left else (RIGHT_HAND, LEFT_HAND)
    for k in range(t):
        if k < lead or k >= lead + n_core:
            continue
        w = np.clip((s[k] - 0.3) / 0.4, 0, 1) if shape0 != shape1 else 0.0
        curls = curls0 * (1 - w) + curls1 * w + rng.normal(0, 0.03, 5)
        roll = roll_base + (0.6 * np.sin(2 * np.pi * 3 * s[k]) if path == "wave" else 0.0)
        h = _hand(np.clip(curls, 0, 1.2), sgn * roll, hand_size, left)
        out[k, dom_part, :2] = dom[k] + h[:, :2]
        out[k, dom_part, 2] = h[:, 2]
        if other is not None:
            ho = _hand(np.clip(curls if second != "base" else SHAPES["open"], 0, 1.2), -sgn * roll, hand_size, not left)
            out[k, oth_part, :2] = other[k] + ho[:, :2]
            out[k, oth_part, 2] = ho[:, 2]
    if other is None and rng.uniform() < 0.3:  # idle hand resting low in frame, barely moving
        rest = neck[:, None] + np.array([-sgn * 0.35 * sw, 1.2 * sw]) + rng.normal(0, 0.003, (t, 1, 2))
        h = _hand(np.array(SHAPES["open"]), np.pi, hand_size, not left)
        out[lead:lead + n_core, oth_part, :2] = (rest + h[None, :, :2])[lead:lead + n_core]
        out[lead:lead + n_core, oth_part, 2] = h[:, 2]

    # pose: torso template, arms follow the hands
    pose = np.zeros((t, 33, 3), np.float32)
    for i, (px, py) in _POSE_XY.items():
        pose[:, i, :2] = neck + sw * np.array([px, py])
    pose[:, 0, :2] = nose_t
    for wrist, elbow, shoulder, part in ((15, 13, 11, LEFT_HAND), (16, 14, 12, RIGHT_HAND)):
        hand_wrist = out[:, part.start, :2]
        rest = pose[:, shoulder, :2] + np.array([0, 1.6 * sw])
        wpos = np.where(np.isfinite(hand_wrist), hand_wrist, rest)
        pose[:, wrist, :2] = wpos
        mid = (pose[:, shoulder, :2] + wpos) / 2
        pose[:, elbow, :2] = mid + np.array([(1 if shoulder == 11 else -1) * 0.15 * sw, 0.2 * sw])
        for j in (wrist + 2, wrist + 4, wrist + 6):  # pinky / index / thumb knuckles near the wrist
            pose[:, j, :2] = wpos + np.array([0, -0.08 * sw])
    pose[:, :, 2] = rng.normal(0, 0.02, 33)
    out[:, POSE] = pose

    tilt = signer["tilt"] + rng.normal(0, 0.04)  # camera roll about the nose
    c, sn = np.cos(tilt), np.sin(tilt)
    xy = out[..., :2] - nose
    out[..., 0], out[..., 1] = nose[0] + c * xy[..., 0] - sn * xy[..., 1], nose[1] + sn * xy[..., 0] + c * xy[..., 1]
    out += rng.normal(0, 0.004, out.shape).astype(np.float32)  # detector jitter
    for part in (LEFT_HAND, RIGHT_HAND):  # random detection dropouts
        drop = rng.uniform(size=t) < rng.uniform(0.02, 0.15)
        out[drop, part] = np.nan
    return out


def _signers(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng([seed, 7])
    return [{"size": float(rng.uniform(0.18, 0.30)),
             "nose": [float(rng.uniform(0.42, 0.58)), float(rng.uniform(0.2, 0.32))],
             "speed": float(rng.uniform(0.75, 1.3)), "amp": float(rng.uniform(0.75, 1.25)),
             "loc_shift": [float(v) for v in rng.normal(0, 0.08, 2)], "tilt": float(rng.normal(0, 0.06)),
             "left_handed": i % 5 == 4}
            for i in range(n)]


def _split_signers(n: int, seed: int, val: int, test: int) -> dict[int, str]:
    order = np.random.default_rng([seed, 11]).permutation(n).tolist()
    out = {}
    for k, i in enumerate(order):
        out[i] = "test" if k < test else "val" if k < test + val else "train"
    return out


def _made_with(root: Path, settings_path: Path, settings: dict) -> bool:
    """True when `root` already holds a complete dataset made with `settings` (its settings file, written last,
    says so); otherwise clears what an earlier setting left there and creates the folder."""
    if (root / "manifest.csv").is_file() and settings_path.is_file():
        try:
            if json.loads(settings_path.read_text()) == settings:
                return True
        except json.JSONDecodeError:
            pass
    if settings_path.is_file() and (root / "arrays").is_dir():
        shutil.rmtree(root / "arrays")  # ours (the settings file says so) and stale
    settings_path.unlink(missing_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    return False


def make_synthetic_holistic(root: str | Path = "data/synthetic/holistic", n_people: Sequence[int] = (6, 2, 2),
                            per_class_per_person: int = 3, n_classes: int = 25, seed: int = 0) -> Path:
    """Write the synthetic dataset under `root` (arrays/ + manifest.csv + settings json) and return the manifest.

    `n_people`: signers in (train, val, test), disjoint; `per_class_per_person`: samples per class per signer.
    Idempotent: when `root` already holds a dataset made with the same settings, nothing is written. Sizes: about
    40 frames × 6.5 kB per sample (10 signers × 3 × 25 classes ≈ 190 MB)."""
    if not 1 <= n_classes <= len(CLASSES):
        raise SignlipError(f"n_classes must be 1..{len(CLASSES)}, got {n_classes}")
    if len(n_people) != 3 or min(n_people) < 1:
        raise SignlipError(f"n_people must be [train, val, test] signers, at least 1 each, got {list(n_people)}")
    # Signers are drawn for the total and then assigned to splits by a seeded permutation (the first version's
    # n_signers + val_signers + test_signers, as the settings file still spells them: the same settings, the same
    # files, so datasets written before the rename are recognised).
    n_signers, val_signers, test_signers = int(sum(n_people)), int(n_people[1]), int(n_people[2])
    root = Path(root).expanduser()
    settings = {"version": VERSION, "n_signers": n_signers, "per_class_per_signer": per_class_per_person,
                "n_classes": n_classes, "seed": seed, "val_signers": val_signers, "test_signers": test_signers}
    manifest, settings_path = root / "manifest.csv", root / SETTINGS_FILE
    if _made_with(root, settings_path, settings):
        return manifest
    face_tpl = _face_template()
    signers = _signers(n_signers, seed)
    split_of = _split_signers(n_signers, seed, val_signers, test_signers)
    rows = []
    for si, signer in enumerate(signers):
        d = root / "arrays" / f"s{si:02d}"
        d.mkdir(parents=True, exist_ok=True)
        for c in range(n_classes):
            for r in range(per_class_per_person):
                rng = np.random.default_rng([seed, si, c, r])
                arr = _sample(c, signer, rng, face_tpl)
                rel = f"arrays/s{si:02d}/{CLASSES[c][0]}_{r}.npy"
                np.save(root / rel, arr)
                rows.append((rel, CLASSES[c][0], split_of[si], f"s{si:02d}"))
    write_manifest(manifest, rows, "signer")
    settings_path.write_text(json.dumps(settings, indent=2))  # written last: marks a complete dataset
    return manifest


# --- continuous signing: sentences of 2–6 signs --------------------------------------------------------------------
SENTENCES_FILE = "synthetic_sentences.json"


def _sentence(signs: list[int], signer: dict, rng: np.random.Generator, face_tpl: np.ndarray) -> np.ndarray:
    """One signed sentence (T, 543, 3): each sign's core (the frames its hands are in view), joined by transitions in
    which every point moves linearly from where one sign ends to where the next begins (3–8 frames, as a signer's
    hands travel between signs), with a short hands-down lead-in and tail."""
    cores = []
    for cls in signs:
        arr = _sample(cls, signer, rng, face_tpl)
        present = np.flatnonzero(np.isfinite(arr[:, LEFT_HAND, 0]).any(1) | np.isfinite(arr[:, RIGHT_HAND, 0]).any(1))
        cores.append(arr[present[0]: present[-1] + 1] if len(present) else arr)
    pieces = [cores[0]]
    for nxt in cores[1:]:
        a, b = pieces[-1][-1], nxt[0]
        n = int(rng.integers(3, 9))
        w = (np.arange(1, n + 1) / (n + 1))[:, None, None].astype(np.float32)
        moving = (1 - w) * a[None] + w * b[None]  # NaN where either end is missing: not detected in transit
        pieces += [moving + rng.normal(0, 0.004, moving.shape).astype(np.float32), nxt]
    body = np.concatenate(pieces)
    lead = np.repeat(body[:1], int(rng.integers(2, 6)), 0)
    tail = np.repeat(body[-1:], int(rng.integers(2, 6)), 0)
    lead[:, LEFT_HAND] = lead[:, RIGHT_HAND] = tail[:, LEFT_HAND] = tail[:, RIGHT_HAND] = np.nan  # hands down
    return np.concatenate([lead, body, tail]).astype(np.float32)


def make_synthetic_sentences(root: str | Path = "data/synthetic/sentences", n_people: Sequence[int] = (8, 2, 2),
                             sentences_per_person: int = 30, n_signs: int = 12,
                             signs_per_sentence: Sequence[int] = (2, 6), seed: int = 0) -> Path:
    """Continuous signing: write sentences of `signs_per_sentence` [min, max] signs drawn from the first `n_signs`
    isolated synthetic signs under `root` (arrays/ + manifest.csv `path,glosses,split,signer` + a settings json);
    return the manifest. Signers (body size, speed, handedness, …) are disjoint across (train, val, test)
    = `n_people`; every sentence is a deterministic function of the settings. Idempotent like
    `make_synthetic_holistic`. About 160 frames × 6.5 kB per sentence (12 signers × 30 ≈ 370 MB)."""
    low, high = (int(v) for v in signs_per_sentence)
    if not 1 <= n_signs <= len(CLASSES):
        raise SignlipError(f"n_signs must be 1..{len(CLASSES)}, got {n_signs}")
    if not 1 <= low <= high:
        raise SignlipError(f"signs_per_sentence must be [min, max] with 1 ≤ min ≤ max, got {list(signs_per_sentence)}")
    if len(n_people) != 3 or min(n_people) < 1:
        raise SignlipError(f"n_people must be [train, val, test] signers, at least 1 each, got {list(n_people)}")
    root = Path(root).expanduser()
    settings = {"version": VERSION, "n_people": [int(v) for v in n_people], "sentences_per_person":
                int(sentences_per_person), "n_signs": int(n_signs), "signs_per_sentence": [low, high], "seed": seed}
    manifest, settings_path = root / "manifest.csv", root / SENTENCES_FILE
    if _made_with(root, settings_path, settings):
        return manifest
    n_total = int(sum(n_people))
    face_tpl = _face_template()
    signers = _signers(n_total, seed)
    split_of = _split_signers(n_total, seed, int(n_people[1]), int(n_people[2]))
    rows = []
    for si, signer in enumerate(signers):
        (root / "arrays" / f"s{si:02d}").mkdir(parents=True, exist_ok=True)
        for r in range(sentences_per_person):
            rng = np.random.default_rng([seed, si, r, 101])
            signs = rng.integers(0, n_signs, int(rng.integers(low, high + 1))).tolist()
            rel = f"arrays/s{si:02d}/sentence_{r:03d}.npy"
            np.save(root / rel, _sentence(signs, signer, rng, face_tpl))
            rows.append((rel, " ".join(CLASSES[c][0] for c in signs), split_of[si], f"s{si:02d}"))
    write_manifest(manifest, rows, "signer", target="glosses")
    settings_path.write_text(json.dumps(settings, indent=2))  # written last: marks a complete dataset
    return manifest
