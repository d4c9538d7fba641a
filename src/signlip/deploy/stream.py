"""Sliding-window recognition over a long video, a long landmark file or a camera (`signlip predict stream=true`).

Frames are decoded one at a time (at the checkpoint's frame rate for clip tasks, as prepare resamples them). The
reader's tracker (MediaPipe in VIDEO mode: face for lip crops, face + hands + pose for holistic tasks) runs once
per frame, so tracking carries across windows and no frame is detected twice. Every `hop` frames the last
`window` frames become one sample through the reader's `window` — the same crop / normalisation prepare applies to
a clip — and the model's probabilities are smoothed over time (exponential, `smoothing`).

Outputs: a per-window CSV (frames, seconds, raw and smoothed top-1, top-k), and with `out=*.mp4` an annotated video
(smoothed label, confidence and the pipeline's frames/s drawn on each frame).

Continuous recognition (CTC checkpoints): a window of a sentence is no sentence, so windows are not labelled
one by one. Each window's per-step outputs over its centre `hop` frames — with `(window − hop) / 2` frames of
context either side, which a bidirectional model needs — are appended to one output sequence for the whole stream
(`GlossStitcher`; the first window also gives its left edge, a last window over the final frames its right edge),
and that sequence is greedy-decoded as it grows: each window's row holds the glosses it added and the transcript so
far. The latency is half a window's context plus a hop. With one window covering the whole input the transcript is
exactly `signlip predict`'s decoding of it.
"""

from __future__ import annotations

import csv
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from signlip.deploy.predict import Recogniser, error_row
from signlip.errors import SignlipError

CTC_WINDOW = 64  # default stream window of a CTC checkpoint, frames: 24 frames of context either side of a 16 hop
TRANSCRIPT_SHOWN = 6  # glosses drawn on an annotated stream of a CTC checkpoint


def frames_of(source: str, fps: float | None, max_side: int | None, max_frames: int | None = None
              ) -> Iterator[tuple[np.ndarray, float]]:
    """(frame, seconds) of a video file (RGB, resampled to `fps`), the rows of a `.npy` (at `fps` or 25 frames/s),
    or `camera:N` (RGB, the latest camera frame at each tick of `fps`)."""
    if source.startswith("camera:"):
        yield from camera_frames(source, fps, max_side, max_frames)
        return
    path = Path(source)
    if not path.is_file():
        raise SignlipError(f"input not found: {path} — give a video (or a landmark .npy), or camera:N")
    if path.suffix.lower() == ".npy":
        rows = np.load(path, allow_pickle=False, mmap_mode="r")
        rate = fps or 25.0
        for i in range(min(len(rows), max_frames or len(rows))):
            yield np.asarray(rows[i], dtype=np.float32), i / rate
        return
    from signlip.data.clips.video import iter_frames, probe_video

    rate = fps or probe_video(path).fps or 25.0
    for i, frame in enumerate(iter_frames(path, fps=fps, max_side=max_side)):
        if max_frames is not None and i >= max_frames:
            return
        yield frame, i / rate


def camera_frames(source: str, fps: float | None, max_side: int | None, max_frames: int | None
                  ) -> Iterator[tuple[np.ndarray, float]]:
    import cv2

    try:
        index = int(source.split(":", 1)[1])
    except ValueError:
        raise SignlipError(f"input={source} — name a camera by its number, e.g. camera:0") from None
    cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        raise SignlipError(f"camera {index} cannot be opened — is one connected (and not used by another program)? "
                           f"Try another number, or give a video file")
    start, n = time.monotonic(), 0
    try:
        while max_frames is None or n < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            t = time.monotonic() - start
            if fps is not None and t < n / fps:  # faster than the model's rate: skip to the next tick
                continue
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            if max_side is not None and max(frame.shape[:2]) > max_side:
                s = max_side / max(frame.shape[:2])
                frame = cv2.resize(frame, (round(frame.shape[1] * s), round(frame.shape[0] * s)),
                                   interpolation=cv2.INTER_AREA)
            yield frame, t
            n += 1
    finally:
        cap.release()


@dataclass
class StreamResult:
    windows: list[dict[str, Any]]
    frames: int
    seconds: float  # wall time of the whole pipeline (decode + tracking + windows + model + drawing)
    csv: Path | None = None
    video: Path | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    transcript: str | None = None  # continuous recognition: the glosses of the whole stream

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


