"""`signlip prepare`: raw media → cached arrays + a prepared manifest, once, in parallel, resumable.

A data module registers a *preparer* under its own name. The runner here is shared: it turns each row of a raw
manifest into one `.npy` in a cache folder (skipping rows already done with the same settings), lists the rows it
could not use in `prepare_report.csv` with the reason (that file means "left out", nothing else), lists what it
measured on each prepared row (a video's decoded frames, its face's roll, a note when a short video was kept) in
`prepare_details.csv`, stores the preprocessing fingerprint in `fingerprint.json`, and writes the prepared manifest
(`path,label,split,<group>`) that training reads. The cache folder and the manifest are named by the raw manifest
and a hash of the fingerprint: two settings never share (or overwrite) a cache.
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import json
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from signlip.data.manifest import read_manifest
from signlip.errors import SignlipError
from signlip.registry import Registry

PREPARERS = Registry("preparer")
FINGERPRINT = "fingerprint.json"
REPORT = "prepare_report.csv"  # rows left out, with the reason
DETAILS = "prepare_details.csv"  # rows prepared, with what the preparer measured on them


@dataclass
class Item:
    """One raw sample to prepare."""

    source: str
    label: str
    split: str
    group: str
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        # Stable, unique and readable: the file stem plus a hash of the full path.
        digest = hashlib.sha1(self.source.encode()).hexdigest()[:12]
        return f"{Path(self.source).stem[:40]}-{digest}"


@dataclass
class Prepared:
    """A preparer's result when it has more to say than the array: `details` (plain values) go to
    `prepare_details.csv`, one row per prepared file; a `note` among them is also printed."""

    array: np.ndarray
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class PrepareResult:
    manifest: Path
    cache_dir: Path
    prepared: int
    reused: int
    failed: list[tuple[str, str]]


def settings_hash(settings: dict[str, Any]) -> str:
    """Short stable hash of plain settings (a fingerprint), for folder and file names."""
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]


def prepared_locations(raw_manifest: str | Path, cache_dir: str | Path, manifests_dir: str | Path,
                       fingerprint: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Cache folder and prepared-manifest path for one raw manifest prepared with one fingerprint:
    `<cache_dir>/<raw stem>-<path hash>-fp<fingerprint hash>` and `<manifests_dir>/<same name>.prepared.csv` (the path
    hash keeps same-named raw manifests apart, the fingerprint hash two settings of one manifest)."""
    raw = Path(raw_manifest).resolve()
    name = f"{raw.stem}-{hashlib.sha1(str(raw).encode()).hexdigest()[:8]}"
    if fingerprint is not None:
        name += f"-fp{settings_hash(fingerprint)}"
    return Path(cache_dir) / name, Path(manifests_dir) / f"{name}.prepared.csv"


def prepare_data(name: str, data: dict[str, Any], seed: int, workers: int, overwrite: bool) -> PrepareResult:
    """`signlip prepare`: run data module `name`'s preparer on the keys of its data group that the preparer takes.

    The data group feeds two consumers — the preparer (raw media → cache) and the data module (cache → batches) —
    and every key of it was checked against its schema before this runs, so the keys the preparer's signature does
    not name (batching, augmentation, normalisation, …) are the data module's, not lost ones. `workers` and
    `overwrite` come from the `prepare` node, which rules here over the data group's own `workers`."""
    preparer = PREPARERS.get(name)
    takes = inspect.signature(preparer).parameters
    kwargs = {k: v for k, v in data.items() if k in takes and k not in ("seed", "workers", "overwrite")}
    return preparer(**kwargs, seed=seed, workers=workers, overwrite=overwrite)


def read_raw_items(raw_manifest: str | Path, seed: int = 0) -> list[Item]:
    """Rows of a raw manifest (videos or landmark files); missing files are kept and reported by the runner."""
    m = read_manifest(raw_manifest, seed=seed, check_files=False, required=())
    return [Item(p, lab, s, g, e) for p, lab, s, g, e in zip(m.paths, m.labels, m.splits, m.groups, m.extra)]


def _details_path(out: str | Path) -> Path:
    return Path(out).with_suffix(".details.json")


def _work(args: tuple[Callable[[Item], np.ndarray | Prepared], Item, str]) -> tuple[str, str | None]:
    fn, item, out = args
    if not Path(item.source).is_file():
        return item.source, "file not found"
    try:
        arr = fn(item)
    except SignlipError as exc:
        return item.source, str(exc)
    except Exception as exc:  # a broken file must not stop the other thousand; the report names it
        return item.source, f"{type(exc).__name__}: {exc}"
    if isinstance(arr, Prepared):
        # Beside the array, so a resumed run still lists what an earlier one measured.
        _details_path(out).write_text(json.dumps(arr.details))
        arr = arr.array
    tmp = f"{out}.{os.getpid()}.tmp.npy"
    np.save(tmp, arr)
    os.replace(tmp, out)
    return item.source, None


