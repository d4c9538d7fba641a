"""Built-in synthetic lip-reading videos: real video files (OpenCV `VideoWriter`) + a raw manifest.

Each clip is a drawn mouth — outer lip contour, inner contour with a dark cavity and upper teeth — on a skin-toned
background, already framed as a mouth crop (prepare it with `roi=none`). The mouth moves through a per-word
sequence of viseme-like shapes:

    open (A)    wide opening, a little teeth      round (O)  narrow, medium opening
    spread (E)  wide and flat, teeth showing       closed (M) lips pressed together

Every word uses the same four shapes once each, between a neutral rest at the start and end; words differ only in
the ORDER of the shapes (and hence when each one occurs). A single frame, or the average frame, therefore says
nothing about the word — the classifier must read the sequence.

Speakers differ in mouth size, position in the frame, skin and lip tone, speaking speed, head motion, lighting and
camera noise; every clip adds jitter in onset, per-shape duration, shape amplitude, motion phase and brightness.
Speakers are disjoint across train/val/test.

    make_synthetic_lip("data/synthetic/lip")   # → data/synthetic/lip/manifest.csv (path,label,split,speaker)

Generation is deterministic for given arguments and idempotent: a `settings.json` beside the manifest records them,
and a second call with the same arguments returns at once.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from signlip.data.manifest import write_manifest
from signlip.errors import SignlipError

DEFAULT_CLASSES = ("doctor", "i_need_to_move", "my_mouth_is_dry", "pillow")
# Viseme shapes: (opening as a fraction of the mouth half-width, width factor, teeth visibility 0..1).
VISEMES = {
    "rest": (0.10, 1.00, 0.0),
    "A": (0.85, 0.95, 0.35),
    "O": (0.55, 0.68, 0.0),
    "E": (0.28, 1.18, 1.0),
    "M": (0.00, 0.92, 0.0),
}
SHAPES = ("A", "O", "E", "M")
# The four default words: a Latin square, so every shape sits at every position in exactly one word.
_DEFAULT_ORDERS = (("A", "O", "E", "M"), ("O", "M", "A", "E"), ("E", "A", "M", "O"), ("M", "E", "O", "A"))
SETTINGS = "settings.json"
MANIFEST = "manifest.csv"
_VERSION = 1  # bump when the drawing changes, so old caches are not reused


def word_orders(n_classes: int, seed: int = 0) -> list[tuple[str, ...]]:
    """Shape order of each word: the default Latin square first, then other permutations of the four shapes."""
    if not 2 <= n_classes <= 24:
        raise SignlipError(f"synthetic lip data supports 2–24 classes (orders of 4 mouth shapes), got {n_classes}")
    rest = [p for p in itertools.permutations(SHAPES) if p not in _DEFAULT_ORDERS]
    np.random.default_rng(seed).shuffle(rest)
    return (list(_DEFAULT_ORDERS) + rest)[:n_classes]


def class_names(n_classes: int) -> list[str]:
    if n_classes <= len(DEFAULT_CLASSES):
        return list(DEFAULT_CLASSES[:n_classes])
    return list(DEFAULT_CLASSES) + [f"word_{i:02d}" for i in range(len(DEFAULT_CLASSES), n_classes)]


def _speaker(rng: np.random.Generator, frame_size: tuple[int, int]) -> dict:
    h, w = frame_size
    skin = rng.uniform([120, 80, 60], [235, 190, 160])  # RGB
    lip = skin * rng.uniform([0.55, 0.30, 0.30], [0.85, 0.60, 0.60])  # redder and darker than the skin
    return {
        "half_width": rng.uniform(0.24, 0.34) * w,  # mouth half-width in pixels
        "centre": (w / 2 + rng.uniform(-0.08, 0.08) * w, h / 2 + rng.uniform(-0.08, 0.08) * h),
        "lip_thickness": rng.uniform(0.16, 0.26),  # × half-width
        "skin": skin, "lip": lip,
        "speed": rng.uniform(0.8, 1.25),  # > 1 speaks faster
        "motion": rng.uniform(0.5, 3.0),  # head motion amplitude, pixels
        "light": rng.uniform(0.75, 1.15),
        "gradient": rng.uniform(-0.25, 0.25, size=2),  # lighting slope across the frame (x, y)
        "noise": rng.uniform(2.0, 8.0),
    }


def _trajectory(order: tuple[str, ...], n_frames: int, speed: float, rng: np.random.Generator) -> np.ndarray:
    """(T, 3) opening / width / teeth per frame: rest → shapes in order → rest, smooth (cosine) transitions."""
    keys = ["rest", *order, "rest"]
    dur = rng.uniform(0.75, 1.3, size=len(order)) / speed  # per-shape hold, in units of the mean shape duration
    total = n_frames * rng.uniform(0.62, 0.8)  # frames the word takes; the rest is silence around it
    hold = dur / dur.sum() * total
    onset = rng.uniform(0.1, 0.9) * (n_frames - total)
    # Key times: the centre of each shape's hold; rests at the clip's ends.
    centres = onset + np.cumsum(hold) - hold / 2
    times = np.concatenate([[min(0.0, onset - 3)], centres, [max(n_frames - 1.0, onset + total + 3)]])
    amp = rng.uniform(0.85, 1.1, size=(len(keys), 1))  # each utterance articulates a little differently
    values = np.array([VISEMES[k] for k in keys], dtype=np.float64)
    values[1:-1, :1] *= amp[1:-1]
    t = np.arange(n_frames, dtype=np.float64)
    seg = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    frac = (t - times[seg]) / (times[seg + 1] - times[seg])
    ease = 0.5 - 0.5 * np.cos(np.pi * np.clip(frac, 0, 1))
    return values[seg] * (1 - ease[:, None]) + values[seg + 1] * ease[:, None]


def _soft(d: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage from a signed distance in pixels (positive inside)."""
    return np.clip(d + 0.5, 0.0, 1.0)


