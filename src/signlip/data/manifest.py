"""Manifest CSVs: `path,label[,split][,speaker|signer][,...]`, paths relative to the manifest's folder. For
continuous recognition a `glosses` column (space-separated glosses of one sentence) takes the place of `label`
(`signlip.data.glosses`); `Manifest.labels` then holds the gloss strings and `Manifest.target` is "glosses".

Without a `split` column a seeded split is made that keeps every speaker/signer inside one split.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from signlip.data.base import SPLITS
from signlip.errors import SignlipError

GROUP_COLUMNS = ("speaker", "signer")


@dataclass
class Manifest:
    """Rows of a manifest with resolved absolute paths, one split label per row."""

    source: Path
    paths: list[str]
    labels: list[str]
    splits: list[str]
    groups: list[str]
    extra: list[dict[str, str]]
    target: str = "label"  # or "glosses": labels are space-separated gloss sequences

    def rows(self, split: str) -> list[int]:
        return [i for i, s in enumerate(self.splits) if s == split]


def read_manifest(path: str | Path, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15,
                  check_files: bool = True, required: tuple[str, ...] = SPLITS) -> Manifest:
    """Read and validate a manifest; assign splits when it has none. Raises SignlipError on bad input."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SignlipError(f"manifest {path} not found — pass an existing CSV with data.manifest=<path>")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            reader.fieldnames = columns
            records = list(reader)
    except UnicodeDecodeError as exc:
        raise SignlipError(f"manifest {path} is not UTF-8 text (byte {exc.start}) — save it as UTF-8 CSV") from None
    except csv.Error as exc:  # NUL bytes, a field over the size limit, …
        raise SignlipError(f"manifest {path} is not a readable CSV ({exc}) — save it as plain UTF-8 CSV") from None
    target = "glosses" if "glosses" in columns and "label" not in columns else "label"
    missing = [c for c in ("path", target) if c not in columns]
    if missing:
        raise SignlipError(f"manifest {path} lacks column(s) {', '.join(missing)} — its header must start with "
                           f"path,label[,split][,speaker|signer] (or path,glosses,… for continuous signing)")
    if not records:
        raise SignlipError(f"manifest {path} has no rows — add one row per sample")
    group_col = next((c for c in GROUP_COLUMNS if c in columns), None)
    base = path.parent
    paths, labels, groups, splits = [], [], [], []
    for line, rec in enumerate(records, start=2):
        raw, label = (rec.get("path") or "").strip(), " ".join((rec.get(target) or "").split())
        if not raw or not label:
            raise SignlipError(f"manifest {path} line {line}: empty path or {target} — fill it in or delete the row")
        full = Path(raw).expanduser()
        full = full if full.is_absolute() else base / full
        if check_files and not full.is_file():
            raise SignlipError(f"sample file {full} (manifest {path} line {line}) not found — "
                               f"fix the path (relative to the manifest's folder) or remove the row")
        paths.append(str(full))
        labels.append(label)
        groups.append((rec.get(group_col) or "").strip() if group_col else "")
        if "split" in columns:
            split = (rec.get("split") or "").strip().lower()
            if split not in SPLITS:
                raise SignlipError(f"manifest {path} line {line}: split {split!r} — use one of {', '.join(SPLITS)}")
            splits.append(split)
    if "split" not in columns:
        try:
            splits = assign_splits(labels, groups, seed, val_fraction, test_fraction)
        except ValueError as exc:  # scikit-learn: too few samples or groups for the fractions
            raise SignlipError(f"manifest {path}: cannot split {len(labels)} samples into train/val/test "
                               f"({str(exc).splitlines()[0] if str(exc) else 'too few'}) — add a split column or more "
                               f"samples") from None
    extra = [{k: v for k, v in rec.items() if k not in ("path", target, "split", group_col)} for rec in records]
    manifest = Manifest(path, paths, labels, splits, groups, extra, target)
    _check_splits(manifest, required)
    return manifest


