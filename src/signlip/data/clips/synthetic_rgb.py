"""Built-in synthetic RGB sign-clip dataset, written in the user format (video files + manifest CSV).

Every clip shows one rendered hand — a textured palm ellipse, four fingers and a thumb, each finger extended or
curled — over a textured backdrop. Like an isolated sign, a clip has a start hand shape, a middle one and an end one,
and the hand travels along an arc meanwhile, pointing away from the arc's centre (so it also turns as it goes):

- shapes: O (open hand, fingers spread), F (fist), V (index and middle finger spread);
- a class is one order of the three shapes plus a travel direction: `ofv_cw`, `vfo_ccw`, `ovf_cw`, `fvo_ccw`,
  `fov_cw`, `vof_ccw`. The classes come in pairs where the second is the first played backwards (reversed shape
  order, reversed travel), so a class and its pair show the same frames and differ only in their order: an
  order-blind model (any statistic of the set of frames) cannot tell them apart (tested). The default 2-class
  subset (`n_classes=2`) is such a pair.

The order of shape sizes (O large, V medium, F small) is a global cue a per-frame CNN with a temporal head can read;
the travel direction a second, local one for 3D convolutions. Signers differ in skin colour and texture, hand size and
tilt, arc centre and radius, speed, timing and backdrop (a two-colour gradient in non-skin hues, like a studio
backdrop); each clip adds its own start point on the arc, timing, backdrop texture, lighting, camera jitter and sensor
noise. Signers are disjoint between splits. Output: `root/<split>/<signer>/<label>_<k>.mp4` (OpenCV `mp4v`, which
this OpenCV writes and reads back) and `root/manifest.csv` (`path,label,split,signer`, paths relative to it).

Version 2 had every shape cycling from a random phase with motion direction as the class, and any backdrop colour:
a random-weight CNN could not even fit its training clips in a CPU budget (measured in docs/distill.md).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from signlip.data.manifest import write_manifest
from signlip.errors import SignlipError

# Finger extension (thumb, index, middle, ring, little; 1 = extended, 0 = curled) and spread (0..1) of each shape.
SHAPES = {"o": ((1.0, 1.0, 1.0, 1.0, 1.0), 1.0), "f": ((0.0, 0.0, 0.0, 0.0, 0.0), 0.0),
          "v": ((0.0, 1.0, 1.0, 0.0, 0.0), 1.0)}
# label → (start, middle, end shape; travel direction: +1 clockwise on screen, −1 counter-clockwise). Each odd entry
# is the one before it played backwards.
_CLASS_MOTION = {"ofv_cw": ("ofv", 1), "vfo_ccw": ("vfo", -1), "ovf_cw": ("ovf", 1), "fvo_ccw": ("fvo", -1),
                 "fov_cw": ("fov", 1), "vof_ccw": ("vof", -1)}
CLASSES = tuple(_CLASS_MOTION)
FOURCC, SUFFIX, FPS = "mp4v", ".mp4", 25
_VERSION = 3


def _signer(rng: np.random.Generator, size: tuple[int, int]) -> dict[str, Any]:
    """Appearance and motion habits of one signer (image units scale with the frame size)."""
    h, w = size
    hue = rng.uniform(5, 25)  # skin hues in OpenCV's 0..180 HSV scale
    skin_hsv = np.array([[[hue, rng.uniform(60, 170), rng.uniform(110, 235)]]], dtype=np.uint8)
    import cv2

    skin = cv2.cvtColor(skin_hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)
    return {
        "skin": skin,
        "texture_amp": rng.uniform(0.05, 0.2),
        "texture_period": rng.uniform(3.0, 7.0),
        "hand_scale": rng.uniform(1.15, 1.4) * min(h, w) / 112.0,
        "center": np.array([w, h]) * (0.5 + rng.uniform(-0.06, 0.06, 2)),
        "radius": rng.uniform(0.15, 0.19) * min(h, w),
        "speed": rng.uniform(0.8, 1.25),
        "tilt": rng.normal(0.0, np.radians(10)),
        "palette": _backdrop_colours(rng),
    }


def _backdrop_colours(rng: np.random.Generator) -> np.ndarray:
    """Two RGB colours (2, 3) for the backdrop gradient: green to blue hues (OpenCV 75..135 of 180), any saturation
    and brightness — never skin-coloured, as a studio backdrop (with a skin-coloured backdrop no per-frame cue is
    left for small data)."""
    import cv2

    hsv = np.stack([rng.uniform(75, 135, 2), rng.uniform(30, 200, 2), rng.uniform(40, 230, 2)], axis=1)
    return cv2.cvtColor(hsv[None].astype(np.uint8), cv2.COLOR_HSV2RGB)[0].astype(np.float64)


def clip_plan(label: str, signer: dict[str, Any], rng: np.random.Generator, frames: int) -> dict[str, Any]:
    """Per-frame hand state of one clip: angle on the arc `theta` (T,), progress through the sign `progress` (T,) in
    [0, 1] (start shape at 0, middle at 0.5, end at 1; see `hand_pose`), the class's shape `order`, centre, radius."""
    order, direction = _CLASS_MOTION[label]
    t = np.arange(frames, dtype=np.float64) / max(frames - 1, 1)  # 0 … 1 over the clip
    speed = signer["speed"] * rng.uniform(0.9, 1.1)
    theta = rng.uniform(0, 2 * np.pi) + direction * 2 * np.pi * 0.6 * speed * t  # about 0.6 of a turn per clip
    # The sign starts after a short rest and ends before the clip does; the rests vary per clip.
    start, end = rng.uniform(0.0, 0.12), rng.uniform(0.88, 1.0)
    progress = np.clip((t - start) / (end - start), 0.0, 1.0)
    return {"theta": theta, "progress": progress, "order": order, "center": signer["center"] + rng.normal(0, 1.5, 2),
            "radius": signer["radius"] * rng.uniform(0.92, 1.08)}


