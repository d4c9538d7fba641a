"""Built-in synthetic hand-landmark dataset (26 "letters"), written in the user format (npy + manifest).

Every sample is a `(T, 21, 3)` float32 sequence in MediaPipe's hand layout (0 wrist; thumb 1–4, index 5–8,
middle 9–12, ring 13–16, pinky 17–20), x/y in image units, NaN for dropped frames. Classes differ by finger
configuration and palm orientation; six "moving" letters share the hand shape of a static partner and differ
only in their motion (as ASL J differs from I), so a classifier that sees one frame cannot separate them.
Signers vary in hand size, orientation, position and speed, and are disjoint between splits.
"""

from __future__ import annotations

import json
import string
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from signlip.data.manifest import write_manifest

LETTERS = list(string.ascii_uppercase)
# Moving letter → the static letter whose hand shape it shares, and its motion.
MOTION_PAIRS = {"J": ("I", "hook"), "Z": ("D", "zigzag"), "H": ("U", "circle"), "P": ("K", "shake"),
                "Q": ("G", "twist"), "X": ("R", "down")}
_FINGER_BASES = np.array([[-0.30, -0.10], [-0.12, -0.95], [0.05, -1.0], [0.20, -0.93], [0.34, -0.80]])  # thumb..pinky
_FINGER_SEGMENTS = np.array([[0.35, 0.30, 0.25], [0.45, 0.27, 0.22], [0.50, 0.30, 0.23], [0.46, 0.28, 0.22],
                             [0.36, 0.22, 0.19]])
_FINGER_SPREAD = np.radians([-55.0, -10.0, 0.0, 9.0, 18.0])