def _buffered(reader, source: str, max_frames: int | None, tracker, frames: deque, tracked: deque
              ) -> Iterator[tuple[int, np.ndarray, float]]:
    """(frames so far, frame, seconds) of the stream, each frame appended to the window buffer first — its landmarks
    too when there is a tracker (MediaPipe in VIDEO mode: once per frame, tracking across windows)."""
    for i, (frame, t) in enumerate(frames_of(source, reader.stream_fps, reader.max_side, max_frames)):
        frames.append(frame)
        if tracker is not None:
            tracked.append(tracker(frame, round(t * 1000.0)))
        yield i + 1, frame, t


class GlossStitcher:
    """One CTC output sequence for a whole stream from overlapping windows, greedy-decoded as it grows (see the
    module docstring). `add` takes a window's log-probabilities over its real output steps and returns the glosses
    they added; steps map to frames in proportion (a temporal stride, or frames a reader dropped)."""

    def __init__(self, window: int, hop: int, classes: list[str]):
        self.context, self.hop, self.classes = (window - hop) // 2, hop, classes
        self.covered = 0  # stream frames whose outputs are in the sequence
        self.previous = 0  # the last step's best output (0 = blank): a repeat across windows is one gloss
        self.glosses: list[str] = []

    def add(self, log_probs: torch.Tensor, start: int, end: int, last: bool = False) -> list[str]:
        """`log_probs` (T', V+1) of the window over stream frames [start, end); `last`: it ends the stream."""
        lo = start if start == 0 else start + self.context
        hi = end if last else start + self.context + self.hop
        lo = max(lo, self.covered)
        if hi <= lo:
            return []
        steps, frames = log_probs.shape[0], end - start
        a, b = (lo - start) * steps // frames, (hi - start) * steps // frames
        self.covered = hi
        new = []
        for k in log_probs[a:b].argmax(-1).tolist():
            if k != 0 and k != self.previous and k <= len(self.classes):
                new.append(self.classes[k - 1])
            self.previous = k
        self.glosses += new
        return new

    def gap(self, end: int) -> None:
        """Frames up to `end` gave no outputs (a window the reader refused): what follows starts a new gloss."""
        self.covered, self.previous = max(self.covered, end), 0

    @property
    def transcript(self) -> str:
        return " ".join(self.glosses)


