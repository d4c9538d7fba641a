"""A sample given as a folder of frames (PHOENIX-2014 ships its sentences so): PNG / JPEG images, in name order.

Names are compared with their digit runs as numbers (`images2.png` before `images10.png`), which is plain name order
for the zero-padded names corpora use (`images0001.png`, `…_fn000042-0.png`). A folder holds no frame rate: the raw
manifest's `fps` column gives it (`frame_folder_fps`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from signlip.errors import SignlipError

FRAME_SUFFIXES = (".png", ".jpg", ".jpeg")


def _name_key(path: Path) -> list:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", path.name) if part]


def frame_files(folder: str | Path) -> list[Path]:
    """The frame images of `folder` in name order; SignlipError when it holds none."""
    folder = Path(folder)
    files = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES), key=_name_key)
    if not files:
        raise SignlipError(f"no frame in this folder (no {'/'.join(FRAME_SUFFIXES)} file) — unpack the sentence's "
                           f"frames into it or remove its row")
    return files


def read_frame_folder(folder: str | Path) -> np.ndarray:
    """The frames of `folder` → `(T, H, W, 3)` RGB uint8; SignlipError naming an unreadable or odd-sized frame."""
    import cv2

    frames = []
    for path in frame_files(folder):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SignlipError(f"frame {path.name} cannot be decoded — restore it from the download or delete it")
        if frames and bgr.shape != frames[0].shape:
            raise SignlipError(f"frame {path.name} is {bgr.shape[1]}×{bgr.shape[0]}, the first frame "
                               f"{frames[0].shape[1]}×{frames[0].shape[0]} — one folder must hold one video's frames")
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return np.stack(frames)


def frame_folder_fps(extra: dict[str, str]) -> float | None:
    """The frame rate of a folder row (`fps` column of the raw manifest); None when the row has none."""
    text = str(extra.get("fps") or "").strip()
    if not text:
        return None
    try:
        fps = float(text)
    except ValueError:
        fps = 0.0
    if not 0 < fps <= 1000:
        raise SignlipError(f"fps={text!r} is not a frame rate — give frames per second, e.g. 25")
    return fps


def read_frame_folder_at(folder: str | Path, source_fps: float | None, fps: float | None) -> np.ndarray:
    """`read_frame_folder`, resampled from `source_fps` (the row's `fps` column) to `fps`, nearest in time as videos
    are; the frames as they are when either rate is unknown."""
    frames = read_frame_folder(folder)
    if not source_fps or not fps or abs(source_fps - fps) < 1e-6:
        return frames
    from signlip.data.clips.video import fps_indices

    return frames[fps_indices(np.arange(len(frames)) / source_fps, fps)]