def render_clip(order: tuple[str, ...], speaker: dict, rng: np.random.Generator, n_frames: int,
                frame_size: tuple[int, int]) -> np.ndarray:
    """Draw one utterance: RGB uint8 (T, H, W, 3). Vectorised over frames (no per-frame drawing calls)."""
    h, w = frame_size
    traj = _trajectory(order, n_frames, speaker["speed"], rng)  # (T, 3)
    opening, width, teeth = traj[:, 0, None, None], traj[:, 1, None, None], traj[:, 2, None, None]  # (T, 1, 1)
    t = np.arange(n_frames)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, size=2)
    freq = rng.uniform(0.02, 0.06, size=2)  # cycles per frame
    cx = speaker["centre"][0] + speaker["motion"] * np.sin(2 * np.pi * freq[0] * t + phase[0])
    cy = speaker["centre"][1] + 0.6 * speaker["motion"] * np.sin(2 * np.pi * freq[1] * t + phase[1])
    # float32 throughout: ~2× faster than float64 and plenty for 8-bit pixels.
    opening, width, teeth, cx, cy = (v.astype(np.float32) for v in (opening, width, teeth, cx, cy))
    a = speaker["half_width"] * width  # (T, 1, 1) mouth half-width
    # Contours depend on x only: compute them per column (T, 1, W); only the fills broadcast to (T, H, W).
    yy, xx = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]  # (H, 1), (1, W)
    u = (xx - cx) / a  # (T, 1, W) −1..1 across the mouth
    inside = np.clip(1 - u**2, 0, None)
    prof = np.sqrt(inside)
    half_open = opening * speaker["half_width"] * 0.5 * prof  # inner contour half-height
    thick = speaker["lip_thickness"] * speaker["half_width"]
    # Upper lip with a cupid's bow (a dip at the centre); lower lip fuller.
    bow = 1 - 0.35 * np.exp(-(u / 0.18) ** 2)
    upper_outer = cy - half_open - thick * prof * bow * (0.6 + 0.4 * prof)
    lower_outer = cy + half_open + 1.25 * thick * prof
    edge = a * (1 - np.abs(u))  # distance to the mouth corners, in pixels
    lips = np.minimum(_soft(np.minimum(yy - upper_outer, lower_outer - yy)), _soft(edge))
    cavity = np.minimum(_soft(np.minimum(yy - (cy - half_open), (cy + half_open) - yy)), _soft(edge - 0.12 * a))
    cavity *= np.clip(opening * 8, 0, 1)  # no cavity when the lips are closed
    teeth_line = cy - half_open + teeth * 0.9 * half_open * (np.abs(u) < 0.75)
    teeth_mask = cavity * _soft(teeth_line - yy)
    # Alpha-composite skin ← lips ← cavity ← teeth as one weighted sum of four colours: (T, H, W, 4) @ (4, 3).
    weights = np.stack([(1 - lips) * (1 - cavity) * (1 - teeth_mask), lips * (1 - cavity) * (1 - teeth_mask),
                        cavity * (1 - teeth_mask), teeth_mask], axis=-1)
    colours = np.stack([speaker["skin"], speaker["lip"], [35.0, 20.0, 22.0], [225.0, 220.0, 205.0]]).astype(np.float32)
    # Lighting: a global level, a slope across the frame, a soft shadow under the lower lip; then sensor noise
    # (one value per pixel for all three channels, as after demosaicing).
    light = np.float32(speaker["light"] * rng.uniform(0.92, 1.08))
    grad = np.float32(1) + speaker["gradient"][0].astype(np.float32) * (xx / w - 0.5) \
        + speaker["gradient"][1].astype(np.float32) * (yy / h - 0.5)  # (H, W)
    below = yy - lower_outer  # (T, H, W)
    shade = light * grad * (1 - 0.12 * _soft(below - 2) * np.exp(-(below / 12) ** 2))
    noise = np.float32(speaker["noise"]) * rng.standard_normal(size=shade.shape, dtype=np.float32)
    img = (weights @ colours) * shade[..., None] + noise[..., None]
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _settings_hash(settings: dict) -> str:
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]


