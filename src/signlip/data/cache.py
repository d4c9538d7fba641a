"""`signlip prepare`: raw media → cached arrays + a prepared manifest, once, in parallel, resumable.

A data module registers a *preparer* under its own name. The runner here is shared: it turns each row of a raw
manifest into one `.npy` in a cache folder (skipping rows already done with the same settings), lists the rows it
could not use in `prepare_report.csv` with the reason (that file means "left out", nothing else), lists what it
measured on each prepared row (a video's decoded frames, its face's roll, a note when a short video was kept) in
`prepare_details.csv`, stores the preprocessing fingerprint in `fingerprint.json`, and writes the prepared manifest
(`path,label,split,<group>`) that training reads. The cache folder and the manifest are named by the raw manifest
and a hash of the fingerprint: two settings never share (or overwrite) a cache.

Sharded (`prepare.shard=K/N`, N machines or cluster jobs sharing the cache folder): a run prepares only the rows
whose index i in the raw manifest has i % N == K - 1 and writes its own parts (`prepare_report.K-of-N.csv`,
`prepare_details.K-of-N.csv`, `prepared.K-of-N.csv`), never the common files; `prepare.merge=true` then checks
that every shard ran and no row is missing or twice, and writes the common files exactly as one unsharded run.
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import json
import multiprocessing
import os
import re
import socket
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from signlip.data.clips.frame_range import COLUMNS as RANGE_COLUMNS  # a row that cuts a sample out of a video
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
    target: str = "label"  # the raw manifest's column for `label`: "glosses" (a gloss sentence) travels on as such

    @property
    def key(self) -> str:
        # Stable, unique and readable: the file stem plus a hash of the full path — and of the frame range, where a
        # row cuts one (WLASL: several signs from one long video are several samples).
        cut = "".join(f"|{k}={self.extra[k]}" for k in RANGE_COLUMNS if self.extra.get(k, "").strip())
        digest = hashlib.sha1((self.source + cut).encode()).hexdigest()[:12]
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
    shard: str | None = None  # "K/N" when this run prepared one shard: `manifest` is then its part


@dataclass(frozen=True)
class Sharding:
    """`prepare.shard=K/N` / `prepare.merge=true`: which rows a run prepares, and the command that runs a shard."""

    index: int = 1  # K, from 1
    count: int = 1  # N; 1 = not sharded
    merge: bool = False
    command: str = "signlip prepare <the same task and data settings>"

    @classmethod
    def parse(cls, shard: str | None, merge: bool = False, command: str | None = None) -> Sharding:
        found = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", shard or "1/1")
        k, n = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
        if not 1 <= k <= n:
            raise SignlipError(f"prepare.shard={shard} — give K/N with 1 ≤ K ≤ N, e.g. prepare.shard=1/4 … 4/4")
        if merge and n > 1:
            raise SignlipError(f"prepare.shard={shard} with prepare.merge=true — run the shards first, then the merge "
                               f"alone (prepare.merge=true without prepare.shard)")
        return cls(k, n, merge, command or cls.command)

    @property
    def sharded(self) -> bool:
        return self.count > 1

    @property
    def part(self) -> str:
        return f"{self.index}-of-{self.count}"

    def owns(self, index: int) -> bool:
        # The row's index, not a hash of its path: shards are the same on every machine that reads the same raw
        # manifest (sorted by the adapters), and their sizes differ by one row at most.
        return index % self.count == self.index - 1


# Set by `prepare_data` for the run_prepare of whichever preparer it calls (preparers need not pass it on).
_SHARDING: ContextVar[Sharding | None] = ContextVar("signlip_prepare_sharding", default=None)
PART = re.compile(r"prepared\.(\d+)-of-(\d+)\.csv")


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


def prepare_data(name: str, data: dict[str, Any], seed: int, workers: int, overwrite: bool,
                 sharding: Sharding | None = None) -> PrepareResult:
    """`signlip prepare`: run data module `name`'s preparer on the keys of its data group that the preparer takes.

    The data group feeds two consumers — the preparer (raw media → cache) and the data module (cache → batches) —
    and every key of it was checked against its schema before this runs, so the keys the preparer's signature does
    not name (batching, augmentation, normalisation, …) are the data module's, not lost ones. `workers` and
    `overwrite` come from the `prepare` node, which rules here over the data group's own `workers`, and so does
    `sharding` (prepare.shard / prepare.merge), which reaches the preparer's `run_prepare`."""
    preparer = PREPARERS.get(name)
    takes = inspect.signature(preparer).parameters
    kwargs = {k: v for k, v in data.items() if k in takes and k not in ("seed", "workers", "overwrite")}
    token = _SHARDING.set(sharding or Sharding())
    try:
        return preparer(**kwargs, seed=seed, workers=workers, overwrite=overwrite)
    finally:
        _SHARDING.reset(token)


