"""Convert a GISLR-style dataset (Google Isolated Sign Language Recognition) into signlip's landmark format.

Input folder: `train.csv` with columns `path,participant_id,sequence_id,sign` (paths relative to the folder), one
parquet per sequence with columns `frame,row_id,type,landmark_index,x,y,z` and `type` ∈ face / left_hand / pose /
right_hand (543 points per frame). Output: one float32 `(T, 543, 3)` `.npy` per sequence (NaN = not detected) and a
manifest `path,label,signer` (participant → signer, so signlip's seeded splits stay signer-disjoint).

pyarrow is an optional extra (`pip install signlip[gislr]`), imported only here.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np

from signlip.data.formats import write_csv
from signlip.data.holistic.features import N_POINTS, PART_SIZES, PARTS, hand_present
from signlip.errors import SignlipError

REQUIRED_COLUMNS = ("frame", "type", "landmark_index", "x", "y", "z")
CSV_COLUMNS = ("path", "participant_id", "sequence_id", "sign")
REPORT_FILE = "gislr_report.csv"


def _pyarrow_parquet():
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise SignlipError("reading GISLR parquet files needs pyarrow — pip install signlip[gislr]") from None
    return pq


def read_gislr_parquet(path: str | Path) -> np.ndarray:
    """One GISLR parquet → `(T, 543, 3)` float32, frames in ascending `frame` order, NaN where absent.

    Raises SignlipError naming the file when required columns are missing or a row has an unknown type /
    out-of-range landmark_index."""
    pq = _pyarrow_parquet()
    path = Path(path)
    schema_names = pq.read_schema(path).names
    missing = [c for c in REQUIRED_COLUMNS if c not in schema_names]
    if missing:
        raise SignlipError(f"{path}: GISLR parquet lacks column(s) {', '.join(missing)} — expected columns "
                           f"frame,row_id,type,landmark_index,x,y,z")
    table = pq.read_table(path, columns=list(REQUIRED_COLUMNS))
    frame = table.column("frame").to_numpy(zero_copy_only=False).astype(np.int64)
    kind = np.asarray(table.column("type").to_pylist(), dtype=object)
    lm = table.column("landmark_index").to_numpy(zero_copy_only=False).astype(np.int64)
    xyz = np.stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float32) for c in "xyz"], 1)
    offset = np.full(len(kind), -1, np.int64)
    size = np.zeros(len(kind), np.int64)
    for name, part in PARTS.items():
        sel = kind == name
        offset[sel], size[sel] = part.start, PART_SIZES[name]
    bad = (offset < 0) | (lm < 0) | (lm >= size)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SignlipError(f"{path}: row {i} has type {kind[i]!r} / landmark_index {lm[i]}, outside the "
                           f"face(468)/left_hand(21)/pose(33)/right_hand(21) layout")
    frames, pos = np.unique(frame, return_inverse=True)
    out = np.full((len(frames), N_POINTS, 3), np.nan, np.float32)
    out[pos, offset + lm] = xyz
    return out


def read_gislr_index(root: str | Path, limit: int | None = None) -> list[dict[str, str]]:
    """Rows of `<root>/train.csv` (path, participant_id, sequence_id, sign; values stripped).

    SignlipError when the file is missing, lacks a column, or has a row with an empty value."""
    index = Path(root).expanduser() / "train.csv"
    if not index.is_file():
        raise SignlipError(f"{index} not found — data.root must be the GISLR folder holding train.csv")
    with index.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        cols = [c.strip() for c in reader.fieldnames or []]
        reader.fieldnames = cols
        rows = list(reader)
    missing = [c for c in CSV_COLUMNS if c not in cols]
    if missing:
        raise SignlipError(f"{index} lacks column(s) {', '.join(missing)} — expected path,participant_id,"
                           f"sequence_id,sign")
    out = []
    for line, rec in enumerate(rows if limit is None else rows[:limit], start=2):
        clean = {c: (rec.get(c) or "").strip() for c in CSV_COLUMNS}
        empty = [c for c, v in clean.items() if not v]
        if empty:
            raise SignlipError(f"{index} line {line}: empty {', '.join(empty)} — fill it in or delete the row")
        out.append(clean)
    if not out:
        raise SignlipError(f"{index} has no rows — add one row per sequence")
    return out


def convert_gislr(root: str | Path, out_dir: str | Path | None = None, overwrite: bool = False,
                  limit: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> tuple[Path, list[tuple[str, str]]]:
    """Convert the GISLR dataset under `root` into `out_dir` (default `<root>/signlip`): arrays/<participant>/
    <sequence_id>.npy + manifest.csv (`path,label,signer`) + gislr_report.csv. Returns (manifest, report).

    `report` lists (parquet path, reason) for sequences left out — no hand in any frame, unreadable file, file
    missing — and is not fatal. Structural problems (train.csv or a parquet lacking columns) raise SignlipError.
    Resumable: arrays already written are reused unless `overwrite`. `progress(done, total)` is called per row."""
    root = Path(root).expanduser()
    rows = read_gislr_index(root, limit)
    out_dir = Path(out_dir).expanduser() if out_dir is not None else root / "signlip"
    out_dir.mkdir(parents=True, exist_ok=True)
    _pyarrow_parquet()  # fail early, before any work, if pyarrow is missing
    manifest_rows: list[tuple[str, str, str]] = []
    report: list[tuple[str, str]] = []
    for n, rec in enumerate(rows, start=1):
        src = root / rec["path"]
        signer, seq, label = rec["participant_id"], rec["sequence_id"], rec["sign"]
        rel = f"arrays/{signer}/{seq}.npy"
        dst = out_dir / rel
        try:
            if dst.is_file() and not overwrite:
                arr = np.load(dst, mmap_mode="r")
            elif not src.is_file():
                report.append((str(src), "file not found"))
                continue
            else:
                arr = read_gislr_parquet(src)
                if hand_present(arr).any():
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    tmp = dst.with_name(dst.stem + ".tmp.npy")
                    np.save(tmp, arr)
                    tmp.replace(dst)  # atomic: a killed run never leaves half an array
        except SignlipError:
            raise
        except Exception as exc:  # noqa: BLE001 — unreadable / corrupt parquet: report and go on
            report.append((str(src), f"unreadable: {type(exc).__name__}: {exc}"))
            continue
        if len(arr) == 0 or not hand_present(np.asarray(arr)).any():
            report.append((str(src), "no hand in any frame"))
        else:
            manifest_rows.append((rel, label, signer))
        if progress is not None:
            progress(n, len(rows))
    write_csv(out_dir / REPORT_FILE, ("path", "reason"), report)
    if not manifest_rows:
        raise SignlipError(f"no usable sequence in {root} — see {out_dir / REPORT_FILE}")
    manifest = out_dir / "manifest.csv"
    write_csv(manifest, ("path", "label", "signer"), manifest_rows)
    return manifest, report
