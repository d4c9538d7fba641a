"""Built-in synthetic RGB sign-clip dataset, written in the user format (video files + manifest CSV).

Every clip shows one rendered hand — a textured palm ellipse, four fingers and a thumb whose spread and curl
change — moving over a textured background along a circle. Classes combine two motion properties that no single
frame shows:

- the direction the hand travels round the circle (clockwise / counter-clockwise), and
- how the hand shape changes: it cycles through the (spread, curl) states one way ("open" — spreading, then
  curling), the other way ("close"), or holds still ("hold").

Start position on the circle and start hand shape are uniformly random, so at any frame index every class shows the
same distribution of positions and shapes: a classifier that sees one frame is at chance, one that sees motion
separates all classes. Signers differ in skin colour and texture, hand size, circle centre and radius, speed and
background palette; each clip adds its own background texture, lighting, camera jitter and sensor noise. Signers
are disjoint between splits. Output: `root/<split>/<signer>/<label>_<k>.mp4` (OpenCV `mp4v`, which this OpenCV
writes and reads back) and `root/manifest.csv` (`path,label,split,signer`, paths relative to it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from signlip.data.manifest import write_manifest
from signlip.errors import SignlipError

CLASSES = ("cw_open", "ccw_open", "cw_close", "ccw_close", "cw_hold", "ccw_hold")
# label → (direction round the circle: +1 clockwise on screen, shape-cycle direction: +1 / −1 / 0 = hold)
_CLASS_MOTION = {"cw_open": (1, 1), "ccw_open": (-1, 1), "cw_close": (1, -1), "ccw_close": (-1, -1),
                 "cw_hold": (1, 0), "ccw_hold": (-1, 0)}
FOURCC, SUFFIX, FPS = "mp4v", ".mp4", 25
_VERSION = 2


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
        "palette": rng.uniform(20, 235, size=(2, 3)),  # background gradient end colours
    }


def clip_plan(label: str, signer: dict[str, Any], rng: np.random.Generator, frames: int) -> dict[str, np.ndarray]:
    """Per-frame hand state of one clip: angle on the circle `theta` (T,), shape phase `psi` (T,), centre, radius.

    Hand shape from psi: spread = 0.5 + 0.5·cos psi, curl = 0.5 + 0.5·sin psi (both in [0, 1]).
    """
    direction, shape_dir = _CLASS_MOTION[label]
    t = np.arange(frames, dtype=np.float64)
    speed = signer["speed"] * rng.uniform(0.9, 1.1)
    omega = 2 * np.pi * 0.75 * speed / frames  # about ¾ of a turn per clip
    theta = rng.uniform(0, 2 * np.pi) + direction * omega * t
    psi = rng.uniform(0, 2 * np.pi) + shape_dir * 2 * np.pi * 1.0 * speed / frames * t  # one shape cycle per clip
    return {"theta": theta, "psi": psi, "center": signer["center"] + rng.normal(0, 1.5, 2),
            "radius": signer["radius"] * rng.uniform(0.92, 1.08)}


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


def _hand_mask(size: tuple[int, int], pos: np.ndarray, psi: float, scale: float, tilt: float) -> np.ndarray:
    """Soft (H, W) float32 mask of the hand: palm ellipse, four fingers and a thumb (anti-aliased)."""
    import cv2

    h, w = size
    spread, curl = 0.5 + 0.5 * np.cos(psi), 0.5 + 0.5 * np.sin(psi)
    mask = np.zeros((h, w), np.uint8)
    sub = 4  # fixed-point sub-pixel positions keep motion smooth at small sizes
    f = float(1 << sub)

    def pt(p: np.ndarray) -> tuple[int, int]:
        return int(np.rint(p[0] * f)), int(np.rint(p[1] * f))

    up = np.array([np.sin(tilt), -np.cos(tilt)])  # hand points up, tilted by the signer
    side = np.array([-up[1], up[0]])
    palm_w, palm_h = 9.0 * scale, 11.0 * scale
    cv2.ellipse(mask, pt(pos), (int(palm_w * f), int(palm_h * f)), np.degrees(tilt), 0, 360, 255, -1,
                cv2.LINE_AA, sub)
    length = (17.0 - 11.0 * curl) * scale  # curled fingers look shorter
    width = max(2, int(np.rint(4.0 * scale)))
    for k, offset in enumerate((-1.5, -0.5, 0.5, 1.5)):
        base = pos + up * palm_h * 0.8 + side * offset * palm_w * 0.45
        ang = offset * np.radians(4 + 14 * spread)
        d = up * np.cos(ang) + side * np.sin(ang)
        tip = base + d * length * (0.85 if k in (0, 3) else 1.0)
        cv2.line(mask, pt(base), pt(tip), 255, width, cv2.LINE_AA, sub)
    thumb_base = pos - side * palm_w * 0.8
    ang = np.radians(20 + 50 * spread)
    thumb_dir = -side * np.sin(ang) + up * np.cos(ang)
    cv2.line(mask, pt(thumb_base), pt(thumb_base + thumb_dir * length * 0.75), 255, width + 1, cv2.LINE_AA, sub)
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
        # The hand points away from the circle's centre, so it also turns (cw or ccw) as it travels: a local,
        # translation-invariant motion cue (no single frame shows which way it turns).
        tilt = signer["tilt"] + plan["theta"][i] + np.pi / 2
        m = _hand_mask(size, pos, float(plan["psi"][i]), signer["hand_scale"], tilt)[..., None]
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


def make_synthetic_rgb(root: str | Path, n_classes: int = 6, n_signers: tuple[int, int, int] = (6, 2, 2),
                       clips_per_class_per_signer: int = 4, frames: int = 24, size: tuple[int, int] = (112, 112),
                       seed: int = 0) -> Path:
    """Write the dataset under `root` (mp4 videos + `manifest.csv`) unless it is already there; return the manifest.

    `n_classes` ≤ 6 picks the first classes of `CLASSES`; `n_signers` = signers in (train, val, test); `size` =
    (height, width). Deterministic in `seed`; a `settings.json` beside the manifest makes repeated calls free, and a
    call with other settings rewrites the dataset.
    """
    if not 2 <= n_classes <= len(CLASSES):
        raise SignlipError(f"synthetic RGB data has 2..{len(CLASSES)} classes, not {n_classes} — pick n_classes in "
                           "that range")
    root = Path(root)
    manifest = root / "manifest.csv"
    settings = {"version": _VERSION, "n_classes": n_classes, "n_signers": list(n_signers),
                "clips_per_class_per_signer": clips_per_class_per_signer, "frames": frames, "size": list(size),
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
    for split, count in zip(("train", "val", "test"), n_signers):
        for _ in range(count):
            name = f"s{signer_id:02d}"
            signer_id += 1
            signer_rng = np.random.default_rng([seed, signer_id])  # a signer's clips do not depend on the others'
            signer = _signer(signer_rng, size)
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for label in labels:
                for k in range(clips_per_class_per_signer):
                    clip = render_clip(clip_plan(label, signer, signer_rng, frames), signer, signer_rng, size)
                    rel = Path(split) / name / f"{label}_{k}{SUFFIX}"
                    write_video(root / rel, clip)
                    rows.append((rel.as_posix(), label, split, name))
    write_manifest(manifest, rows, "signer")
    settings_file.write_text(json.dumps(settings))
    return manifest