def _write_speaker(job: tuple) -> list[tuple[str, str, str, str]]:
    """Draw and encode every clip of one speaker; return its manifest rows. Top level: runs in worker processes."""
    from signlip.data.clips.video import write_video

    root, folder, split, speaker_id, names, orders, settings = job
    frame_size, n_frames, seed = tuple(settings["frame_size"]), settings["n_frames"], settings["seed"]
    spk = f"s{speaker_id:03d}"
    speaker = _speaker(np.random.default_rng([seed, speaker_id]), frame_size)
    rows = []
    for c, (name, order) in enumerate(zip(names, orders)):
        for rep in range(settings["clips_per_class"]):
            rng = np.random.default_rng([seed, speaker_id, c, rep, 1])
            rel = Path(folder) / split / spk / f"{name}_{rep:02d}{settings['ext']}"
            path = Path(root) / rel
            if not path.is_file():  # resumable if interrupted
                tmp = path.with_name(f".tmp-{path.name}")
                write_video(tmp, render_clip(order, speaker, rng, n_frames, frame_size), fps=settings["fps"])
                tmp.replace(path)
            rows.append((rel.as_posix(), name, split, spk))
    return rows


def make_synthetic_lip(root: str | Path = "data/synthetic/lip", n_people: Sequence[int] = (16, 4, 4),
                       per_class_per_person: int = 6, n_classes: int = 4, seed: int = 0,
                       frame_size: Sequence[int] = (80, 120), fps: float = 25.0, n_frames: int = 40,
                       ext: str = ".mp4", workers: int = 2) -> Path:
    """Write the synthetic lip videos and their raw manifest (`path,label,split,speaker`); return the manifest path.

    n_people: speakers in (train, val, test), disjoint. Each speaker says every word `per_class_per_person` times.
    frame_size: (H, W) of the videos; n_frames at `fps` (40 frames at 25 fps = 1.6 s, as the reference's clips).
    The default is 24 speakers × 4 words × 6 = 576 clips (384 train, like the reference's ~390 training videos).
    workers: processes drawing and encoding speakers in parallel (the output does not depend on it).
    """
    root = Path(root)
    # The settings keep the first version's spelling (n_speakers, clips_per_class): they also name the video folder
    # (a hash), so the same settings keep making the same files at the same paths as before the rename.
    settings = {"version": _VERSION, "n_speakers": [int(n) for n in n_people],
                "clips_per_class": int(per_class_per_person), "n_classes": int(n_classes), "seed": int(seed),
                "frame_size": [int(v) for v in frame_size], "fps": float(fps), "n_frames": int(n_frames), "ext": ext}
    manifest = root / MANIFEST
    settings_path = root / SETTINGS
    if manifest.is_file() and settings_path.is_file() and json.loads(settings_path.read_text()) == settings:
        return manifest
    if len(settings["n_speakers"]) != 3 or min(settings["n_speakers"]) < 1 or per_class_per_person < 1 \
            or n_frames < 8:
        raise SignlipError("synthetic lip data needs n_people=[train, val, test] ≥ 1 each, per_class_per_person ≥ 1 "
                           "and n_frames ≥ 8")
    names, orders = class_names(n_classes), word_orders(n_classes, seed)
    # Video files live in a folder named by the settings hash: new settings → new paths → no stale cache reuse.
    videos = root / f"videos-{_settings_hash(settings)}"
    for old in root.glob("videos-*"):
        if old != videos:
            shutil.rmtree(old, ignore_errors=True)
    jobs = []
    speaker_id = 0
    for split, count in zip(("train", "val", "test"), settings["n_speakers"]):
        for _ in range(count):
            speaker_id += 1
            jobs.append((root, videos.name, split, speaker_id, names, orders, settings))
    if workers > 1 and len(jobs) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            rows = [row for chunk in pool.map(_write_speaker, jobs) for row in chunk]
    else:
        rows = [row for job in jobs for row in _write_speaker(job)]
    write_manifest(manifest, rows, "speaker")
    settings_path.write_text(json.dumps(settings, indent=2))
    return manifest