def _static_shapes(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per static letter: curl of the 5 fingers (0 straight .. 1 fist), spread scale, palm roll/pitch (radians)."""
    static = [c for c in LETTERS if c not in MOTION_PAIRS]
    shapes: dict[str, np.ndarray] = {}
    chosen: list[np.ndarray] = []
    levels = np.array([0.0, 0.5, 1.0])
    while len(shapes) < len(static):
        curl = levels[rng.integers(0, 3, size=5)]
        spread = rng.choice([0.4, 1.0, 1.8])
        roll = rng.choice(np.radians([-45.0, 0.0, 45.0, 90.0]))
        candidate = np.concatenate([curl, [spread / 1.8, roll / np.radians(90)]])
        # Keep shapes apart so that static letters are learnable under signer variation.
        if all(np.abs(candidate - other).sum() >= 1.4 for other in chosen):
            chosen.append(candidate)
            shapes[static[len(shapes)]] = np.concatenate([curl, [spread, roll]])
    return shapes


def _hand_points(curl: np.ndarray, spread: float) -> np.ndarray:
    """Canonical hand (21, 3) in hand units, wrist at the origin, fingers pointing to −y."""
    pts = np.zeros((21, 3))
    for f in range(5):
        base = np.array([_FINGER_BASES[f, 0], _FINGER_BASES[f, 1], 0.0])
        pts[1 + 4 * f] = base if f else base * 0.6
        angle_xy = _FINGER_SPREAD[f] * spread
        flex = 0.0
        pos = pts[1 + 4 * f].copy()
        for s in range(3):
            flex += curl[f] * np.radians([70.0, 95.0, 70.0][s])
            direction = np.array([np.sin(angle_xy) * np.cos(flex), -np.cos(angle_xy) * np.cos(flex), -np.sin(flex)])
            pos = pos + _FINGER_SEGMENTS[f, s] * direction
            pts[2 + 4 * f + s] = pos
    return pts


def _rotation(roll: float, pitch: float, yaw: float) -> np.ndarray:
    cr, sr, cp, sp, cy, sy = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    return rz @ rx @ ry


def _motion(kind: str, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offset path (T, 2) in hand units and extra roll (T,) over normalised time u ∈ [0, 1]."""
    zero = np.zeros_like(u)
    if kind == "hook":  # down, then curl to the side (J)
        return np.stack([-0.8 * np.clip(u - 0.5, 0, None) ** 0.7, 1.2 * np.minimum(u, 0.6)], 1), zero
    if kind == "zigzag":  # Z: right, diagonal down-left, right
        x = np.interp(u, [0, 0.33, 0.66, 1], [0, 1.0, 0.0, 1.0])
        y = np.interp(u, [0, 0.33, 0.66, 1], [0, 0.0, 0.9, 0.9])
        return np.stack([x, y], 1), zero
    if kind == "circle":
        return np.stack([0.5 * np.sin(2 * np.pi * u), 0.5 - 0.5 * np.cos(2 * np.pi * u)], 1), zero
    if kind == "shake":
        return np.stack([0.45 * np.sin(4 * np.pi * u), zero], 1), zero
    if kind == "twist":
        return np.zeros((len(u), 2)), np.radians(80.0) * np.sin(np.pi * u)
    if kind == "down":
        return np.stack([zero, 1.1 * u], 1), zero
    return np.zeros((len(u), 2)), zero


def _sample(shape: np.ndarray, motion: str, signer: dict, rng: np.random.Generator) -> np.ndarray:
    n_frames = int(rng.integers(24, 41))
    duration = signer["speed"] * rng.uniform(0.85, 1.15)
    u = np.clip(np.linspace(0, 1, n_frames) * duration, 0, 1)  # slower signers do not finish in time
    curl = np.clip(shape[:5] + rng.normal(0, 0.08, 5), 0, 1)
    hand = _hand_points(curl, shape[5] * rng.uniform(0.85, 1.15))
    offset, roll_path = _motion(motion, u)
    # A small idle drift so that "static" does not mean "perfectly still".
    drift = np.cumsum(rng.normal(0, 0.02, (n_frames, 2)), axis=0)
    seq = np.empty((n_frames, 21, 3))
    for t in range(n_frames):
        rot = _rotation(shape[6] + signer["roll"] + roll_path[t], signer["pitch"], signer["yaw"])
        pts = hand @ rot.T * signer["size"]
        pts[:, :2] += (offset[t] + drift[t]) * signer["size"] + signer["pos"]
        seq[t] = pts
    seq += rng.normal(0, 0.004, seq.shape)
    dropped = rng.random(n_frames) < 0.05
    seq[dropped] = np.nan
    return seq.astype(np.float32)


def make_synthetic_hands(root: str | Path = "data/synthetic/hands", n_people: Sequence[int] = (12, 3, 3),
                         per_class_per_person: int = 6, seed: int = 0) -> Path:
    """Write the dataset under `root` (npy files + `manifest.csv`) unless it is already there; return the manifest.

    `n_people` = signers in (train, val, test); `per_class_per_person` = samples per class per signer.
    """
    root = Path(root)
    manifest = root / "manifest.csv"
    # The settings file keeps the spelling of the first version (n_signers, per_class): the same settings make the
    # same files, so datasets written before the rename are still recognised and not written again.
    settings = {"version": 1, "n_signers": [int(n) for n in n_people], "per_class": per_class_per_person, "seed": seed}
    settings_file = root / "settings.json"
    if manifest.exists() and settings_file.exists() and json.loads(settings_file.read_text()) == settings:
        return manifest
    rng = np.random.default_rng(seed)
    shapes = _static_shapes(rng)
    for moving, (static, _) in MOTION_PAIRS.items():
        shapes[moving] = shapes[static]
    rows = []
    signer_id = 0
    for split, count in zip(("train", "val", "test"), n_people):
        for _ in range(count):
            signer = {"size": rng.uniform(0.12, 0.22), "roll": rng.normal(0, np.radians(12)),
                      "pitch": rng.normal(0, np.radians(15)), "yaw": rng.normal(0, np.radians(15)),
                      "pos": rng.uniform(0.3, 0.7, 2), "speed": rng.uniform(0.9, 1.25)}
            name = f"s{signer_id:02d}"
            signer_id += 1
            for letter in LETTERS:
                motion = MOTION_PAIRS[letter][1] if letter in MOTION_PAIRS else "none"
                for k in range(per_class_per_person):
                    rel = Path(split) / name / f"{letter}_{k}.npy"
                    (root / rel).parent.mkdir(parents=True, exist_ok=True)
                    np.save(root / rel, _sample(shapes[letter], motion, signer, rng))
                    rows.append((rel.as_posix(), letter, split, name))
    write_manifest(manifest, rows, "signer")
    settings_file.write_text(json.dumps(settings))
    return manifest