def shape_at(order: str, progress: float) -> str:
    """The shape of `order` nearest at `progress` (0 start, 0.5 middle, 1 end)."""
    return order[int(np.clip(np.rint(progress * 2), 0, 2))]


def hand_pose(order: str, progress: float) -> tuple[np.ndarray, float]:
    """(finger extensions (5,), spread) at `progress`: each shape is held, then changes smoothly into the next over
    the middle 40% of each half of the sign."""
    u = float(np.clip(progress, 0.0, 1.0)) * 2
    k = min(int(u), 1)
    f = np.clip((u - k - 0.3) / 0.4, 0.0, 1.0)
    f = f * f * (3 - 2 * f)  # smoothstep
    (ext_a, spread_a), (ext_b, spread_b) = SHAPES[order[k]], SHAPES[order[k + 1]]
    ext = np.asarray(ext_a) * (1 - f) + np.asarray(ext_b) * f
    return ext, float(spread_a * (1 - f) + spread_b * f)


def _noise_texture(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Smooth value noise in [0, 1], (h, w) float32."""
    import cv2

    coarse = rng.random((max(2, h // cell), max(2, w // cell))).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def _background(signer: dict[str, Any], rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Gradient between the signer's palette colours + noise texture + a few soft blobs, (H, W, 3) float32."""
    h, w = size
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    g = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)
    g = (g - g.min()) / max(float(np.ptp(g)), 1e-6)
    a, b = signer["palette"] + rng.normal(0, 15, (2, 3))
    bg = a[None, None] * (1 - g[..., None]) + b[None, None] * g[..., None]
    tex = _noise_texture(rng, h, w, cell=int(rng.integers(4, 16)))
    bg = bg * (0.75 + 0.5 * tex[..., None])
    return bg.clip(0, 255).astype(np.float32)