def read_raw_items(raw_manifest: str | Path, seed: int = 0) -> list[Item]:
    """Rows of a raw manifest (videos or landmark files); missing files are kept and reported by the runner."""
    m = read_manifest(raw_manifest, seed=seed, check_files=False, required=())
    return [Item(p, lab, s, g, e, m.target) for p, lab, s, g, e in zip(m.paths, m.labels, m.splits, m.groups, m.extra)]


def _details_path(out: str | Path) -> Path:
    return Path(out).with_suffix(".details.json")


def _work(args: tuple[Callable[[Item], np.ndarray | Prepared], Item, str]) -> tuple[str, str | None]:
    fn, item, out = args
    source = Path(item.source)
    if not (source.is_file() or source.is_dir()):  # a folder of frames (PHOENIX) is a sample too
        # No suffix: the path names a folder (of frames), not a media file.
        return item.source, "frame folder not found" if not source.suffix else "file not found"
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
    (array + details for `prepare_details.csv`). Under `prepare.shard=K/N` only shard K's items run and the files
    written are that shard's parts; under `prepare.merge=true` nothing runs and the parts are joined (`_merge`).
    """
    from signlip.run_logger import console, progress_bar

    sharding = _SHARDING.get() or Sharding()
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
    # has_split is a fact of the whole raw manifest, so every shard's part has the columns the merge writes.
    has_split = all(item.split for item in items)
    if sharding.merge:
        return _merge(items, cache_dir, manifest_out, has_split, group_column, sharding)
    all_items = items
    if sharding.sharded:
        items = [item for i, item in enumerate(items) if sharding.owns(i)]
    if overwrite:
        if sharding.sharded:  # only this shard's files: the other shards' work is theirs
            old_files = [cache_dir / f"{item.key}{ext}" for item in items for ext in (".npy", ".details.json", ".pose")]
        else:
            old_files = [*cache_dir.glob("*.npy"), *cache_dir.glob("*.details.json"), *cache_dir.glob("*.pose")]
        for old_file in old_files:
            old_file.unlink(missing_ok=True)
    _write_atomically(fp_path, json.dumps(fingerprint, indent=2, sort_keys=True))  # shards may write it at once
    todo, reused = [], 0
    for item in items:
        out = cache_dir / f"{item.key}.npy"
        if out.exists():
            reused += 1
        else:
            todo.append((fn, item, str(out)))
    failures: dict[str, str] = {}
    label = f"{description} (shard {sharding.index}/{sharding.count})" if sharding.sharded else description
    with progress_bar(label, len(todo)) as advance:
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
    rows = [item for item in items if item.source not in failures and (cache_dir / f"{item.key}.npy").exists()]
    if sharding.sharded:
        report = cache_dir / f"prepare_report.{sharding.part}.csv"
        details = cache_dir / f"prepare_details.{sharding.part}.csv"
        manifest_out = cache_dir / f"prepared.{sharding.part}.csv"  # written last: the merge's sign the shard finished
    else:
        report, details, manifest_out = cache_dir / REPORT, cache_dir / DETAILS, Path(manifest_out)
    _write_report(report, items, failures)
    notes = _write_details(cache_dir, rows, details)
    _write_manifest(manifest_out, rows, cache_dir, has_split, group_column)
    failed = [(item.source, failures[item.source]) for item in items if item.source in failures]
    if sharding.sharded:
        console.print(f"shard {sharding.index}/{sharding.count} ({len(items)} of {len(all_items)} files): prepared "
                      f"{len(todo) - len(failures)} new, reused {reused}, left out {len(failed)} → part "
                      f"{manifest_out}", soft_wrap=True)
    else:
        console.print(f"prepared {len(todo) - len(failures)} new, reused {reused}, left out {len(failed)} "
                      f"→ manifest {manifest_out}", soft_wrap=True)
    _print_left_out(failed, notes, report, details)
    return PrepareResult(manifest_out, cache_dir, len(todo) - len(failures), reused, failed,
                         f"{sharding.index}/{sharding.count}" if sharding.sharded else None)


def _write_atomically(path: Path, text: str) -> None:
    # Host and pid in the temporary name: shards on several machines may write the same file into one shared folder.
    tmp = path.with_name(f"{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _target_column(items: list[Item]) -> str:
    # A gloss sentence stays under `glosses`: read_manifest takes a `label` column for a class name.
    return "glosses" if any(item.target == "glosses" for item in items) else "label"


def _write_report(path: Path, items: list[Item], failures: dict[str, str]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", _target_column(items), "reason"])
        for item in items:
            if item.source in failures:
                writer.writerow([item.source, item.label, failures[item.source]])


def _write_manifest(manifest_out: Path, rows: list[Item], cache_dir: Path, has_split: bool, group_column: str) -> None:
    manifest_out.parent.mkdir(parents=True, exist_ok=True)
    tmp = manifest_out.with_name(f"{manifest_out.name}.{socket.gethostname()}.{os.getpid()}.tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        # The raw manifest's own columns travel on (LRW's word duration, WLASL's frame range and box): what a model
        # or an analysis may want per sample beyond the array.
        extras = list(dict.fromkeys(k for item in rows for k in item.extra
                                    if k not in ("path", "label", "glosses", "split", group_column, "source")))
        writer.writerow(["path", _target_column(rows), *(["split"] if has_split else []), group_column, "source",
                         *extras])
        for item in rows:
            rel = os.path.relpath(cache_dir / f"{item.key}.npy", manifest_out.parent)
            writer.writerow([rel, item.label, *([item.split] if has_split else []), item.group, item.source,
                             *(item.extra.get(k, "") for k in extras)])
    tmp.replace(manifest_out)


def _print_left_out(failed: list[tuple[str, str]], notes: list[tuple[str, str]], report: Path, details: Path) -> None:
    from signlip.run_logger import console

    if failed:
        console.print(f"[yellow]{len(failed)} file(s) left out[/yellow], listed with reasons in {report}:",
                      soft_wrap=True)
        for source, reason in failed[:10]:
            console.print(f"  {source}: {reason}", soft_wrap=True, markup=False)
        if len(failed) > 10:
            console.print(f"  … and {len(failed) - 10} more")
    if notes:
        console.print(f"[yellow]{len(notes)} prepared file(s) with a note[/yellow], listed in {details}:",
                      soft_wrap=True)
        for source, note in notes[:10]:
            console.print(f"  {source}: {note}", soft_wrap=True, markup=False)


def _read_part(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _merge(items: list[Item], cache_dir: Path, manifest_out: str | Path, has_split: bool, group_column: str,
           sharding: Sharding) -> PrepareResult:
    """`prepare.merge=true`: join the shards' parts in `cache_dir` into the report, details and manifest one
    unsharded run writes; SignlipError when a shard is missing, a part was made from other rows, or a row is in
    two parts. The parts are kept (a merge can be repeated)."""
    from signlip.run_logger import console

    parts = sorted((int(m.group(1)), int(m.group(2))) for p in cache_dir.glob("prepared.*-of-*.csv")
                   if (m := PART.fullmatch(p.name)))
    counts = sorted({n for _, n in parts})
    if not counts:
        raise SignlipError(f"nothing to merge in {cache_dir}: no shard has finished there — run "
                           f"`{sharding.command} prepare.shard=K/N` for K = 1 … N first (same data settings)")
    if len(counts) > 1:
        raise SignlipError(f"{cache_dir} holds parts of {' and '.join(f'{n} shards' for n in counts)} — delete the "
                           f"prepared.K-of-N.csv parts of the sharding you no longer use, then merge again")
    n = counts[0]
    missing_shards = [k for k in range(1, n + 1) if (k, n) not in parts]
    if missing_shards:
        todo = "; ".join(f"{sharding.command} prepare.shard={k}/{n}" for k in missing_shards[:3])
        more = f" (and {len(missing_shards) - 3} more)" if len(missing_shards) > 3 else ""
        raise SignlipError(f"shard(s) {', '.join(f'{k}/{n}' for k in missing_shards)} not run or not finished — "
                           f"run: {todo}{more}; then merge again")
    seen: dict[str, list[int]] = {}
    failures: dict[str, str] = {}
    for k in range(1, n + 1):
        for row in _read_part(cache_dir / f"prepared.{k}-of-{n}.csv"):
            seen.setdefault(row["source"], []).append(k)
        for row in _read_part(cache_dir / f"prepare_report.{k}-of-{n}.csv"):
            seen.setdefault(row["path"], []).append(k)
            failures[row["path"]] = row["reason"]
    known = {item.source for item in items}
    foreign = [s for s in seen if s not in known]
    twice = [s for s, ks in seen.items() if len(ks) > 1]
    absent = [(i, item) for i, item in enumerate(items) if item.source not in seen
              or (item.source not in failures and not (cache_dir / f"{item.key}.npy").exists())]
    if foreign or twice or absent:
        if twice:
            what = f"{len(twice)} file(s) are in two shards' parts ({twice[0]}: shards {seen[twice[0]]})"
        elif foreign:
            what = f"the parts list {len(foreign)} file(s) this raw manifest does not have (first: {foreign[0]})"
        else:
            what = f"{len(absent)} file(s) are in no shard's part (first: {absent[0][1].source})"
        again = sorted({i % n + 1 for i, _ in absent}) if absent and not (twice or foreign) else range(1, n + 1)
        raise SignlipError(f"cannot merge {cache_dir}: {what} — the shards ran on other rows or settings; run "
                           f"`{sharding.command} prepare.shard=K/{n}` again for K = {', '.join(map(str, again))} "
                           f"(it reuses what is done), then merge again")
    rows = [item for item in items if item.source not in failures]
    _write_report(cache_dir / REPORT, items, failures)
    notes = _write_details(cache_dir, rows, cache_dir / DETAILS)
    manifest_out = Path(manifest_out)
    _write_manifest(manifest_out, rows, cache_dir, has_split, group_column)
    failed = [(item.source, failures[item.source]) for item in items if item.source in failures]
    console.print(f"merged {n} shards: {len(rows)} prepared, left out {len(failed)} → manifest {manifest_out}",
                  soft_wrap=True)
    _print_left_out(failed, notes, cache_dir / REPORT, cache_dir / DETAILS)
    return PrepareResult(manifest_out, cache_dir, 0, len(rows), failed)


def _write_details(cache_dir: Path, rows: list[Item], out: Path) -> list[tuple[str, str]]:
    """`prepare_details.csv` (or a shard's part, `out`): one row per prepared file that has details (path, label,
    then the union of the detail keys, `note` last); returns the (source, note) pairs. Nothing is written when no
    preparer gave details."""
    details = {}
    for item in rows:
        p = _details_path(cache_dir / f"{item.key}.npy")
        if p.is_file():
            details[item.source] = json.loads(p.read_text())
    if not details:
        out.unlink(missing_ok=True)
        return []
    keys = sorted({k for d in details.values() for k in d} - {"note"}) + ["note"]
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", _target_column(rows), *keys])
        for item in rows:
            if item.source in details:
                writer.writerow([item.source, item.label, *(details[item.source].get(k, "") for k in keys)])
    return [(s, d["note"]) for s, d in details.items() if d.get("note")]


def require_usable(result: PrepareResult) -> PrepareResult:
    """A prepare run that left every input out is an error (exit 2), not a manifest without rows; its report is
    written already and named here."""
    if result.shard and not result.failed:
        return result  # a shard with no rows of its own (more shards than rows): nothing was left out
    report = result.cache_dir / (f"prepare_report.{result.shard.replace('/', '-of-')}.csv" if result.shard else REPORT)
    if result.prepared + result.reused == 0:
        source, reason = result.failed[0] if result.failed else ("", "")
        first = f" (first: {reason if source in reason else f'{source}: {reason}'})" if result.failed else ""
        raise SignlipError(f"no usable sample: all {len(result.failed)} input(s) were left out{first} — reasons in "
                           f"{report}")
    return result


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