def sentence_keys(orders: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    """The viseme keys of a spoken phrase: each word's shapes in order, a short rest between words."""
    keys: list[str] = []
    for k, order in enumerate(orders):
        keys += (["rest"] if k else []) + list(order)
    return tuple(keys)


def make_synthetic_lip_sentences(root: str | Path = "data/synthetic/lip_sentences",
                                 n_people: Sequence[int] = (8, 2, 2), sentences_per_person: int = 24,
                                 n_words: int = 4, words_per_sentence: Sequence[int] = (2, 4),
                                 frames_per_word: int = 20, frame_size: Sequence[int] = (48, 72), fps: float = 25.0,
                                 seed: int = 0) -> Path:
    """Phrase-level lip reading (CTC): each video says `words_per_sentence` [min, max] of the first `n_words` words
    (repeats allowed) one after another — every word's four shapes in its order, a short rest between words — drawn
    as the isolated clips are (`render_clip`), about `frames_per_word` frames per word. Speakers disjoint across
    (train, val, test) = `n_people`. Output: `root/<split>/<speaker>/sentence_<k>.mp4` and `root/manifest.csv`
    (`path,glosses,split,speaker`); deterministic and idempotent like `make_synthetic_lip`."""
    from signlip.data.clips.video import write_video

    low, high = (int(v) for v in words_per_sentence)
    if not 1 <= low <= high:
        raise SignlipError(f"words_per_sentence must be [min, max] with 1 ≤ min ≤ max, got {list(words_per_sentence)}")
    if len(n_people) != 3 or min(n_people) < 1:
        raise SignlipError(f"n_people must be [train, val, test] speakers, at least 1 each, got {list(n_people)}")
    if frames_per_word < 8:
        raise SignlipError(f"frames_per_word={frames_per_word}: a word's four shapes need at least 8 frames")
    root = Path(root)
    size = (int(frame_size[0]), int(frame_size[1]))
    settings = {"version": _VERSION, "kind": "lip_sentences", "n_people": [int(n) for n in n_people],
                "sentences_per_person": int(sentences_per_person), "n_words": int(n_words),
                "words_per_sentence": [low, high], "frames_per_word": int(frames_per_word), "frame_size": list(size),
                "fps": float(fps), "seed": int(seed)}
    manifest, settings_path = root / MANIFEST, root / SETTINGS
    if manifest.is_file() and settings_path.is_file() and json.loads(settings_path.read_text()) == settings:
        return manifest
    settings_path.unlink(missing_ok=True)  # an interrupted rewrite must not look complete
    for split in ("train", "val", "test"):
        shutil.rmtree(root / split, ignore_errors=True)
    names, orders = class_names(n_words), word_orders(n_words, seed)
    rows, speaker_id = [], 0
    for split, count in zip(("train", "val", "test"), settings["n_people"]):
        for _ in range(count):
            speaker_id += 1
            name = f"s{speaker_id:03d}"
            rng = np.random.default_rng([seed, speaker_id, 11])
            speaker = _speaker(rng, size)
            for k in range(sentences_per_person):
                words = rng.integers(0, n_words, int(rng.integers(low, high + 1))).tolist()
                n_frames = int(round(len(words) * frames_per_word * rng.uniform(0.9, 1.1)))
                frames = render_clip(sentence_keys([orders[w] for w in words]), speaker, rng, n_frames, size)
                rel = Path(split) / name / f"sentence_{k:03d}.mp4"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                write_video(root / rel, frames, fps=fps)
                rows.append((rel.as_posix(), " ".join(names[w] for w in words), split, name))
    write_manifest(manifest, rows, "speaker", target="glosses")
    settings_path.write_text(json.dumps(settings, indent=2))
    return manifest