def _hand_mask(size: tuple[int, int], pos: np.ndarray, extension: np.ndarray, spread: float, scale: float,
               tilt: float) -> np.ndarray:
    """Soft (H, W) float32 mask of the hand: palm ellipse, four fingers and a thumb (anti-aliased); `extension` =
    thumb, index, middle, ring, little in [0, 1] (curled fingers are drawn as short stubs)."""
    import cv2

    h, w = size
    mask = np.zeros((h, w), np.uint8)
    sub = 4  # fixed-point sub-pixel positions keep motion smooth at small sizes
    f = float(1 << sub)

    def pt(p: np.ndarray) -> tuple[int, int]:
        return int(np.rint(p[0] * f)), int(np.rint(p[1] * f))

    up = np.array([np.sin(tilt), -np.cos(tilt)])  # hand points up, tilted
    side = np.array([-up[1], up[0]])
    palm_w, palm_h = 9.0 * scale, 11.0 * scale
    cv2.ellipse(mask, pt(pos), (int(palm_w * f), int(palm_h * f)), np.degrees(tilt), 0, 360, 255, -1,
                cv2.LINE_AA, sub)
    width = max(2, int(np.rint(4.0 * scale)))
    for k, offset in enumerate((-1.5, -0.5, 0.5, 1.5)):
        length = (3.0 + 15.0 * extension[k + 1]) * scale * (0.85 if k in (0, 3) else 1.0)
        base = pos + up * palm_h * 0.8 + side * offset * palm_w * 0.45
        ang = offset * np.radians(3 + 16 * spread)
        d = up * np.cos(ang) + side * np.sin(ang)
        cv2.line(mask, pt(base), pt(base + d * length), 255, width, cv2.LINE_AA, sub)
    thumb_base = pos - side * palm_w * 0.8
    ang = np.radians(15 + 60 * extension[0] * (0.5 + 0.5 * spread))
    thumb_dir = -side * np.sin(ang) + up * np.cos(ang)
    thumb_len = (3.0 + 10.0 * extension[0]) * scale
    cv2.line(mask, pt(thumb_base), pt(thumb_base + thumb_dir * thumb_len), 255, width + 1, cv2.LINE_AA, sub)
    return mask.astype(np.float32) / 255.0


def render_clip(plan: dict[str, np.ndarray], signer: dict[str, Any], rng: np.random.Generator,
                size: tuple[int, int]) -> np.ndarray:
    """Render a clip plan to uint8 RGB frames (T, H, W, 3)."""
    import cv2

    h, w = size
    frames = len(plan["theta"])
    bg = _background(signer, rng, size)
    # Skin texture in hand coordinates (stripes + noise), cropped around the hand every frame so that it moves with it.
    big_h, big_w = 2 * h, 2 * w
    yy, xx = np.mgrid[0:big_h, 0:big_w].astype(np.float32)
    stripes = np.sin((xx * np.cos(signer["tilt"]) + yy * np.sin(signer["tilt"])) * 2 * np.pi / signer["texture_period"])
    tex = 1.0 + signer["texture_amp"] * (0.6 * stripes + 0.8 * (_noise_texture(rng, big_h, big_w, 3) - 0.5))
    light = rng.uniform(0.8, 1.2)
    shift = np.cumsum(rng.normal(0, 0.6, (frames, 2)), axis=0)  # camera jitter: a small random walk in pixels
    out = np.empty((frames, h, w, 3), np.uint8)
    for i in range(frames):
        pos = plan["center"] + plan["radius"] * np.array([np.cos(plan["theta"][i]), np.sin(plan["theta"][i])])
        # The hand points away from the arc's centre, so it also turns (cw or ccw) as it travels: a local,
        # translation-invariant motion cue (no single frame shows which way it turns).
        tilt = signer["tilt"] + plan["theta"][i] + np.pi / 2
        order = plan["orders"][i] if "orders" in plan else plan["order"]  # a sentence changes sign as it goes
        extension, spread = hand_pose(order, float(plan["progress"][i]))
        m = _hand_mask(size, pos, extension, spread, signer["hand_scale"], tilt)[..., None]
        oy, ox = int(np.clip(round(h - pos[1]), 0, h)), int(np.clip(round(w - pos[0]), 0, w))
        skin = signer["skin"][None, None] * tex[oy: oy + h, ox: ox + w, None]  # texture point (h, w) sits on the hand
        frame = (bg * (1 - m) + skin * m) * light
        frame += rng.normal(0, 3.0, frame.shape)  # sensor noise
        frame = frame.clip(0, 255).astype(np.uint8)
        jitter = np.float32([[1, 0, shift[i, 0]], [0, 1, shift[i, 1]]])
        out[i] = cv2.warpAffine(frame, jitter, (w, h), borderMode=cv2.BORDER_REFLECT)
    return out