def run_prepare(items: list[Item], fn: Callable[[Item], np.ndarray | Prepared], cache_dir: str | Path,
                fingerprint: dict[str, Any], manifest_out: str | Path, workers: int = 2, overwrite: bool = False,
                group_column: str = "speaker", description: str = "prepare") -> PrepareResult:
    """Run `fn` over `items` into `cache_dir`; write the report, fingerprint and prepared manifest.

    `fn` must be a picklable top-level callable (it runs in worker processes) returning the array, or a `Prepared`
    (array + details for `prepare_details.csv`).
    """
    from signlip.run_logger import console, progress_bar

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    fp_path = cache_dir / FINGERPRINT
    if fp_path.exists() and not overwrite:
        old = json.loads(fp_path.read_text())
        if old != fingerprint:
            changed = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
            # Only `signlip prepare` has a prepare node; deleting the folder works whatever command ran.
            raise SignlipError(f"cache {cache_dir} was prepared with other settings ({', '.join(changed)} differ) — "
                               f"delete that folder (or run `signlip prepare` with the same task and data settings "
                               f"plus prepare.overwrite=true) to rebuild it, or choose another data.cache_dir")
    if overwrite:
        for old_file in [*cache_dir.glob("*.npy"), *cache_dir.glob("*.details.json")]:
            old_file.unlink()
    fp_path.write_text(json.dumps(fingerprint, indent=2, sort_keys=True))
    todo, reused = [], 0
    for item in items:
        out = cache_dir / f"{item.key}.npy"
        if out.exists():
            reused += 1
        else:
            todo.append((fn, item, str(out)))
    failures: dict[str, str] = {}
    with progress_bar(description, len(todo)) as advance:
        if workers > 1 and len(todo) > 1:
            # spawn, not fork: MediaPipe's task runners keep threads, and a worker forked from a process that has
            # used them (a notebook, a test session, `train` after `doctor`) deadlocks when it closes a landmarker.
            with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                for source, reason in pool.map(_work, todo, chunksize=max(1, len(todo) // (workers * 8))):
                    if reason:
                        failures[source] = reason
                    advance()
        else:
            for args in todo:
                source, reason = _work(args)
                if reason:
                    failures[source] = reason
                advance()
    # Rows whose output exists are prepared (this run or an earlier one); failures are retried next time.
    with (cache_dir / REPORT).open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "reason"])
        for item in items:
            if item.source in failures:
                writer.writerow([item.source, item.label, failures[item.source]])
    rows = [item for item in items if item.source not in failures and (cache_dir / f"{item.key}.npy").exists()]
    notes = _write_details(cache_dir, rows)
    manifest_out = Path(manifest_out)
    manifest_out.parent.mkdir(parents=True, exist_ok=True)
    has_split = all(item.split for item in items)
    tmp = manifest_out.with_suffix(".tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", *(["split"] if has_split else []), group_column, "source"])
        for item in rows:
            rel = os.path.relpath(cache_dir / f"{item.key}.npy", manifest_out.parent)
            writer.writerow([rel, item.label, *([item.split] if has_split else []), item.group, item.source])
    tmp.replace(manifest_out)
    failed = [(item.source, failures[item.source]) for item in items if item.source in failures]
    console.print(f"prepared {len(todo) - len(failures)} new, reused {reused}, left out {len(failed)} "
                  f"→ manifest {manifest_out}", soft_wrap=True)
    if failed:
        console.print(f"[yellow]{len(failed)} file(s) left out[/yellow], listed with reasons in "
                      f"{cache_dir / REPORT}:", soft_wrap=True)
        for source, reason in failed[:10]:
            console.print(f"  {source}: {reason}", soft_wrap=True, markup=False)
        if len(failed) > 10:
            console.print(f"  … and {len(failed) - 10} more")
    if notes:
        console.print(f"[yellow]{len(notes)} prepared file(s) with a note[/yellow], listed in "
                      f"{cache_dir / DETAILS}:", soft_wrap=True)
        for source, note in notes[:10]:
            console.print(f"  {source}: {note}", soft_wrap=True, markup=False)
    return PrepareResult(manifest_out, cache_dir, len(todo) - len(failures), reused, failed)


def _write_details(cache_dir: Path, rows: list[Item]) -> list[tuple[str, str]]:
    """`prepare_details.csv`: one row per prepared file that has details (path, label, then the union of the detail
    keys, `note` last); returns the (source, note) pairs. Nothing is written when no preparer gave details."""
    details = {}
    for item in rows:
        p = _details_path(cache_dir / f"{item.key}.npy")
        if p.is_file():
            details[item.source] = json.loads(p.read_text())
    out = cache_dir / DETAILS
    if not details:
        out.unlink(missing_ok=True)
        return []
    keys = sorted({k for d in details.values() for k in d} - {"note"}) + ["note"]
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", *keys])
        for item in rows:
            if item.source in details:
                writer.writerow([item.source, item.label, *(details[item.source].get(k, "") for k in keys)])
    return [(s, d["note"]) for s, d in details.items() if d.get("note")]


def read_fingerprint(paths: list[str]) -> dict[str, Any]:
    """The fingerprint of the cache folder(s) holding these prepared files; all must agree."""
    folders = sorted({str(Path(p).parent) for p in paths})
    prints = []
    for folder in folders:
        fp = Path(folder) / FINGERPRINT
        if not fp.is_file():
            raise SignlipError(f"{folder} has no {FINGERPRINT} — point data.manifest at a manifest written by "
                               f"signlip prepare (or give data.raw_manifest to prepare the videos first)")
        prints.append(json.loads(fp.read_text()))
    if any(p != prints[0] for p in prints[1:]):
        raise SignlipError(f"the prepared files come from caches with different settings ({', '.join(folders)}) — "
                           f"prepare all of them with the same settings")
    return prints[0]


def check_fingerprint(expected: dict[str, Any], found: dict[str, Any], what: str) -> None:
    """Refuse data prepared differently from what a checkpoint was trained on."""
    changed = sorted(k for k in set(expected) | set(found) if expected.get(k) != found.get(k))
    if changed:
        detail = ", ".join(f"{k}: {found.get(k)!r} vs {expected.get(k)!r}" for k in changed[:4])
        raise SignlipError(f"{what} was prepared differently from the checkpoint's data ({detail}) — prepare it again "
                           f"with the checkpoint's settings")
