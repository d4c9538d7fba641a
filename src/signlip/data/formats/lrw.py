"""LRW (Lip Reading in the Wild, Chung & Zisserman 2016): `<WORD>/<split>/<WORD>_<nnnnn>.mp4`, a `.txt` beside each.

500 words, split folders train/val/test, every clip 29 frames (1.16 s) at 25 fps with the word in its middle. The
`.txt` holds, among other lines, `Duration: 0.53 seconds`: how long the word itself is (lip-reading toolkits read
that line for the "word boundary" variant, e.g. mpc001's Lipreading_using_Temporal_Convolutional_Networks).

Raw manifest: `path,label,split,duration` (seconds; empty when the clip has no `.txt` — the clip is still used,
only without its boundary). The duration travels on into the prepared manifest; `word_boundary` turns it into the
per-frame 0/1 vector of the word's frames. Prepare with `data.prepare.n_frames=29` (fps 25 is the default): the
clip as published, frame for frame.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from signlip.data.formats import FORMATS, write_csv
from signlip.errors import SignlipError

SPLITS = ("train", "val", "test")
FPS, N_FRAMES = 25, 29  # every LRW clip
_DURATION = re.compile(r"^\s*Duration:\s*([0-9]*\.?[0-9]+)\s*(seconds)?\s*$", re.MULTILINE)


def _is_word(name: str) -> bool:
    return name.isupper() and name.replace("'", "").isalpha()


def _word_folders(root: Path) -> list[Path]:
    """Upper-case word folders that hold split folders (LRW's own layout)."""
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and _is_word(p.name) and any((p / s).is_dir() for s in SPLITS))


def is_lrw(root: Path) -> bool:
    return any(all((p / s).is_dir() for s in SPLITS) for p in _word_folders(root))


def read_duration(path: Path) -> float:
    """The word's duration (s) from an LRW `.txt`; SignlipError naming the file when it has no `Duration:` line."""
    match = _DURATION.search(path.read_text(encoding="utf-8", errors="replace"))
    if match is None:
        raise SignlipError(f"{path} has no 'Duration: <seconds> seconds' line — restore it from the LRW download, or "
                           f"delete the .txt to use the clip without its word boundary")
    return float(match.group(1))


def word_boundary(duration: float | None, n_frames: int = N_FRAMES, fps: float = FPS) -> np.ndarray:
    """Per-frame 0/1 `(n_frames,)` float32: 1 on the frames of a word `duration` seconds long centred in the clip, as
    the word-boundary variant of lip-reading toolkits marks it (⌊duration / 2 · fps⌋ frames either side of the middle
    frame, one more before); all ones when the duration is unknown."""
    out = np.zeros(n_frames, np.float32)
    if duration is None:
        out[:] = 1
        return out
    half, mid = int(duration / 2 * fps), (n_frames - 1) // 2
    out[max(0, mid - half - 1):min(mid + half + 1, n_frames)] = 1
    return out


@FORMATS.register("lrw", detect=is_lrw, modalities=("clips",),
                  help="LRW: <WORD>/<train|val|test>/<WORD>_<nnnnn>.mp4 + .txt (word duration)")
def lrw(root: Path, out: Path) -> Path:
    """Raw manifest of the LRW clips under `root` (the download's `lipread_mp4` folder). A `.txt` without its
    `.mp4` is kept as a missing video (the prepare report lists it)."""
    from signlip.run_logger import console

    words = _word_folders(root)
    if not words:
        raise SignlipError(f"{root} has no LRW word folders — data.root must be the folder holding "
                           f"ABOUT/, ABSOLUTELY/, … each with train/ val/ test/ (LRW's lipread_mp4)")
    rows, no_txt = [], 0
    for word in words:
        for split in SPLITS:
            folder = word / split
            stems = sorted({p.stem for p in folder.glob(f"{word.name}_*") if p.suffix in (".mp4", ".txt")}) \
                if folder.is_dir() else []
            for stem in stems:
                txt = folder / f"{stem}.txt"
                duration = f"{read_duration(txt):g}" if txt.is_file() else ""
                no_txt += not duration
                rows.append([str(folder / f"{stem}.mp4"), word.name, split, duration])
    if not rows:
        raise SignlipError(f"no {{WORD}}_nnnnn.mp4 in the word folders of {root} — unpack LRW's videos there")
    write_csv(out, ["path", "label", "split", "duration"], rows)
    counts = {s: sum(r[2] == s for r in rows) for s in SPLITS}
    console.print(f"LRW: {len(rows)} clip(s) of {len(words)} word(s) (train {counts['train']}, val {counts['val']}, "
                  f"test {counts['test']})" + (f"; {no_txt} without a .txt, used without their word boundary"
                                               if no_txt else ""), soft_wrap=True)
    return out