def write_video(path: str | Path, frames: np.ndarray, fps: int = FPS) -> None:
    """Write uint8 RGB frames (T, H, W, 3) as an mp4v video (OpenCV wants BGR)."""
    import cv2

    path = Path(path)
    _, h, w, _ = frames.shape
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*FOURCC), fps, (w, h))
    if not writer.isOpened():
        raise SignlipError(f"OpenCV cannot write {FOURCC} video to {path} — check the folder is writable and that "
                           "this OpenCV build has FFmpeg")
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def make_synthetic_rgb(root: str | Path = "data/synthetic/rgb", n_classes: int = 6,
                       n_people: Sequence[int] = (6, 2, 2), per_class_per_person: int = 4, n_frames: int = 24,
                       frame_size: Sequence[int] = (112, 112), seed: int = 0) -> Path:
    """Write the dataset under `root` (mp4 videos + `manifest.csv`) unless it is already there; return the manifest.

    `n_classes` ≤ 6 picks the first classes of `CLASSES`; `n_people` = signers in (train, val, test);
    `per_class_per_person` clips of each class per signer, `n_frames` each; `frame_size` = (height, width).
    Deterministic in `seed`; a `settings.json` beside the manifest makes repeated calls free, and a call with other
    settings rewrites the dataset.
    """
    if not 2 <= n_classes <= len(CLASSES):
        raise SignlipError(f"synthetic RGB data has 2..{len(CLASSES)} classes, not {n_classes} — pick n_classes in "
                           "that range")
    root = Path(root)
    manifest = root / "manifest.csv"
    # The settings file keeps the first version's spelling (n_signers, clips_per_class_per_signer, frames, size): the
    # same settings make the same files, so datasets written before the rename are recognised, not written again.
    size = [int(v) for v in frame_size]
    settings = {"version": _VERSION, "n_classes": n_classes, "n_signers": [int(n) for n in n_people],
                "clips_per_class_per_signer": per_class_per_person, "frames": n_frames, "size": size,
                "seed": seed, "fourcc": FOURCC}
    settings_file = root / "settings.json"
    if manifest.exists() and settings_file.exists() and json.loads(settings_file.read_text()) == settings:
        return manifest
    settings_file.unlink(missing_ok=True)  # an interrupted rewrite must not look complete
    for split in ("train", "val", "test"):
        shutil.rmtree(root / split, ignore_errors=True)  # clips from older settings would linger otherwise
    labels = CLASSES[:n_classes]
    rows = []
    signer_id = 0
    for split, count in zip(("train", "val", "test"), n_people):
        for _ in range(count):
            name = f"s{signer_id:02d}"
            signer_id += 1
            signer_rng = np.random.default_rng([seed, signer_id])  # a signer's clips do not depend on the others'
            signer = _signer(signer_rng, size)
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for label in labels:
                for k in range(per_class_per_person):
                    clip = render_clip(clip_plan(label, signer, signer_rng, n_frames), signer, signer_rng, size)
                    rel = Path(split) / name / f"{label}_{k}{SUFFIX}"
                    write_video(root / rel, clip)
                    rows.append((rel.as_posix(), label, split, name))
    write_manifest(manifest, rows, "signer")
    settings_file.write_text(json.dumps(settings))
    return manifest


def sentence_plan(labels: Sequence[str], signer: dict[str, Any], rng: np.random.Generator, frames_per_sign: int,
                  transition: Sequence[int]) -> dict[str, Any]:
    """Per-frame hand state of a signed sentence: each sign's `clip_plan` (its length varied ±15%), joined by
    transitions of `transition` [min, max] frames in which the hand travels from where one sign ended to where the
    next starts (the shortest way round the arc), holding the end shape, then taking the next start shape. Returns
    `clip_plan`'s keys with `orders` (T,): the shape order of each frame's sign."""
    theta, progress, orders = [], [], []
    for k, label in enumerate(labels):
        plan = clip_plan(label, signer, rng, max(4, int(round(frames_per_sign * rng.uniform(0.85, 1.15)))))
        if k:
            n = int(rng.integers(transition[0], transition[1] + 1))
            start, end = theta[-1][-1], plan["theta"][0]
            delta = (end - start + np.pi) % (2 * np.pi) - np.pi
            steps = np.arange(1, n + 1) / (n + 1)
            theta.append(start + delta * steps)
            progress.append(np.where(steps < 0.5, 1.0, 0.0))
            orders += [orders[-1] if u < 0.5 else plan["order"] for u in steps]
        theta.append(plan["theta"])
        progress.append(plan["progress"])
        orders += [plan["order"]] * len(plan["theta"])
    return {"theta": np.concatenate(theta), "progress": np.concatenate(progress), "orders": orders,
            "order": orders[0], "center": signer["center"] + rng.normal(0, 1.5, 2),
            "radius": signer["radius"] * rng.uniform(0.92, 1.08)}


