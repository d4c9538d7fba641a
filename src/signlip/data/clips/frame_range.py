"""A sample that is a stretch of a longer video: the raw manifest's `frame_start` / `frame_end` columns.

Both are frame numbers of the video as decoded (every frame, in order), 1-based and inclusive — WLASL's convention
(its `preprocess.py` keeps `frames[frame_start - 1:frame_end]`); `frame_end` -1 (or empty) means "to the last frame".
Rows without the columns keep the whole video. The clip and holistic preparers both cut with `frame_slice`.
"""

from __future__ import annotations

import numpy as np

from signlip.errors import SignlipError

COLUMNS = ("frame_start", "frame_end")


def frame_range(extra: dict[str, str]) -> tuple[int, int] | None:
    """(frame_start, frame_end) of a raw-manifest row (`Item.extra`), None when the row has no range (or 1, -1)."""
    start_text, end_text = (str(extra.get(k) or "").strip() for k in COLUMNS)
    if not start_text and not end_text:
        return None
    try:
        start = int(float(start_text)) if start_text else 1
        end = int(float(end_text)) if end_text else -1
    except ValueError:
        raise SignlipError(f"frame_start={start_text!r} frame_end={end_text!r} are not frame numbers — give 1-based "
                           f"integers (frame_end -1 = to the last frame) or leave both empty") from None
    if start < 1 or (end > 0 and end < start):
        raise SignlipError(f"frame range {start}..{end} is empty or starts before frame 1 — frame_start is 1-based "
                           f"and frame_end ≥ frame_start (or -1 for the last frame)")
    return None if (start, end) == (1, -1) else (start, end)


def frame_slice(extra: dict[str, str], length: int, scale: float = 1.0) -> slice:
    """The part of a `length`-frame video (axis 0) that the row's range names; all of it without a range. `scale`:
    the rate of those frames over the video's own (resampled from 30 to 25 fps: 25 / 30), so a range in the video's
    frames maps onto the resampled ones."""
    rng = frame_range(extra)
    if rng is None:
        return slice(0, length)
    start, end = rng
    first = round((start - 1) * scale)
    stop = length if end < 0 else min(length, round((end - 1) * scale) + 1)
    if first >= length:
        raise SignlipError(f"frame_start {start} lies past the end of the video ({round(length / scale)} frames) — "
                           f"fix the frame range, or give frame_start 1 and frame_end -1 for the whole video")
    return slice(first, stop)


def cut_frame_range(frames: np.ndarray, extra: dict[str, str], scale: float = 1.0) -> np.ndarray:
    """The frames of `frames` (axis 0) that the row's range names (`frame_slice`)."""
    return frames[frame_slice(extra, len(frames), scale)]