def assign_splits(labels: list[str], groups: list[str], seed: int, val_fraction: float,
                  test_fraction: float) -> list[str]:
    """Seeded train/val/test split; every group (speaker/signer) stays within one split."""
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    n = len(labels)
    index = np.arange(n)
    has_groups = all(groups) and len(set(groups)) >= 3
    if has_groups:
        group_arr = np.asarray(groups)
        outer = GroupShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
        rest, test = next(outer.split(index, groups=group_arr))
        inner = GroupShuffleSplit(n_splits=1, test_size=val_fraction / (1 - test_fraction), random_state=seed)
        tr, va = next(inner.split(rest, groups=group_arr[rest]))
        train, val = rest[tr], rest[va]
    else:
        # No speaker/signer column: a stratified split by sample (say so — it cannot test on new people).
        label_arr = np.asarray(labels)
        counts = np.unique(label_arr, return_counts=True)[1]
        stratify = label_arr if np.min(counts) >= 3 else None
        # Stratified, val and test get room for at least one sample a class: a tiny balanced set (3 files a class)
        # splits 1/1/1 a class instead of failing (very unequal classes may still miss one in val or test; then
        # `_check_splits` or the doctor says so). sklearn rounds a fraction up; larger sets get the same sizes.
        least = len(counts) if stratify is not None else 1
        n_test = max(math.ceil(test_fraction * n), least)
        rest, test = train_test_split(index, test_size=n_test, random_state=seed, stratify=stratify)
        stratify = label_arr[rest] if stratify is not None else None
        n_val = max(math.ceil(val_fraction / (1 - test_fraction) * len(rest)), least)
        train, val = train_test_split(rest, test_size=n_val, random_state=seed, stratify=stratify)
    out = [""] * n
    for name, rows in (("train", train), ("val", val), ("test", test)):
        for i in rows:
            out[i] = name
    return out


def _check_splits(m: Manifest, required: tuple[str, ...]) -> None:
    for split in required:
        if not m.rows(split):
            raise SignlipError(f"manifest {m.source}: the {split} split is empty — add samples to it, or drop the "
                               f"split column so signlip makes a speaker-disjoint split")
    if "train" not in required or m.target == "glosses":
        # Evaluation data: its labels are checked against the checkpoint's classes instead. Glosses only val/test
        # hold are listed by the data module and counted as errors by the WER (a sentence is more than its glosses).
        return
    train_labels = {m.labels[i] for i in m.rows("train")}
    for split in ("val", "test"):
        unseen = sorted({m.labels[i] for i in m.rows(split)} - train_labels)
        if unseen:
            raise SignlipError(f"manifest {m.source}: label(s) {', '.join(unseen)} appear in {split} but never in "
                               f"train — add training samples for them or remove those rows")


def require_labels(m: Manifest, kind: str) -> None:
    """Data modules that know only one class per sample refuse a manifest of gloss sentences, naming the one that
    reads them."""
    if m.target == "glosses":
        raise SignlipError(f"manifest {m.source} holds gloss sentences (a glosses column), which {kind} data cannot "
                           f"train yet — continuous recognition reads holistic landmarks: task=cslr_landmarks")


def class_names(m: Manifest) -> list[str]:
    """The class list: sorted labels of the train split (stable across runs)."""
    return sorted({m.labels[i] for i in m.rows("train")})


def write_manifest(path: str | Path, rows: list[tuple], group_column: str = "signer", target: str = "label") -> Path:
    """Write `path,<target>,split,<group>` rows atomically (temp file + replace): a crash never leaves half a
    manifest. `target`: label, or glosses for sentences."""
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", target, "split", group_column])
        writer.writerows(rows)
    tmp.replace(path)
    return path


def label_indices(m: Manifest, split: str, classes: list[str]) -> np.ndarray:
    """Class indices of a split's rows; a label outside `classes` (e.g. a checkpoint's) is one clear error."""
    rows = m.rows(split)
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({m.labels[i] for i in rows} - set(index))
    if unknown:
        raise SignlipError(f"{m.source}: label(s) {', '.join(unknown)} in the {split} split are not among the "
                           f"classes ({', '.join(classes)}) — use data with the same classes")
    return np.asarray([index[m.labels[i]] for i in rows], dtype=np.int64)
