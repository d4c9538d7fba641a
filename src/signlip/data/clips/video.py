"""Shared video layer: read any OpenCV-readable file into a fixed-shape uint8 clip.

Used by `prepare` (lip reading: gray mouth clips; sign video: RGB clips). Everything here works on numpy arrays;
OpenCV is imported inside the functions so `import signlip` stays light.

Frame layout: gray `(T, H, W)` or colour `(T, H, W, 3)` in **RGB** order, uint8.

Typical call from `prepare`::

    clip = read_clip("talk.mp4", fps=25, n_frames=32, size=(64, 96), gray=True)   # (32, 64, 96) uint8
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from signlip.errors import SignlipError

# Fix hint shared by the "cannot decode" messages.
_REENCODE = "re-encode it (e.g. `ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4`) or drop it from the manifest"


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (frame_count and fps may be wrong for variable-rate files)."""

    path: str
    fps: float  # nominal fps from the container; 0.0 when unknown
    frame_count: int  # container estimate; -1 when unknown
    width: int  # after auto-rotation
    height: int
    rotation: int  # degrees clockwise from the metadata (0, 90, 180, 270)


def _open(path: str | Path):
    """Open a capture with auto-rotation on; raise SignlipError naming the file when it cannot be opened."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise SignlipError(f"video not found: {p} — check the path in the manifest (relative paths are resolved "
                           "against the manifest's folder)")
    if p.stat().st_size == 0:
        raise SignlipError(f"video file is empty (0 bytes): {p} — {_REENCODE}")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        cap.release()
        raise SignlipError(f"OpenCV cannot open video: {p} — the file is damaged, truncated (e.g. an mp4 cut before "
                           f"its index) or not a video; {_REENCODE}")
    # Phone videos store rotation as metadata; ask the backend to apply it (FFmpeg supports this).
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


def _rotation(cap) -> tuple[int, bool]:
    """(rotation in degrees from metadata, whether the backend already applies it)."""
    import cv2

    meta = cap.get(cv2.CAP_PROP_ORIENTATION_META)
    rot = round(meta) % 360 if math.isfinite(meta) else 0
    auto = bool(cap.get(cv2.CAP_PROP_ORIENTATION_AUTO))
    return (rot if rot in (90, 180, 270) else 0), auto


def probe_video(path: str | Path) -> VideoInfo:
    """Read container metadata without decoding the whole file."""
    import cv2

    cap = _open(path)
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        rot, auto = _rotation(cap)
        if rot in (90, 270) and not auto:
            w, h = h, w
    finally:
        cap.release()
    fps = float(fps) if math.isfinite(fps) and 0 < fps < 1000 else 0.0
    count = int(count) if math.isfinite(count) and count > 0 else -1
    return VideoInfo(str(path), fps, count, w, h, rot)


def _decode(path: str | Path, stats: dict | None = None) -> Iterator[tuple[np.ndarray, float]]:
    """Yield (BGR frame, timestamp in seconds) for every decodable frame, upright.

    Timestamps come from the container (CAP_PROP_POS_MSEC, i.e. the frame's pts), so variable-frame-rate files keep
    their real timing; when the backend gives no usable timestamps we fall back to index / nominal fps.
    `stats` (a dict, filled as decoding goes): `container_frames` (the container's count, -1 when unknown) and
    `decoded` (frames decoded so far) — a truncated file decodes fewer frames than its container declares.
    """
    import cv2

    cap = _open(path)
    stats = {} if stats is None else stats
    try:
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        stats["container_frames"] = int(count) if math.isfinite(count) and count > 0 else -1
        nominal = cap.get(cv2.CAP_PROP_FPS)
        stats["container_fps"] = float(nominal) if math.isfinite(nominal) and 0 < nominal < 1000 else 0.0
        stats["decoded"] = 0
        step = 1.0 / stats["container_fps"] if stats["container_fps"] else 1.0 / 25.0
        rot, auto = _rotation(cap)
        rotate_code = None if auto or rot == 0 else {
            90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}[rot]
        prev_t: float | None = None
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            stats["decoded"] += 1
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            # Non-increasing or missing pts (some AVI/MJPEG streams): synthesise from the nominal rate.
            if prev_t is not None and (not math.isfinite(t) or t <= prev_t):
                t = prev_t + step
            elif prev_t is None and not math.isfinite(t):
                t = 0.0
            prev_t = t
            if rotate_code is not None:
                frame = cv2.rotate(frame, rotate_code)
            if frame.ndim == 2:  # a few backends hand out gray frames
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
            yield frame, t
    finally:
        cap.release()


def to_gray(frames: np.ndarray) -> np.ndarray:
    """RGB `(T, H, W, 3)` → gray `(T, H, W)` uint8 (ITU-R BT.601 weights, as OpenCV); gray input is returned as is."""
    if frames.ndim == 3:
        return frames
    w = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(frames.astype(np.float32) @ w + 0.5, 0, 255).astype(np.uint8)


def _convert(frame_bgr: np.ndarray, size: tuple[int, int] | None, gray: bool) -> np.ndarray:
    import cv2

    frame = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY if gray else cv2.COLOR_BGR2RGB)
    if size is not None:
        frame = _resize_one(frame, size)
    return frame


def _resize_one(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    h, w = size
    if frame.shape[:2] == (h, w):
        return frame
    # INTER_AREA when shrinking avoids aliasing (mouth crops are often much larger than 64×96).
    shrink = frame.shape[0] * frame.shape[1] > h * w
    return cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def resize_frames(frames: np.ndarray, size: tuple[int, int], gray: bool | None = None) -> np.ndarray:
    """Resize every frame to `size` = (H, W) (stretching; crop first to keep an aspect ratio).

    frames: `(T, H0, W0)` or `(T, H0, W0, 3)` RGB uint8. `gray=True` also converts to gray, `gray=False` expands gray
    to RGB, `None` keeps the channel layout. Returns `(T, H, W)` or `(T, H, W, 3)` uint8.
    """
    if frames.ndim not in (3, 4):
        raise ValueError(f"expected (T, H, W) or (T, H, W, 3) frames, got shape {frames.shape}")
    if gray is True:
        frames = to_gray(frames)
    elif gray is False and frames.ndim == 3:
        frames = np.repeat(frames[..., None], 3, axis=-1)
    h, w = size
    out = np.empty((len(frames), h, w) + frames.shape[3:], dtype=np.uint8)
    for i, f in enumerate(frames):
        out[i] = _resize_one(np.ascontiguousarray(f), size)
    return out


def fps_indices(timestamps: np.ndarray, fps: float) -> np.ndarray:
    """Indices into frames with these timestamps (s) that resample them to a constant `fps`, nearest in time.

    Output times are t0, t0 + 1/fps, … up to the last timestamp, so a 2 s clip gives ~2·fps frames whatever its
    source rate (frames are repeated when upsampling and dropped when downsampling).
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    if ts.size == 0:
        return np.zeros(0, dtype=np.int64)
    rel = ts - ts[0]
    n_out = math.floor(rel[-1] * fps + 1e-3) + 1
    targets = np.arange(n_out) / fps
    # Nearest neighbour: compare with the midpoints between consecutive source frames.
    mids = (rel[1:] + rel[:-1]) / 2
    return np.searchsorted(mids, targets, side="left").astype(np.int64)


def temporal_indices(length: int, n_frames: int, pad: str = "both") -> np.ndarray:
    """Indices that turn a `length`-frame clip into exactly `n_frames`.

    Longer clips: uniform sampling over the whole clip (first and last frames kept). Shorter clips: every frame once,
    padded by repeating the edge frames — at both ends (`pad="both"`, keeps the speech centred) or at the end
    (`pad="end"`).
    """
    if length <= 0:
        raise ValueError("cannot sample frames from an empty clip")
    if length >= n_frames:
        return np.round(np.linspace(0, length - 1, n_frames)).astype(np.int64)
    missing = n_frames - length
    before = missing // 2 if pad == "both" else 0
    if pad not in ("both", "end"):
        raise ValueError(f"pad must be 'both' or 'end', got {pad!r}")
    return np.clip(np.arange(n_frames) - before, 0, length - 1).astype(np.int64)


def temporal_sample(frames: np.ndarray, n_frames: int, pad: str = "both") -> np.ndarray:
    """Uniformly sample (longer clips) or edge-pad (shorter clips) to exactly `n_frames` along axis 0."""
    return frames[temporal_indices(len(frames), n_frames, pad)]


def _resampled(path: str | Path, fps: float | None, stats: dict | None) -> Iterator[np.ndarray]:
    """Decoded BGR frames resampled to `fps` (None: every frame), the same array object repeated when upsampling.

    Resampling is nearest in time to t0, t0 + 1/fps, …: a decoded frame is emitted for every target time that lies
    nearer to it than to its neighbours, which is known once the next frame's timestamp has arrived."""
    previous: tuple[np.ndarray, float] | None = None
    t0, k = None, 0  # first timestamp, index of the next target time
    for frame, t in _decode(path, stats):
        if fps is None:
            yield frame
            continue
        t0 = t if t0 is None else t0
        if previous is not None:
            mid = ((previous[1] - t0) + (t - t0)) / 2
            while k / fps <= mid:  # fps_indices: searchsorted(mids, targets, side="left")
                yield previous[0]
                k += 1
        previous = (frame, t)
    if previous is not None and fps is not None:
        last = previous[1] - t0
        while k <= math.floor(last * fps + 1e-3):
            yield previous[0]
            k += 1


def _target_size(shape: tuple[int, ...], size: tuple[int, int] | None, max_side: int | None) -> tuple[int, int]:
    """(H, W) the frames of a video are converted to, from its first frame's shape."""
    if size is not None:
        return size
    h, w = shape[:2]
    if max_side is not None and max(h, w) > max_side:
        s = max_side / max(h, w)
        h, w = max(1, round(h * s)), max(1, round(w * s))
    return h, w


def iter_frames(
    path: str | Path,
    fps: float | None = None,
    size: tuple[int, int] | None = None,
    gray: bool = False,
    max_side: int | None = None,
    stats: dict | None = None,
) -> Iterator[np.ndarray]:
    """Decode a video frame by frame: gray `(H, W)` or RGB `(H, W, 3)` uint8, resampled to `fps` as it goes — the
    same frames `read_frames` returns, without holding the whole video (streaming, long files). `stats`: see
    `_decode` (decoded vs the container's frame count)."""
    target, source, frame = None, None, None
    for bgr in _resampled(path, fps, stats):
        target = target or _target_size(bgr.shape, size, max_side)
        if bgr is not source:  # a repeated frame (upsampling) is converted once; dropped ones never
            source, frame = bgr, _convert(bgr, target, gray)
        yield frame


def _no_frames(path: str | Path, stats: dict) -> SignlipError:
    declared = stats.get("container_frames", -1)
    of = f" (decoded 0 of the {declared} frames its container declares)" if declared > 0 else ""
    return SignlipError(f"no frames could be decoded from {path}{of} — the file is damaged, truncated or uses a "
                        f"codec this OpenCV build cannot read; {_REENCODE}")


def read_frames(
    path: str | Path,
    fps: float | None = None,
    size: tuple[int, int] | None = None,
    gray: bool = False,
    max_side: int | None = None,
    stats: dict | None = None,
) -> np.ndarray:
    """Decode a whole video into uint8 frames: gray `(T, H, W)` or RGB `(T, H, W, 3)`.

    fps: resample to this constant rate by the frames' timestamps (None keeps every decoded frame).
    size: (H, W) to resize every frame to (None keeps the source size; frames whose size changes mid-stream are
    resized to the first frame's size). max_side: shrink frames whose longer side exceeds it, keeping the aspect
    ratio — bounds memory for 4K phone video before face detection. `stats`: a dict that receives `decoded` and
    `container_frames` (see `_decode`; `check_decoded` judges them).
    Raises SignlipError (one line: the file and the fix) when the file cannot be opened or yields no frames.
    """
    stats = {} if stats is None else stats
    frames = list(iter_frames(path, fps=fps, size=size, gray=gray, max_side=max_side, stats=stats))
    if not frames:
        raise _no_frames(path, stats)
    return np.stack(frames)


MAX_GUESSED_FRAMES = 1 << 17  # a declared count beyond this (over an hour at 30 fps) is not guessed from


def run_ahead(items: Iterator[Any], depth: int = 8) -> Iterator[Any]:
    """`items`, produced by a thread up to `depth` ahead of the caller: OpenCV's decoding, colour conversion and
    resizing release the GIL, so a video's frames get ready while the caller's MediaPipe landmarker works on the
    frame before (prepare then costs little beyond the landmarker). Order is kept; the thread's exception is raised
    here at its place; a caller that stops early (or fails) stops the thread, which closes `items` itself."""
    out: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(done)
        except BaseException as exc:  # noqa: BLE001 — handed to the caller, raised there
            put(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator releases its decoder on this thread, where it runs

    thread = threading.Thread(target=produce, name="signlip-decode-ahead", daemon=True)
    thread.start()
    try:
        while (item := out.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _expected_length(stats: dict, fps: float | None) -> int:
    """How many frames `_resampled` will give, from the container's declared count and rate (0 when unknown) — a
    guess: the decode is what counts."""
    count, nominal = stats.get("container_frames", -1), stats.get("container_fps", 0.0)
    if count <= 0:
        return 0
    if fps is None:
        return count
    return math.floor((count - 1) / nominal * fps + 1e-3) + 1 if nominal > 0 else 0


def _guess_kept(keep: Callable[[int], np.ndarray], expected: int) -> set[int]:
    """The indices `keep` would pick from a video of `expected` frames — nothing when the container's count is
    unknown, implausible or makes `keep` refuse (a frame range past a wrongly declared end): only a head start."""
    if not 0 < expected <= MAX_GUESSED_FRAMES:
        return set()
    try:
        return set(np.asarray(keep(expected)).tolist())
    except (SignlipError, ValueError, IndexError):
        return set()


def read_kept_frames(
    path: str | Path,
    fps: float | None,
    keep: Callable[[int], np.ndarray],
    max_side: int | None = None,
    on_frame: Callable[[np.ndarray, int], None] | None = None,
    stats: dict | None = None,
    budget_mb: float = 1024,
) -> list[np.ndarray | None]:
    """Decode a video once for a clip that keeps only some frames: `read_frames`' RGB frames at `fps`, but only
    those at the indices `keep(length)` picks are converted and shrunk to `max_side`.

    Returns a list as long as the video at `fps` holding `read_frames(path, fps, max_side=…)`'s frame at each kept
    index and None elsewhere. `on_frame(rgb, index)` sees every frame at `fps` at
    its source size first (a face tracker: MediaPipe resizes internally, so shrinking every frame for it is wasted
    work). Frames are shrunk as they decode, at the indices the container's declared frame count predicts, and
    nothing else is stored; only when the count predicts no kept frame (none or no rate declared, or `keep` refuses
    that length) are the source frames held (while they fit `budget_mb`). A kept frame that neither gave (a wrong
    count — a truncated file's, say —, a video past the budget) is decoded again — the same frame — so memory stays
    bounded. SignlipError as `read_frames`.
    """
    import cv2

    stats = {} if stats is None else stats

    def decoded() -> Iterator[tuple[np.ndarray, np.ndarray | None, np.ndarray | None, bool]]:
        """(BGR frame, its RGB for on_frame, its kept form when the container's count says it is kept, whether the
        count predicted any kept frames)."""
        source, rgb, guess, target = None, None, set(), None
        for index, bgr in enumerate(_resampled(path, fps, stats)):
            if index == 0:  # stats now hold the container's count
                target = _target_size(bgr.shape, None, max_side)
                guess = _guess_kept(keep, _expected_length(stats, fps))
            if on_frame is not None and bgr is not source:
                source, rgb = bgr, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            yield bgr, rgb, (_convert(bgr, target, False) if index in guess else None), bool(guess)

    # With a tracker the frames are decoded, converted and (the kept ones) shrunk on a thread while it works.
    held: list[np.ndarray] | None = []
    early: dict[int, np.ndarray] = {}  # kept frames already shrunk, at the indices the container's count predicted
    held_bytes, length, first_shape = 0, 0, None
    for bgr, rgb, small, predicted in (run_ahead(decoded()) if on_frame is not None else decoded()):
        first_shape = first_shape or bgr.shape
        if on_frame is not None:
            on_frame(rgb, length)
        if small is not None:
            early[length] = small
        if predicted:  # source frames (~1 MB each at 720p) cost more held than a missed one decoded again
            held = None
        if held is not None:
            held_bytes += bgr.nbytes if not held or bgr is not held[-1] else 0  # a repeat is the same array
            held.append(bgr)
            if held_bytes > budget_mb * 2**20:
                held = None
        length += 1
    if not length:
        raise _no_frames(path, stats)
    kept = np.asarray(keep(length), dtype=np.int64)
    wanted = set(kept.tolist())
    target = _target_size(first_shape, None, max_side)
    frames: list[np.ndarray | None] = [None] * length
    for i in wanted & early.keys():  # the guess was right for these (for all, unless the container's count is off)
        frames[i] = early[i]
    if any(frames[i] is None for i in wanted):
        pairs = enumerate(held) if held is not None else enumerate(_resampled(path, fps, None))
        for i, bgr in pairs:
            if i in wanted and frames[i] is None:
                frames[i] = _convert(bgr, target, False)
            if i >= kept.max():
                break
    if any(frames[i] is None for i in wanted):  # the second decode gave fewer frames than the first
        raise SignlipError(f"{path} decoded differently on a second read — {_REENCODE}")
    return frames


def check_decoded(stats: dict, min_fraction: float, source: str = "") -> str | None:
    """Judge a decode's `stats` (`read_frames`) against its container: SignlipError "truncated: decoded 13 of 36
    frames" when fewer than `min_fraction` of the declared frames decoded; a note (kept, but short) when fewer than
    all but at least that many; None when complete or the container declares no count (nothing to compare with)."""
    decoded, declared = stats.get("decoded", 0), stats.get("container_frames", -1)
    if declared <= 0 or decoded >= declared:
        return None
    what = f"decoded {decoded} of {declared} frames"
    if decoded < min_fraction * declared:
        where = f" {source}" if source else ""
        lower = math.floor(100 * decoded / declared) / 100
        raise SignlipError(f"truncated or damaged video{where}: {what} its container declares (below "
                           f"min_decoded_fraction {min_fraction:g}) — re-encode or replace it; to keep what decodes, "
                           f"set data.prepare.min_decoded_fraction={lower:g} (signlip prepare / train)")
    return f"truncated: {what}, kept (min_decoded_fraction {min_fraction:g})"


def read_clip(
    path: str | Path,
    fps: float | None = 25.0,
    n_frames: int | None = 32,
    size: tuple[int, int] | None = (64, 96),
    gray: bool = True,
    pad: str = "both",
) -> np.ndarray:
    """Read a video as a fixed-shape clip: resample to `fps`, resize to `size` = (H, W), then sample/pad to `n_frames`.

    Returns uint8 `(n_frames, H, W)` (gray) or `(n_frames, H, W, 3)` (RGB). `n_frames=None` keeps the resampled length.
    """
    frames = read_frames(path, fps=fps, size=size, gray=gray)
    return temporal_sample(frames, n_frames, pad) if n_frames is not None else frames


def video_writer_spec(path: str | Path) -> str:
    """FourCC this OpenCV build writes and reads back reliably for the file's extension (.mp4 → mp4v, .avi → MJPG)."""
    ext = Path(path).suffix.lower()
    if ext == ".mp4":
        return "mp4v"
    if ext == ".avi":
        return "MJPG"
    raise ValueError(f"unsupported video extension {ext!r}; use .mp4 or .avi")


def write_video(path: str | Path, frames: np.ndarray, fps: float = 25.0) -> Path:
    """Write uint8 gray `(T, H, W)` or RGB `(T, H, W, 3)` frames to .mp4 (mp4v) or .avi (MJPG). Returns the path."""
    import cv2

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if frames.ndim not in (3, 4) or len(frames) == 0:
        raise ValueError(f"expected non-empty (T, H, W[, 3]) frames, got shape {frames.shape}")
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*video_writer_spec(p)), float(fps), (w, h), True)
    if not writer.isOpened():
        raise SignlipError(f"OpenCV cannot write video {p} — check the folder is writable and the codec is available")
    try:
        for f in frames:
            writer.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR if f.ndim == 2 else cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return p