def run_stream(rec: Recogniser, source: str, window: int | None = None, hop: int | None = None,
               smoothing: float = 0.5, top_k: int = 5, max_frames: int | None = None,
               video_out: str | Path | None = None, on_window=None) -> StreamResult:
    """Slide a window over `source` and predict each; see the module docstring. `on_window(row)` is called as each
    window is scored (a live display)."""
    reader = rec.reader
    kind = ".mp4" if source.startswith("camera:") else Path(source).suffix.lower()
    if kind not in reader.suffixes:
        raise SignlipError(f"this model reads {', '.join(reader.suffixes)} inputs, not {kind or source} — stream a "
                           f"file of that kind")
    # A CTC window holds context either side of the hop it decodes: longer than an isolated sign's.
    window = window or (max(reader.default_window, CTC_WINDOW) if rec.glosses else reader.default_window)
    hop = hop or max(1, window // 4)
    if not 0 <= smoothing < 1:
        raise SignlipError(f"smoothing={smoothing} — give a value in [0, 1) (0 = no smoothing)")
    if rec.glosses:
        return _run_gloss_stream(rec, source, window, hop, max_frames, video_out, on_window)
    frames: deque = deque(maxlen=window)
    tracked: deque = deque(maxlen=window)
    rows: list[dict[str, Any]] = []
    smoothed: torch.Tensor | None = None
    writer, shown = None, ("", 0.0)
    start, n = time.perf_counter(), 0
    tracker = reader.tracker() if not source.endswith(".npy") else None
    try:
        for n, frame, t in _buffered(reader, source, max_frames, tracker, frames, tracked):
            if len(frames) == window and (n - window) % hop == 0:
                row = {"window": len(rows), "start_frame": n - window, "end_frame": n, "start_s": round(
                    t - (window - 1) / (reader.stream_fps or 25.0), 3), "end_s": round(t, 3)}
                try:
                    sample = reader.window(list(frames), list(tracked) if tracker is not None else None)
                except SignlipError as exc:  # e.g. no face in the whole window: said in its row
                    row.update(error_row("", str(exc)))
                else:
                    logits = rec.logits(sample)[0]
                    probs = logits.softmax(-1)
                    smoothed = probs if smoothed is None else smoothing * smoothed + (1 - smoothing) * probs
                    (scored,) = rec.rows(logits[None], top_k)
                    row.update(scored)
                    best = int(smoothed.argmax())
                    row.update(smoothed_label=rec.classes[best], smoothed_probability=float(smoothed[best]))
                    shown = (row["smoothed_label"], row["smoothed_probability"])
                row.pop("input", None)
                rows.append(row)
                if on_window is not None:
                    on_window(row)
            if video_out is not None and frame.ndim == 3:
                writer = writer or AnnotatedWriter(video_out, frame.shape[:2], reader.stream_fps or 25.0)
                writer.write(frame, shown, n / max(time.perf_counter() - start, 1e-9))
    finally:
        if tracker is not None:
            tracker.close()
        if writer is not None:
            writer.close()
    if n == 0:
        raise SignlipError(f"no frame could be read from {source}")
    if not rows:
        raise SignlipError(f"{source} has {n} frames, fewer than one window of {window} — give window=<fewer frames>")
    return StreamResult(rows, n, time.perf_counter() - start, video=Path(video_out) if writer else None,
                        settings={"window": window, "hop": hop, "smoothing": smoothing, "fps": reader.stream_fps})


def _run_gloss_stream(rec: Recogniser, source: str, window: int, hop: int, max_frames: int | None,
                      video_out: str | Path | None, on_window) -> StreamResult:
    """`run_stream` for a CTC checkpoint: windows every `hop` frames stitched into one transcript (`GlossStitcher`);
    a final window over the last frames decodes the stream's end, and an input shorter than a window is one."""
    if hop > window:
        raise SignlipError(f"hop={hop} is longer than window={window}: frames between windows would never be "
                           f"decoded — give hop ≤ window")
    reader = rec.reader
    rate = reader.stream_fps or 25.0
    stitcher = GlossStitcher(window, hop, rec.classes)
    frames: deque = deque(maxlen=window)
    tracked: deque = deque(maxlen=window)
    rows: list[dict[str, Any]] = []
    writer = None
    start, n, last_end, t = time.perf_counter(), 0, 0, 0.0

    def decode(end: int, t_end: float, last: bool) -> None:
        begin = end - len(frames)
        row = {"window": len(rows), "start_frame": begin, "end_frame": end,
               "start_s": round(t_end - (len(frames) - 1) / rate, 3), "end_s": round(t_end, 3)}
        try:
            sample = reader.window(list(frames), list(tracked) if tracker is not None else None)
        except SignlipError as exc:  # e.g. no hand in the whole window: said in its row, a gap in the transcript
            row.update(error_row("", str(exc)))
            stitcher.gap(end)
        else:
            log_probs = rec.logits(sample)[0]
            real = log_probs[~is_padded(log_probs[None])[0]]
            new = stitcher.add(real, begin, end, last=last)
            row.update(status="ok", label=" ".join(new), probability=None, top_k=[], reason="")
        row["transcript"] = stitcher.transcript
        row.pop("input", None)
        rows.append(row)
        if on_window is not None:
            on_window(row)

    from signlip.objectives.ctc import is_padded

    tracker = reader.tracker() if not source.endswith(".npy") else None
    try:
        for n, frame, t in _buffered(reader, source, max_frames, tracker, frames, tracked):
            if len(frames) == window and (n - window) % hop == 0:
                decode(n, t, last=False)
                last_end = n
            if video_out is not None and frame.ndim == 3:
                writer = writer or AnnotatedWriter(video_out, frame.shape[:2], rate)
                tail = stitcher.glosses[-TRANSCRIPT_SHOWN:]
                writer.write(frame, (" ".join(tail), None), n / max(time.perf_counter() - start, 1e-9))
        if n == 0:
            raise SignlipError(f"no frame could be read from {source}")
        if last_end < n or stitcher.covered < n:  # the stream's end: its last frames, decoded to the last one
            decode(n, t, last=True)
    finally:
        if tracker is not None:
            tracker.close()
        if writer is not None:
            writer.close()
    return StreamResult(rows, n, time.perf_counter() - start, video=Path(video_out) if writer else None,
                        settings={"window": window, "hop": hop, "fps": reader.stream_fps},
                        transcript=stitcher.transcript)


class AnnotatedWriter:
    """Frames with the current (smoothed) label, its confidence and the pipeline's frames/s drawn on them."""

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float):
        import cv2

        from signlip.data.clips.video import video_writer_spec

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        h, w = size
        self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*video_writer_spec(self.path)), fps,
                                      (w, h))
        if not self.writer.isOpened():
            raise SignlipError(f"cannot write video {self.path} — choose an .mp4 or .avi path in a writable folder")

    def write(self, frame_rgb: np.ndarray, shown: tuple[str, float | None], fps: float) -> None:
        """`shown`: (label, confidence), or (the transcript's last glosses, None)."""
        import cv2

        img = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
        label, p = shown
        scale = max(0.4, img.shape[1] / 640)
        text = (label if p is None else f"{label} {p:.2f}") if label else "..."
        for colour, thick in (((0, 0, 0), 4), ((255, 255, 255), 1)):  # outlined: readable on any background
            cv2.putText(img, text, (8, int(28 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale, colour, thick)
            cv2.putText(img, f"{fps:.1f} FPS", (8, img.shape[0] - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, colour,
                        thick)
        self.writer.write(img)

    def close(self) -> None:
        self.writer.release()


def write_window_csv(rows: list[dict[str, Any]], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = ["window", "start_frame", "end_frame", "start_s", "end_s", "status", "label", "probability",
            "smoothed_label", "smoothed_probability", "top_k", "reason"]
    if any("transcript" in row for row in rows):  # continuous recognition: the glosses each window added, and so far
        keys = ["window", "start_frame", "end_frame", "start_s", "end_s", "status", "label", "transcript", "reason"]
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "top_k": ";".join(f"{c}:{q:.4f}" for c, q in row.get("top_k", []))})
    tmp.replace(path)
    return path


def stream(ckpt: str | Path, source: str, out: str | Path | None = None, window: int | None = None,
           hop: int | None = None, smoothing: float = 0.5, device: str = "auto", models_dir: str | None = None,
           top_k: int = 5, max_frames: int | None = None) -> StreamResult:
    """`signlip predict … stream=true`: run the stream, print each window's smoothed label as it comes, write the
    per-window CSV (beside `out`, or `out` itself when it is a .csv) and the annotated video (`out=*.mp4|.avi`)."""
    from signlip.run_logger import console

    rec = Recogniser.load(ckpt, device=device, models_dir=models_dir)
    out_path = Path(out) if out else None
    if out_path is not None and out_path.suffix.lower() not in (".mp4", ".avi", ".csv"):
        raise SignlipError(f"out={out} — with stream=true write an annotated .mp4 / .avi (a per-window .csv is written "
                           f"beside it) or just the .csv")
    video_out = out_path if out_path is not None and out_path.suffix.lower() != ".csv" else None
    if getattr(rec.reader, "word_boundary", False):
        console.print("note: this model was trained with word boundaries (LRW); a stream has none, so each window's "
                      "word is taken as the whole window", soft_wrap=True)

    def show(row: dict[str, Any]) -> None:
        if row["status"] != "ok":
            what = f"({row['reason']})"
        elif "transcript" in row:
            what = f"+ {row['label'] or '·'}   | {row['transcript']}"
        else:
            what = f"{row['smoothed_label']} {row['smoothed_probability']:.2f}"
        console.print(f"{row['start_s']:7.2f}–{row['end_s']:.2f} s  {what}", markup=False, soft_wrap=True)

    result = run_stream(rec, source, window, hop, smoothing, top_k, max_frames, video_out, on_window=show)
    csv_path = out_path.with_suffix(".csv") if out_path is not None else None
    if csv_path is not None:
        result.csv = write_window_csv(result.windows, csv_path)
    s = result.settings
    if result.transcript is not None:
        console.print(f"transcript: {result.transcript or '(nothing)'}", markup=False, soft_wrap=True)
    console.print(f"{len(result.windows)} windows of {s['window']} frames every {s['hop']} over {result.frames} "
                  f"frames; pipeline {result.fps:.1f} frames/s end to end" +
                  (f" → {result.csv}" if result.csv else "") + (f", {result.video}" if result.video else ""),
                  soft_wrap=True)
    return result
