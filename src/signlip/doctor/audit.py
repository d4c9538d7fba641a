"""The doctor's data audit: files present and readable, samples per class, class balance, split sizes, speakers /
signers across splits, duplicated files, frame counts, NaN / inf / constant inputs, temporal order.

Every audit reads the `DataBundle` contract only (split datasets with labels, groups, paths; the batch transform), so
it works for every data module. Each returns `Check`s; none raises for a finding.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from signlip.data.base import BatchDataset, BatchTransform, DataBundle
from signlip.doctor.check import Check, few
from signlip.evaluators.classification import samples_for_half_width, worst_half_width


def audit_manifest_files(manifest: str) -> Check:
    """Every sample file of a manifest: present, and readable as an array (lists them all, unlike the loader)."""
    from signlip.data.manifest import read_manifest

    m = read_manifest(manifest, check_files=False, required=())
    missing, unreadable = [], []
    for p in m.paths:
        if not Path(p).is_file():
            missing.append(p)
        elif p.endswith(".npy"):
            try:
                np.load(p, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                unreadable.append(f"{p} ({type(exc).__name__})")
    if missing or unreadable:
        parts = [f"{len(missing)} missing ({few(missing)})" if missing else "",
                 f"{len(unreadable)} unreadable ({few(unreadable)})" if unreadable else ""]
        return Check("data", "sample files", "fail", f"{len(m.paths)} rows: " + "; ".join(p for p in parts if p)
                     + " — fix the paths (relative to the manifest's folder) or remove the rows",
                     {"missing": missing, "unreadable": unreadable})
    return Check("data", "sample files", "pass", f"{len(m.paths)} rows, every file present and readable")


def audit_counts(data: DataBundle, cfg: dict[str, Any]) -> list[Check]:
    """Samples per class per split, class balance (train) and the precision each evaluation split allows."""
    classes = data.classes
    counts = {s: np.bincount(ds.labels, minlength=len(classes)) for s, ds in data.splits.items()}
    per_split = "; ".join(f"{s} {int(c.sum())} ({int(c.min())}–{int(c.max())} per class)" for s, c in counts.items())
    checks = []
    thin = [classes[i] for i in np.flatnonzero(counts["train"] < 5)] if "train" in counts else []
    absent = {s: [classes[i] for i in np.flatnonzero(c == 0)] for s, c in counts.items() if s != "train"}
    absent = {s: v for s, v in absent.items() if v}
    status = "warn" if thin or absent else "pass"
    detail = f"{len(classes)} classes; {per_split}"
    if thin:
        detail += f"; fewer than 5 training samples: {few(thin)}"
    for s, names in absent.items():
        detail += f"; no {s} samples for {few(names)}"
    checks.append(Check("data", "samples per class", status, detail,
                        {s: dict(zip(classes, c.tolist())) for s, c in counts.items()}))
    if "train" in counts:
        c = counts["train"]
        ratio = float(c.max() / max(c.min(), 1))
        status = "warn" if ratio > cfg["balance_warn_ratio"] else "pass"
        checks.append(Check("data", "class balance (train)", status,
                            f"largest/smallest class = {ratio:.2f}"
                            + (" — consider objective.class_weights=balanced or data.stratified=true"
                               if status == "warn" else ""), {"ratio": ratio}))
    for split in ("val", "test"):
        if split in counts:
            n = int(counts[split].sum())
            half = worst_half_width(n)  # the Wilson interval's worst case, as the evaluator's report warns
            status = "warn" if half > cfg["ci_warn_half_width"] else "pass"
            detail = f"{n} samples: an accuracy is known to about ±{half:.3f} (95%)" + (
                f" — too few to report more than a rough figure (≈ "
                f"{samples_for_half_width(cfg['ci_warn_half_width'])} give ±{cfg['ci_warn_half_width']})"
                if status == "warn" else "")
            present = np.flatnonzero(counts[split])
            if len(present) == 1 and len(classes) > 1:
                status = "warn"
                detail = (f"{split} has only class {classes[present[0]]} — the split cannot measure accuracy (any "
                          f"model naming that class scores 100%); {detail}")
            checks.append(Check("data", f"{split} size", status, detail, {"n": n, "half_width": half}))
    return checks


def audit_groups(data: DataBundle) -> Check:
    """Speakers / signers in more than one split (val/test must measure new people)."""
    split_groups = {s: {str(g) for g in ds.groups if str(g)} for s, ds in data.splits.items()}
    if not any(split_groups.values()):
        return Check("data", "speakers/signers across splits", "warn", "no speaker/signer column: cannot check that "
                     "val/test hold new people — add a speaker or signer column to the manifest")
    shared: dict[str, list[str]] = defaultdict(list)
    for s, groups in split_groups.items():
        for g in groups:
            shared[g].append(s)
    leaks = {g: s for g, s in shared.items() if len(s) > 1}
    sizes = ", ".join(f"{s} {len(g)}" for s, g in split_groups.items())
    if leaks:
        shown = [f"{g} ({'+'.join(s)})" for g, s in sorted(leaks.items())]
        return Check("data", "speakers/signers across splits", "fail",
                     f"{len(leaks)} in more than one split: {few(shown)} — val/test then measure people the model "
                     f"has seen; keep each speaker/signer in one split (drop the split column to let signlip split)",
                     {"shared": leaks})
    return Check("data", "speakers/signers across splits", "pass", f"disjoint ({sizes} speakers/signers)")


_SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}


def _file_hash(path: str, cap_bytes: int) -> str | None:
    p = Path(path)
    if not p.is_file():
        return None
    h = hashlib.sha1()
    size = p.stat().st_size
    with p.open("rb") as fh:
        if size <= cap_bytes:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        else:  # very large files: size + head + tail is enough to find copies
            h.update(str(size).encode())
            h.update(fh.read(1 << 20))
            fh.seek(max(0, size - (1 << 20)))
            h.update(fh.read(1 << 20))
    return h.hexdigest()


def audit_duplicates(data: DataBundle, cfg: dict[str, Any]) -> Check:
    """Identical sample files (content hash, within `cfg["hash_max_mb"]`) within a split and across splits."""
    by_hash: dict[str, list[tuple[str, str]]] = defaultdict(list)
    budget = cfg["hash_max_mb"] * 2**20
    hashed = 0
    for split, ds in data.splits.items():
        for p in dict.fromkeys(getattr(ds, "paths", [])):  # a file listed twice counts once per split here
            digest = _file_hash(p, cap_bytes=1 << 26 if budget > 0 else 0)
            if digest is not None:
                by_hash[digest].append((split, p))
                hashed += 1
                budget -= Path(p).stat().st_size
        repeated = [p for p, n in Counter(getattr(ds, "paths", [])).items() if n > 1]
        for p in repeated:
            by_hash["path:" + p].extend([(split, p)] * 2)
    if not hashed:
        return Check("data", "duplicate samples", "skip", "the data module lists no sample files to hash")
    across = [v for v in by_hash.values() if len({s for s, _ in v}) > 1]
    within = [v for v in by_hash.values() if len(v) > 1 and len({s for s, _ in v}) == 1]

    def one_per_split(group: list[tuple[str, str]]) -> str:  # the example shows the splits that share the file
        first = {s: p for s, p in reversed(group)}
        return " = ".join(f"{Path(first[s]).name} [{s}]" for s in sorted(first, key=lambda s: _SPLIT_ORDER.get(s, 3)))

    inside = defaultdict(list)  # split → its groups of identical files
    for v in within:
        inside[v[0][0]].append(" = ".join(Path(p).name for _, p in v[:2]))
    also = "; ".join(f"{len(g)} group(s) of identical files within the {s} split ({few(g, 2)})"
                     for s, g in inside.items())
    if across:
        return Check("data", "duplicate samples", "fail", f"{len(across)} identical sample file(s) across splits: "
                     f"{few([one_per_split(v) for v in across], 2)} — the model is tested on what it trained on; "
                     f"remove the copies" + (f"; also {also}" if also else ""),
                     {"across_splits": [[list(x) for x in v] for v in across], "within_split": len(within)})
    if within:
        return Check("data", "duplicate samples", "warn", f"{also} — duplicates over-weight those samples",
                     {"within_split": len(within)})
    return Check("data", "duplicate samples", "pass", f"{hashed} files by content hash: no duplicates")


def _iter_raw(ds: BatchDataset, limit: int, chunk: int = 64) -> Iterator[dict[str, torch.Tensor]]:
    n = min(len(ds), limit)
    for start in range(0, n, chunk):
        yield ds.__getitems__(list(range(start, min(n, start + chunk))))


def _frames_from_files(paths: list[str], limit: int) -> list[int]:
    frames = []
    for p in paths[:limit]:
        if p.endswith(".npy") and Path(p).is_file():
            try:
                arr = np.load(p, mmap_mode="r", allow_pickle=False)
                if arr.ndim >= 2:
                    frames.append(int(arr.shape[0]))
            except (OSError, ValueError):
                continue
    return frames


def audit_values(data: DataBundle, transform: BatchTransform, device: torch.device, cfg: dict[str, Any]) -> list[Check]:
    """Frame counts, NaN/inf/constant inputs (raw and after the transform; per class and per split) and temporal
    order (against a frame-shuffled copy of the same data)."""
    limit = cfg["max_samples"]
    nan_values = values = 0
    nonfinite_out, zero_out, samples = [], [], 0
    # (split, class) → the names of its all-NaN / constant samples; and how many samples each (split, class) has
    all_nan: dict[tuple[str, int], list[str]] = defaultdict(list)
    constant: dict[tuple[str, int], list[str]] = defaultdict(list)
    scanned: Counter = Counter()
    model_t, real_frames, points = None, [], False
    order = np.zeros(4)  # consecutive, random pairs, consecutive in a frame-shuffled copy, pairs across samples
    gen = torch.Generator().manual_seed(0)
    for split, ds in data.splits.items():
        paths = list(getattr(ds, "paths", []))
        for raw in _iter_raw(ds, limit):
            x = raw["x"]
            b = x.shape[0]
            idx = raw["index"].tolist()
            ys = raw["y"].tolist() if "y" in raw and raw["y"].ndim == 1 else [-1] * b
            scanned.update((split, y) for y in ys)

            def name(row: int, split: str = split, paths: list[str] = paths, idx: list[int] = idx) -> str:
                return f"{paths[idx[row]] if paths else idx[row]} [{split}]"

            xf = x.float().reshape(b, -1)
            nan = torch.isnan(xf)
            nan_values += int(nan.sum())
            values += xf.numel()
            for row in torch.nonzero(nan.all(1)).flatten().tolist():
                all_nan[(split, ys[row])].append(name(row))
            filled = torch.where(nan, torch.zeros((), dtype=xf.dtype), xf)
            count = (~nan).sum(1).clamp(min=1)
            mean = filled.sum(1) / count
            var = (torch.where(nan, torch.zeros((), dtype=xf.dtype), xf - mean[:, None]) ** 2).sum(1) / count
            for row in torch.nonzero((var < 1e-12) & ~nan.all(1)).flatten().tolist():
                constant[(split, ys[row])].append(name(row))
            if "mask" in raw:
                real_frames += raw["mask"].sum(1).tolist()
            if x.ndim >= 3:
                model_t = max(model_t or 0, int(x.shape[1]))
            out = transform({k: v.to(device) for k, v in raw.items()}, training=False)
            xo = out["x"].float()
            if getattr(transform, "word_boundary", False):  # judge the clip, not its constant boundary plane
                xo = xo[:, :-1]
            finite = torch.isfinite(xo.reshape(b, -1)).all(1).cpu()
            for row in torch.nonzero(~finite).flatten().tolist():
                nonfinite_out.append(name(row))
            for row in torch.nonzero((xo.reshape(b, -1).abs().amax(1) == 0).cpu()).flatten().tolist():
                zero_out.append(name(row))
            if split == "train":
                # Point positions only: derived motion features (velocity, …) are noisy over time by nature.
                points = x.ndim in (3, 4)  # (B, T, K, 3) points or (B, T, F) features, not (B, C, T, H, W) video
                k = int(x.shape[2]) if x.ndim == 4 and x.shape[-1] == 3 else None
                xs = xo[..., : k * 3] if k and xo.ndim == 3 and xo.shape[-1] % (k * 3) == 0 else xo
                order += _order_stats(xs, out.get("mask"), gen)
            samples += b
    checks = [_frames_check(data, limit, real_frames, model_t)]
    checks.append(_values_check(data.classes, scanned, all_nan, constant, nonfinite_out, zero_out, samples,
                                nan_values / max(values, 1)))
    if order[1] > 0:
        checks.append(_order_check(*order, points, cfg))
    return checks


def _frames_check(data: DataBundle, limit: int, real_frames: list[int], model_t: int | None) -> Check:
    """Frame counts: of the sample files where they are arrays, else of the real (masked) frames."""
    frames = _frames_from_files([p for ds in data.splits.values() for p in getattr(ds, "paths", [])], limit)
    source = "sample files"
    if not frames and real_frames:
        frames, source = [int(f) for f in real_frames], "real frames after loading"
    if not frames:
        return Check("data", "frames per sample", "skip", "no frame axis found")
    f = np.asarray(frames)
    detail = f"{source}: min {f.min()}, median {int(np.median(f))}, max {f.max()}"
    status = "pass"
    if model_t:
        longer = float((f > model_t).mean())
        detail += (f"; the model sees T={model_t}: {longer:.0%} truncated/resampled, "
                   f"{(f < model_t).mean():.0%} padded")
        if np.median(f) > 2 * model_t:
            status = "warn"
            detail += " — most of each sequence is cut off; raise the sequence length"
    if f.min() < 2:
        status = "warn"
        detail += f"; {(f < 2).sum()} sample(s) have a single frame"
    return Check("data", "frames per sample", status, detail,
                 {"min": int(f.min()), "median": float(np.median(f)), "max": int(f.max()), "model_T": model_t})


def _values_check(classes: list[str], scanned: Counter, all_nan: dict, constant: dict, nonfinite_out: list[str],
                  zero_out: list[str], samples: int, nan_share: float) -> Check:
    """The verdict on empty and constant samples, judged per split and per class:

    - FAIL: NaN/inf after the transform; any all-NaN sample in val/test (it would be scored on zeros, a guess
      counted as a measurement); a class of a split that is mostly (> 50%) all-NaN or constant (the model cannot
      learn, or be scored on, that class — however few samples that is of the whole data);
    - WARN: a few all-NaN or constant training samples (trained on zeros: label noise, not a broken pipeline —
      a failed detection here and there is common in real data), samples all zero after the transform."""
    problems, fails = [], []
    if nonfinite_out:
        fails.append(f"{len(nonfinite_out)} sample(s) hold NaN/inf after the transform ({few(nonfinite_out)}) — "
                     f"the model would get them as they are")
    for kind, found in (("entirely NaN (nothing detected)", all_nan), ("constant", constant)):
        for (split, y), names in sorted(found.items(), key=lambda kv: (_SPLIT_ORDER.get(kv[0][0], 3), kv[0][1])):
            label = classes[y] if 0 <= y < len(classes) else "?"
            share = len(names) / max(scanned[(split, y)], 1)
            if share > 0.5:
                fails.append(f"class {label}: {len(names)} of {scanned[(split, y)]} {split} samples {kind} "
                             f"({few(names)}) — the model cannot learn or be scored on that class; fix its files")
    val_nan = [n for (split, _), names in all_nan.items() if split != "train" for n in names]
    if val_nan:
        fails.append(f"{len(val_nan)} val/test sample(s) entirely NaN ({few(val_nan)}) — they would be scored on "
                     f"zeros; re-extract their landmarks or remove them")
    train_nan = [n for (split, _), names in all_nan.items() if split == "train" for n in names]
    if train_nan:
        problems.append(f"{len(train_nan)} training sample(s) entirely NaN, trained on as zeros ({few(train_nan)})")
    n_constant = sum(len(v) for v in constant.values())
    if n_constant:
        problems.append(f"{n_constant} constant sample(s) ({few([n for v in constant.values() for n in v])})")
    n_nan = sum(len(v) for v in all_nan.values())
    if zero_out and len(zero_out) > n_nan:
        problems.append(f"{len(zero_out)} sample(s) all zero after the transform ({few(zero_out)})")
    status = "fail" if fails else "warn" if problems else "pass"
    summary = f"{samples} samples scanned; {nan_share:.1%} of raw values NaN (missing points)"
    return Check("data", "NaN / inf / constant inputs", status,
                 summary + ("; " + "; ".join(fails + problems) if fails or problems
                            else "; none constant, none non-finite"),
                 {"nan_share": nan_share, "all_nan": n_nan, "constant": n_constant,
                  "all_nan_by_split": {s: sum(len(v) for (sp, _), v in all_nan.items() if sp == s)
                                       for s in dict.fromkeys(sp for sp, _ in scanned)},
                  "nonfinite_after_transform": len(nonfinite_out)})


def _order_check(consec: float, random_pairs: float, shuffled: float, across: float, points: bool,
                 cfg: dict[str, Any]) -> Check:
    """Temporal order: consecutive frames against random frame pairs of the same sample (the ratio), and against
    the consecutive frames of a copy of the same data with its frames deliberately shuffled (the control).

    For point data a ratio no lower than the control's is a FAIL: the frames are no more ordered than shuffled
    ones (a frame-order bug, or points that do not follow the body). Video keeps a WARN: a still mouth or a static
    camera shot differs little between any two frames, ordered or not."""
    ratio, control = float(consec / random_pairs), float(shuffled / random_pairs)
    motion = float(random_pairs / across) if across > 0 else 0.0
    info = {"ratio": ratio, "shuffled_ratio": control, "motion": motion}
    # Static samples (a held handshape: frames differ only by tracking jitter) are no more ordered than shuffled ones
    # either — that is no bug. Judge order only where the frames of a sample move a fair share of what tells samples
    # apart.
    if motion < MIN_MOTION:
        return Check("data", "temporal order", "pass", f"frames within a sample differ {motion:.2f}× as much as "
                     f"frames of different samples — mostly static sequences, too little motion to judge frame "
                     f"order", info)
    # The control ratio is ≈ 1 by construction; 5% below it is beyond what the sampling of pairs moves it by.
    if points and ratio > 0.95 * control:
        return Check("data", "temporal order", "fail", f"consecutive frames differ {ratio:.2f}× as much as random "
                     f"frame pairs — no more ordered than the same data with its frames shuffled ({control:.2f}×): "
                     f"the frames are out of order (a sort, a parallel writer, a resample bug); look at the picture",
                     info)
    status = "warn" if ratio > cfg["order_warn_ratio"] else "pass"
    detail = (f"consecutive frames differ {ratio:.2f}× as much as random frame pairs of the same sample "
              f"(frame-shuffled copy: {control:.2f}×)"
              + (" — frames look shuffled or unrelated over time (a frame-order bug?); look at the picture"
                 if status == "warn" else " (ordered, smooth sequences)"))
    return Check("data", "temporal order", status, detail, info)


MIN_MOTION = 0.15  # within-sample frame differences / across-sample ones below which order cannot be judged


def _order_stats(x: torch.Tensor, mask: torch.Tensor | None, gen: torch.Generator) -> np.ndarray:
    """Over real frames of x (B, T, ...) or (B, C, T, H, W): the mean |x[t+1] − x[t]|, the mean |x[t] − x[π(t)]|
    (random π), the mean |y[t+1] − y[t]| of y, a copy of x with its real frames shuffled, and the mean |x[t] − x'[t]|
    between samples of the batch — each times B."""
    if x.ndim == 5:
        x = x.transpose(1, 2)
    if x.ndim < 3 or x.shape[1] < 3:
        return np.zeros(4)
    x = x.flatten(2).cpu()
    b, t = x.shape[:2]
    m = mask.cpu().bool() if mask is not None and mask.shape == (b, t) else torch.ones(b, t, dtype=torch.bool)
    m = m & (x != 0).any(-1)  # all-zero frames were missing (NaN → 0) or padding
    pair = m[:, 1:] & m[:, :-1]
    consec = ((x[:, 1:] - x[:, :-1]).abs().mean(-1) * pair).sum().item() / max(pair.sum().item(), 1)
    total, n, shuffled, n_shuffled = 0.0, 0, 0.0, 0
    for i in range(b):
        real = torch.nonzero(m[i]).flatten()
        if len(real) < 3:
            continue
        perm = real[torch.randperm(len(real), generator=gen)]
        total += (x[i, real] - x[i, perm]).abs().mean(-1).sum().item()
        n += int((perm != real).sum())
        y = x[i, real[torch.randperm(len(real), generator=gen)]]  # the control: the same frames, out of order
        shuffled += (y[1:] - y[:-1]).abs().mean(-1).sum().item()
        n_shuffled += len(real) - 1
    both = m & m.roll(1, 0)
    across = ((x - x.roll(1, 0)).abs().mean(-1) * both).sum().item() / max(both.sum().item(), 1) if b > 1 else 0.0
    return np.array([consec, total / max(n, 1), shuffled / max(n_shuffled, 1), across]) * b