def make_synthetic_rgb_sentences(root: str | Path = "data/synthetic/rgb_sentences", n_signs: int = 6,
                                 n_people: Sequence[int] = (8, 2, 2), sentences_per_person: int = 24,
                                 signs_per_sentence: Sequence[int] = (2, 4), frames_per_sign: int = 16,
                                 transition_frames: Sequence[int] = (3, 6), frame_size: Sequence[int] = (64, 64),
                                 seed: int = 0) -> Path:
    """Continuous signing on RGB video: sentences of `signs_per_sentence` [min, max] of the first `n_signs` isolated
    signs (`CLASSES`; repeats allowed), `frames_per_sign` frames each, joined by transitions (`sentence_plan`),
    rendered as the isolated clips are. Signers disjoint across (train, val, test) = `n_people`; every sentence is a
    deterministic function of the settings. Output: `root/<split>/<signer>/sentence_<k>.mp4` and `root/manifest.csv`
    (`path,glosses,split,signer`); idempotent like `make_synthetic_rgb`."""
    low, high = (int(v) for v in signs_per_sentence)
    if not 1 <= n_signs <= len(CLASSES):
        raise SignlipError(f"synthetic RGB sentences use 1..{len(CLASSES)} signs, not {n_signs} — pick n_signs in "
                           "that range")
    if not 1 <= low <= high:
        raise SignlipError(f"signs_per_sentence must be [min, max] with 1 ≤ min ≤ max, got {list(signs_per_sentence)}")
    if len(n_people) != 3 or min(n_people) < 1:
        raise SignlipError(f"n_people must be [train, val, test] signers, at least 1 each, got {list(n_people)}")
    root = Path(root)
    manifest, settings_file = root / "manifest.csv", root / "settings.json"
    size = [int(v) for v in frame_size]
    settings = {"version": _VERSION, "kind": "sentences", "n_signs": n_signs, "n_people": [int(n) for n in n_people],
                "sentences_per_person": sentences_per_person, "signs_per_sentence": [low, high],
                "frames_per_sign": frames_per_sign, "transition_frames": [int(v) for v in transition_frames],
                "size": size, "seed": seed, "fourcc": FOURCC}
    if manifest.exists() and settings_file.exists() and json.loads(settings_file.read_text()) == settings:
        return manifest
    settings_file.unlink(missing_ok=True)  # an interrupted rewrite must not look complete
    for split in ("train", "val", "test"):
        shutil.rmtree(root / split, ignore_errors=True)
    rows, signer_id = [], 0
    for split, count in zip(("train", "val", "test"), n_people):
        for _ in range(count):
            name = f"s{signer_id:02d}"
            signer_id += 1
            signer_rng = np.random.default_rng([seed, signer_id, 7])
            signer = _signer(signer_rng, size)
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(sentences_per_person):
                labels = [CLASSES[i] for i in signer_rng.integers(0, n_signs, int(signer_rng.integers(low, high + 1)))]
                plan = sentence_plan(labels, signer, signer_rng, frames_per_sign, transition_frames)
                rel = Path(split) / name / f"sentence_{k:03d}{SUFFIX}"
                write_video(root / rel, render_clip(plan, signer, signer_rng, size))
                rows.append((rel.as_posix(), " ".join(labels), split, name))
    write_manifest(manifest, rows, "signer", target="glosses")
    settings_file.write_text(json.dumps(settings))
    return manifest
