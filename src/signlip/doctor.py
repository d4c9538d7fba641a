"""`signlip doctor`: a pre-flight check of a task's data, pipeline and model — about a minute on CPU.

It works on the registry/`DataBundle` contract alone (no per-task code), so every task that trains can be checked:

- data audit: samples per class per split, class balance, split sizes vs. the precision they allow, sample files
  missing/unreadable, duplicated sample files (content hash) within and across splits, speakers/signers in more
  than one split, frame counts, NaN/inf/constant inputs, temporal order (consecutive vs. random frames);
- a PNG grid of what the model sees: a few training samples per class after preprocessing *and* augmentation
  (the bundle's `batch_transform(training=True)`), labelled with the class the model is trained with;
- overfit-one-batch: a fresh model must drive the loss on one small batch (augmentation off) to ~0;
- a short real run must beat chance on val; with `doctor.shuffle_control=true` the same run on shuffled training
  labels must stay at chance. Memorising one batch works on shuffled labels too, so it is this real-vs-shuffled
  comparison that flags labels that do not belong to their inputs.

`run_doctor(config, settings, run_dir)` takes the plain resolved config; the CLI wraps it (exit 0: no fail, 1: fail).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from signlip.errors import SignlipError

DEFAULTS: dict[str, Any] = {
    "picture": {"per_class": 2, "max_classes": 12, "file": "doctor_samples.png"},
    "overfit": {"batch_size": 32, "steps": 300, "lr": None, "target_loss": 0.05, "max_seconds": 40.0},
    "short_run": {"epochs": 3, "max_updates": 200, "max_seconds": 25.0},
    "shuffle_control": False,
    "training": True,
    "audit": {"max_samples": 20000, "hash_max_mb": 4096, "balance_warn_ratio": 3.0, "ci_warn_half_width": 0.05,
              "order_warn_ratio": 0.85},
}
MARK = {"pass": "[green]PASS[/green]", "warn": "[yellow]WARN[/yellow]", "fail": "[bold red]FAIL[/bold red]",
        "info": "[cyan]INFO[/cyan]", "skip": "[dim]SKIP[/dim]"}
# MediaPipe hand: wrist 0, thumb 1–4, index 5–8, middle 9–12, ring 13–16, pinky 17–20.
HAND_EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
              (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20)]


@dataclass
class Check:
    section: str
    name: str
    status: str  # pass | warn | fail | info | skip
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


def merge(defaults: dict[str, Any], given: dict[str, Any] | None) -> dict[str, Any]:
    out = dict(defaults)
    for key, value in (given or {}).items():
        out[key] = merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out


def _few(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f" … (+{len(items) - n})" if len(items) > n else "")


# --- data audit -----------------------------------------------------------------------------------------------
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
        parts = [f"{len(missing)} missing ({_few(missing)})" if missing else "",
                 f"{len(unreadable)} unreadable ({_few(unreadable)})" if unreadable else ""]
        return Check("data", "sample files", "fail", f"{len(m.paths)} rows: " + "; ".join(p for p in parts if p)
                     + " — fix the paths (relative to the manifest's folder) or remove the rows",
                     {"missing": missing, "unreadable": unreadable})
    return Check("data", "sample files", "pass", f"{len(m.paths)} rows, every file present and readable")


def audit_counts(data, cfg: dict[str, Any]) -> list[Check]:
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
        detail += f"; fewer than 5 training samples: {_few(thin)}"
    for s, names in absent.items():
        detail += f"; no {s} samples for {_few(names)}"
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
            half = 1.96 * math.sqrt(0.25 / max(n, 1))  # worst case (accuracy 0.5)
            status = "warn" if half > cfg["ci_warn_half_width"] else "pass"
            checks.append(Check("data", f"{split} size", status, f"{n} samples: an accuracy is known to about "
                                f"±{half:.3f} (95%)" + (" — too few to report more than a rough figure"
                                                        if status == "warn" else ""), {"n": n, "half_width": half}))
    return checks


def audit_groups(data) -> Check:
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
                     f"{len(leaks)} in more than one split: {_few(shown)} — val/test then measure people the model "
                     f"has seen; keep each speaker/signer in one split (drop the split column to let signlip split)",
                     {"shared": leaks})
    return Check("data", "speakers/signers across splits", "pass", f"disjoint ({sizes} speakers/signers)")


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


def audit_duplicates(data, cfg: dict[str, Any]) -> Check:
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
    if across:
        shown = [" = ".join(f"{Path(p).name} [{s}]" for s, p in v[:2]) for v in across]
        return Check("data", "duplicate samples", "fail", f"{len(across)} identical sample file(s) in more than one "
                     f"split: {_few(shown, 2)} — the model is tested on what it trained on; remove the copies",
                     {"across_splits": [[list(x) for x in v] for v in across], "within_split": len(within)})
    if within:
        shown = [" = ".join(Path(p).name for _, p in v[:2]) for v in within]
        return Check("data", "duplicate samples", "warn", f"{len(within)} group(s) of identical files within a split: "
                     f"{_few(shown, 2)} — duplicates over-weight those samples", {"within_split": len(within)})
    return Check("data", "duplicate samples", "pass", f"{hashed} files by content hash: no duplicates")


def _iter_raw(ds, limit: int, chunk: int = 64):
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


def audit_values(data, transform, device: torch.device, cfg: dict[str, Any]) -> list[Check]:
    """Frame counts, NaN/inf/constant inputs (raw and after the transform) and temporal order."""
    limit = cfg["max_samples"]
    n_total = nan_values = values = 0
    all_nan, constant, nonfinite_out, zero_out, samples = [], [], [], [], 0
    model_t, real_frames = None, []
    consec, random_pairs = 0.0, 0.0
    gen = torch.Generator().manual_seed(0)
    for split, ds in data.splits.items():
        paths = list(getattr(ds, "paths", []))
        for raw in _iter_raw(ds, limit):
            x = raw["x"]
            b = x.shape[0]
            idx = raw["index"].tolist()
            xf = x.float().reshape(b, -1)
            nan = torch.isnan(xf)
            nan_values += int(nan.sum())
            values += xf.numel()
            for row in torch.nonzero(nan.all(1)).flatten().tolist():
                all_nan.append(f"{paths[idx[row]] if paths else idx[row]} [{split}]")
            filled = torch.where(nan, torch.zeros((), dtype=xf.dtype), xf)
            count = (~nan).sum(1).clamp(min=1)
            mean = filled.sum(1) / count
            var = (torch.where(nan, torch.zeros((), dtype=xf.dtype), xf - mean[:, None]) ** 2).sum(1) / count
            for row in torch.nonzero((var < 1e-12) & ~nan.all(1)).flatten().tolist():
                constant.append(f"{paths[idx[row]] if paths else idx[row]} [{split}]")
            if "mask" in raw:
                real_frames += raw["mask"].sum(1).tolist()
            if x.ndim >= 3:
                model_t = max(model_t or 0, int(x.shape[1]))
            out = transform({k: v.to(device) for k, v in raw.items()}, training=False)
            xo = out["x"].float()
            finite = torch.isfinite(xo.reshape(b, -1)).all(1).cpu()
            for row in torch.nonzero(~finite).flatten().tolist():
                nonfinite_out.append(f"{paths[idx[row]] if paths else idx[row]} [{split}]")
            for row in torch.nonzero((xo.reshape(b, -1).abs().amax(1) == 0).cpu()).flatten().tolist():
                zero_out.append(f"{paths[idx[row]] if paths else idx[row]} [{split}]")
            if split == "train":
                # Point positions only: derived motion features (velocity, …) are noisy over time by nature.
                k = int(x.shape[2]) if x.ndim == 4 and x.shape[-1] == 3 else None
                xs = xo[..., : k * 3] if k and xo.ndim == 3 and xo.shape[-1] % (k * 3) == 0 else xo
                c, r = _order_stats(xs, out.get("mask"), gen)
                consec += c
                random_pairs += r
            samples += b
        n_total += len(ds)
    checks = []
    # Frame counts: of the sample files where they are arrays, else of the real (masked) frames.
    frames = _frames_from_files([p for ds in data.splits.values() for p in getattr(ds, "paths", [])], limit)
    source = "sample files"
    if not frames and real_frames:
        frames, source = [int(f) for f in real_frames], "real frames after loading"
    if frames:
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
        checks.append(Check("data", "frames per sample", status, detail,
                            {"min": int(f.min()), "median": float(np.median(f)), "max": int(f.max()),
                             "model_T": model_t}))
    else:
        checks.append(Check("data", "frames per sample", "skip", "no frame axis found"))
    problems, status = [], "pass"
    if nonfinite_out:
        status = "fail"
        problems.append(f"{len(nonfinite_out)} sample(s) hold NaN/inf after the transform ({_few(nonfinite_out)}) — "
                        f"the model would get them as they are")
    if all_nan:
        status = "fail" if len(all_nan) > 0.5 * n_total else ("warn" if status == "pass" else status)
        problems.append(f"{len(all_nan)} sample(s) entirely NaN, nothing detected ({_few(all_nan)})")
    if constant:
        status = "fail" if len(constant) > 0.5 * n_total else ("warn" if status == "pass" else status)
        problems.append(f"{len(constant)} constant sample(s) ({_few(constant)})")
    if zero_out and len(zero_out) > len(all_nan):
        status = "warn" if status == "pass" else status
        problems.append(f"{len(zero_out)} sample(s) all zero after the transform ({_few(zero_out)})")
    nan_share = nan_values / max(values, 1)
    summary = f"{samples} samples scanned; {nan_share:.1%} of raw values NaN (missing points)"
    checks.append(Check("data", "NaN / inf / constant inputs", status,
                        summary + ("; " + "; ".join(problems) if problems else "; none constant, none non-finite"),
                        {"nan_share": nan_share, "all_nan": len(all_nan), "constant": len(constant),
                         "nonfinite_after_transform": len(nonfinite_out)}))
    if random_pairs > 0:
        ratio = consec / random_pairs
        status = "warn" if ratio > cfg["order_warn_ratio"] else "pass"
        detail = (f"consecutive frames differ {ratio:.2f}× as much as random frame pairs of the same sample"
                  + (" — frames look shuffled or unrelated over time (a frame-order bug?); look at the picture"
                     if status == "warn" else " (ordered, smooth sequences)"))
        checks.append(Check("data", "temporal order", status, detail, {"ratio": ratio}))
    return checks


def _order_stats(x: torch.Tensor, mask: torch.Tensor | None, gen: torch.Generator) -> tuple[float, float]:
    """Sum of |x[t+1] − x[t]| and of |x[t] − x[π(t)]| (random π) over real frames; x (B, T, ...) or (B, C, T, H, W)."""
    if x.ndim == 5:
        x = x.transpose(1, 2)
    if x.ndim < 3 or x.shape[1] < 3:
        return 0.0, 0.0
    x = x.flatten(2).cpu()
    b, t = x.shape[:2]
    m = mask.cpu().bool() if mask is not None and mask.shape == (b, t) else torch.ones(b, t, dtype=torch.bool)
    m = m & (x != 0).any(-1)  # all-zero frames were missing (NaN → 0) or padding
    pair = m[:, 1:] & m[:, :-1]
    consec = ((x[:, 1:] - x[:, :-1]).abs().mean(-1) * pair).sum().item() / max(pair.sum().item(), 1)
    total, n = 0.0, 0
    for i in range(b):
        real = torch.nonzero(m[i]).flatten()
        if len(real) < 3:
            continue
        perm = real[torch.randperm(len(real), generator=gen)]
        total += (x[i, real] - x[i, perm]).abs().mean(-1).sum().item()
        n += int((perm != real).sum())
    rand = total / max(n, 1)
    return consec * b, rand * b


# --- picture --------------------------------------------------------------------------------------------------
def picture(data, transform, device: torch.device, out: Path, cfg: dict[str, Any], seed: int) -> Check:
    """A grid of training samples per class as the model gets them (preprocessed + augmented), labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = data.splits["train"]
    classes = data.classes
    shown = np.unique(np.linspace(0, len(classes) - 1, min(cfg["max_classes"], len(classes))).round().astype(int))
    rng = np.random.default_rng(seed)
    picks = []
    for c in shown:
        rows = np.flatnonzero(ds.labels == c)
        picks += [int(i) for i in rng.choice(rows, size=min(cfg["per_class"], len(rows)), replace=False)]
    torch.manual_seed(seed)
    raw = ds.__getitems__(picks)
    batch = transform({k: v.to(device) for k, v in raw.items()}, training=True)
    x = batch["x"].detach().float().cpu()
    mask = batch.get("mask")
    mask = mask.cpu().bool() if mask is not None and mask.shape == x.shape[:2] else None
    raw_x = raw["x"]
    k_points = int(raw_x.shape[2]) if raw_x.ndim == 4 and raw_x.shape[-1] == 3 else None
    panels = 2 if x.ndim == 3 else 1
    per_row = cfg["per_class"] * panels
    fig, axes = plt.subplots(len(shown), per_row, figsize=(2.4 * per_row, 2.1 * len(shown)), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    slot: dict[int, int] = defaultdict(int)
    row_of = {int(c): r for r, c in enumerate(shown)}
    for j, sample in enumerate(picks):
        label = int(batch["y"][j])
        r = row_of.get(label, 0)
        col = slot[r] * panels
        slot[r] += 1
        title = f"{classes[label]} (y={label}) #{sample}"
        xi = x[j]
        real = int(mask[j].sum()) if mask is not None else (xi.shape[0] if xi.ndim >= 2 else 1)
        if xi.ndim == 4:  # (C, T, H, W) clip → frame strip
            _frame_strip(axes[r, col], xi, title)
        elif xi.ndim == 3 and xi.shape[-1] == 3:  # (T, K, 3) points
            _skeleton(axes[r, col], xi[:real].numpy(), title)
        elif xi.ndim == 2:  # (T, F) features: points (first K·3 features) + the raw feature heat-map
            pts = _points_view(xi[:real], transform, k_points)
            if pts is not None:
                _skeleton(axes[r, col], pts, title)
            else:
                axes[r, col].set_title(title, fontsize=7)
            ax = axes[r, col + 1]
            ax.set_axis_on()
            shown_x = xi[:real].T.numpy()
            scale = float(np.percentile(np.abs(shown_x), 99)) if shown_x.size else 1.0
            ax.imshow(shown_x, aspect="auto", cmap="coolwarm", vmin=-scale or -1, vmax=scale or 1,
                      interpolation="nearest")
            ax.set_title(f"input {tuple(xi[:real].shape)} (T→, F↓)", fontsize=6)
            ax.tick_params(labelsize=5)
        else:
            axes[r, col].set_axis_on()
            axes[r, col].plot(xi.flatten().numpy(), lw=0.5)
            axes[r, col].set_title(title, fontsize=7)
    fig.suptitle(f"what the model sees: train split after preprocessing + augmentation ({len(shown)} of "
                 f"{len(classes)} classes); points coloured by frame, dark → light = early → late", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return Check("picture", "what the model sees", "info", f"{len(picks)} samples of {len(shown)} classes → {out}",
                 {"path": str(out)})


def _points_view(x: torch.Tensor, transform, k_points: int | None) -> np.ndarray | None:
    """(T, F) model input → (T, K, 3) points when its first K·3 features are point coordinates (undoing a
    per-feature standardisation held by the transform as `mean`/`std`)."""
    f = x.shape[-1]
    k = k_points if k_points and f % (k_points * 3) == 0 else (f // 3 if f % 3 == 0 and not k_points else None)
    if not k:
        return None
    mean, std = getattr(transform, "mean", None), getattr(transform, "std", None)
    x = x[(x != 0).any(1)]  # frames that are all 0 were missing (NaN) or padding
    if torch.is_tensor(mean) and torch.is_tensor(std) and mean.numel() == f and std.numel() == f:
        x = x * std.detach().cpu().flatten() + mean.detach().cpu().flatten()
    return x[:, : k * 3].reshape(x.shape[0], k, 3).numpy()


def _skeleton(ax, pts: np.ndarray, title: str) -> None:
    import matplotlib.pyplot as plt

    ax.set_axis_on()
    t = pts.shape[0]
    colours = plt.cm.viridis(np.linspace(0, 1, max(t, 2)))
    for i in range(t):
        ax.scatter(pts[i, :, 0], pts[i, :, 1], s=2, color=colours[i], linewidths=0)
    if pts.shape[1] == 21:
        for i in sorted({0, t // 2, t - 1}):
            for a, b in HAND_EDGES:
                ax.plot(pts[i, [a, b], 0], pts[i, [a, b], 1], color=colours[i], lw=0.7)
    else:  # the path of the centroid over time
        with np.errstate(all="ignore"):
            centre = np.nanmean(pts[..., :2], axis=1)
        ax.plot(centre[:, 0], centre[:, 1], color="k", lw=0.5)
    ax.invert_yaxis()  # image coordinates: y grows downwards
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(title, fontsize=7)
    ax.tick_params(labelsize=5)


def _frame_strip(ax, clip: torch.Tensor, title: str, n: int = 8) -> None:
    c, t = clip.shape[:2]
    idx = np.unique(np.linspace(0, t - 1, min(n, t)).round().astype(int))
    frames = clip[:, idx]  # (C, n, H, W)
    lo, hi = frames.min(), frames.max()
    frames = (frames - lo) / max(float(hi - lo), 1e-6)
    strip = torch.cat(list(frames.permute(1, 2, 3, 0)), dim=1).numpy()  # (H, n·W, C)
    ax.set_axis_on()
    ax.imshow(strip[..., 0] if c == 1 else strip[..., :3], cmap="gray" if c == 1 else None)
    ax.set_title(f"{title} · frames {idx[0]}…{idx[-1]}", fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


# --- training checks ------------------------------------------------------------------------------------------
class _Parts:
    """Fresh model / objective / optimizer from the config, the way `signlip train` builds them."""

    def __init__(self, config: dict[str, Any], data, device: torch.device):
        self.config, self.data, self.device = config, data, device

    def model(self):
        from signlip.build import instantiate, model_spec
        from signlip.registry import MODELS

        return instantiate(MODELS, model_spec(self.config, self.data), hint="model.*").to(self.device)

    def objective(self, smoothing: bool = True):
        from signlip.build import instantiate, objective_spec
        from signlip.registry import OBJECTIVES

        entry = objective_spec(self.config, self.data)
        if not smoothing and "label_smoothing" in entry["kwargs"]:
            entry["kwargs"]["label_smoothing"] = 0.0  # smoothing keeps the loss above 0 by design
        return instantiate(OBJECTIVES, entry, hint="objective.*")

    def optimizer(self, model, lr: float | None = None, weight_decay: bool = True):
        from signlip.optim import build_optimizer

        cfg = dict(self.config["optim"])
        name = cfg.pop("name")
        if lr is not None:
            cfg["lr"] = lr
        if not weight_decay:
            cfg["weight_decay"] = 0.0
        return build_optimizer(model.parameters(), name, **cfg)



def _update(model, objective, optimizer, batch, clip: float) -> dict:
    """One plain optimizer update (the doctor's probes need no AMP, accumulation or schedules)."""
    out = objective(model, batch)
    optimizer.zero_grad(set_to_none=True)
    out["loss"].backward()
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return out

def overfit_one_batch(parts: _Parts, transform, cfg: dict[str, Any], clip: float, seed: int) -> Check:
    data = parts.data
    ds = data.splits["train"]
    rng = np.random.default_rng(seed)
    # A class-diverse batch: round-robin over classes.
    queues = [list(rng.permutation(np.flatnonzero(ds.labels == c))) for c in range(len(data.classes))]
    picks: list[int] = []
    while len(picks) < min(cfg["batch_size"], len(ds)) and any(queues):
        for q in queues:
            if q and len(picks) < cfg["batch_size"]:
                picks.append(int(q.pop()))
    torch.manual_seed(seed)
    raw = ds.__getitems__(picks)
    batch = transform({k: v.to(parts.device) for k, v in raw.items()}, training=False)  # augmentation off
    model = parts.model()
    objective = parts.objective(smoothing=False)
    optimizer = parts.optimizer(model, cfg["lr"], weight_decay=False)

    def evaluate() -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            out = objective(model, batch)
        model.train()
        return float(out["loss"]), float((out["outputs"].argmax(1) == batch["y"]).float().mean())

    first, _ = evaluate()
    start = time.perf_counter()
    steps = 0
    loss, acc = first, 0.0
    model.train()
    for steps in range(1, cfg["steps"] + 1):
        _update(model, objective, optimizer, batch, clip)
        if steps % 10 == 0 or steps == cfg["steps"]:
            loss, acc = evaluate()
            if (loss < cfg["target_loss"] and acc == 1.0) or time.perf_counter() - start > cfg["max_seconds"]:
                break
    loss, acc = evaluate()
    seconds = time.perf_counter() - start
    info = {"initial_loss": first, "final_loss": loss, "accuracy": acc, "steps": steps, "batch": len(picks),
            "seconds": seconds}
    detail = f"{len(picks)} samples, {steps} steps ({seconds:.0f} s): loss {first:.3f} → {loss:.4f}, accuracy {acc:.0%}"
    if loss < cfg["target_loss"] and acc == 1.0:
        return Check("training", "overfit one batch", "pass", detail, info)
    if not math.isfinite(loss) or loss > 0.7 * first:
        return Check("training", "overfit one batch", "fail", detail + " — the model cannot even memorise one batch: "
                     "the pipeline or model is broken (inputs all zero/constant after the transform, labels not "
                     "reaching the loss, a frozen or disconnected model, or a learning rate far off: "
                     "doctor.overfit.lr)", info)
    timed_out = seconds > cfg["max_seconds"]
    return Check("training", "overfit one batch", "warn", detail + (" — stopped by doctor.overfit.max_seconds before "
                 "the loss reached ~0; raise it to decide" if timed_out else " — the loss fell but did not reach ~0: "
                 "check the model's capacity, dropout and doctor.overfit.lr"), info)


def short_run(parts: _Parts, transform, loaders, cfg: dict[str, Any], clip: float, seed: int,
              shuffle_labels: bool) -> dict[str, Any]:
    """Train a fresh model briefly (task optimizer, augmentation on); val accuracy + the late training loss."""
    from signlip.evaluators.classification import ClassificationEvaluator
    from signlip.trainer import run_evaluation

    torch.manual_seed(seed)
    model = parts.model()
    objective = parts.objective()
    optimizer = parts.optimizer(model)
    labels = torch.as_tensor(parts.data.splits["train"].labels)
    relabel = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed + 1))] \
        if shuffle_labels else labels
    relabel = relabel.to(parts.device)
    start = time.perf_counter()
    updates, losses = 0, []
    model.train()
    for epoch in range(cfg["epochs"]):
        for sampler in (loaders["train"].sampler, loaders["train"].batch_sampler):
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
        for raw in loaders["train"]:
            batch = transform({k: v.to(parts.device) for k, v in raw.items()}, training=True)
            batch["y"] = relabel[batch["index"]]
            out = _update(model, objective, optimizer, batch, clip)
            losses.append(float(out["loss"].detach()))
            updates += 1
            if updates >= cfg["max_updates"] or time.perf_counter() - start > cfg["max_seconds"]:
                break
        else:
            continue
        break
    evaluator = ClassificationEvaluator(parts.data)
    run_evaluation(model, objective, evaluator, loaders["val"], transform, parts.device)
    logits, y = evaluator._samples
    tail = losses[-max(1, len(losses) // 5):]
    return {"val_accuracy": float((logits.argmax(1) == y).mean()), "n_val": len(y), "updates": updates,
            "class_matching_bound": class_matching_bound(logits.argmax(1), y, len(parts.data.classes), seed),
            "train_loss_first": float(np.mean(losses[: max(1, len(losses) // 5)])) if losses else float("nan"),
            "train_loss_last": float(np.mean(tail)) if tail else float("nan"),
            "seconds": time.perf_counter() - start,
            "val_predicted_share": float(np.bincount(logits.argmax(1)).max() / max(len(y), 1))}


def class_matching_bound(pred: np.ndarray, y: np.ndarray, n_classes: int, seed: int, q: float = 0.995,
                         draws: int = 4000) -> float:
    """The accuracy a model reaches by luck when its predictions cluster by input class but carry no label
    information: the q-quantile of the accuracy over random matchings of predicted to true class names.

    Samples of one class look alike, so an untrained or shuffled-label model tends to give a whole class one
    prediction; then chance varies per class, not per sample, and the binomial bound (per sample) is far too tight
    (one lucky class adds 1/classes). With fewer than 6 classes matchings are too few to judge; 0 then."""
    if n_classes < 6:
        return 0.0
    cm = np.zeros((n_classes, n_classes))
    np.add.at(cm, (y, pred), 1)
    perms = np.argsort(np.random.default_rng(seed).random((draws, n_classes)), axis=1)
    accs = cm[np.arange(n_classes)[None, :], perms].sum(1) / max(len(y), 1)
    return float(np.quantile(accs, q))


def chance_bound(data) -> tuple[float, float]:
    """Chance on val (the best constant guess: the majority share, at least 1/classes) and the accuracy above which
    a run beats it (chance + 3 binomial standard errors, and at least +0.02)."""
    y = data.splits["val"].labels
    chance = max(1.0 / len(data.classes), float(np.bincount(y).max() / len(y)))
    return chance, chance + max(0.02, 3 * math.sqrt(chance * (1 - chance) / len(y)))


def learning_checks(parts: _Parts, transform, loaders, cfg: dict[str, Any], clip: float, seed: int) -> list[Check]:
    chance, binomial = chance_bound(parts.data)
    real = short_run(parts, transform, loaders, cfg["short_run"], clip, seed, shuffle_labels=False)
    bound = max(binomial, real["class_matching_bound"])
    beats = real["val_accuracy"] > bound
    head = (f"{real['updates']} updates ({real['seconds']:.0f} s): val accuracy {real['val_accuracy']:.3f} vs chance "
            f"{chance:.3f} (beats it above {bound:.3f}); train loss {real['train_loss_first']:.3f} → "
            f"{real['train_loss_last']:.3f}")
    checks = []
    if not cfg["shuffle_control"]:
        if beats:
            checks.append(Check("training", "short real run beats chance", "pass", head, real))
        else:
            checks.append(Check("training", "short real run beats chance", "warn", head + " — no learning signal "
                                "yet: labels may not belong to their inputs (mis-joined/shuffled manifest) or the "
                                "run is too short; run again with doctor.shuffle_control=true", real))
        return checks
    shuffled = short_run(parts, transform, loaders, cfg["short_run"], clip, seed, shuffle_labels=True)
    shuffled_bound = max(binomial, shuffled["class_matching_bound"])
    info = {"real": real, "shuffled": shuffled, "chance": chance, "bound": bound, "shuffled_bound": shuffled_bound}
    # Real labels carry structure that generalises across training samples, so their loss falls faster than the
    # loss on shuffled labels (which can only be memorised). Equal losses mean the real labels look shuffled.
    loss_gap = (shuffled["train_loss_last"] - real["train_loss_last"]) / max(shuffled["train_loss_last"], 1e-6)
    info["loss_gap"] = loss_gap
    vs = (f"real: val {real['val_accuracy']:.3f}, train loss {real['train_loss_last']:.3f}; shuffled labels: val "
          f"{shuffled['val_accuracy']:.3f}, train loss {shuffled['train_loss_last']:.3f}; chance {chance:.3f} "
          f"(luck bounds {bound:.3f} / {shuffled_bound:.3f}), {real['updates']} updates each")
    if beats and shuffled["val_accuracy"] <= shuffled_bound:
        checks.append(Check("training", "label-shuffle control", "pass", vs + " — the real labels are learnable and "
                            "the shuffled control stays at chance", info))
    elif not beats:
        why = ("the real run learns no faster than on shuffled labels: the labels do not belong to their inputs "
               "(shuffled or mis-joined manifest, wrong label column, a sort that broke the file↔label pairing)"
               if loss_gap < 0.1 else
               "the real run fits train faster than shuffled labels but does not transfer to val: val differs from "
               "train (new people, another recording setup) or the run is too short (doctor.short_run.*)")
        checks.append(Check("training", "label-shuffle control", "fail", vs + " — " + why, info))
    else:
        checks.append(Check("training", "label-shuffle control", "fail", vs + " — a model trained on shuffled labels "
                            "beats chance on val: labels leak through something other than the inputs (sample "
                            "order, duplicates, class-dependent padding or file properties)", info))
    return checks


class _SkipTraining(Exception):
    pass


# --- the command ----------------------------------------------------------------------------------------------
def run_doctor(config: dict[str, Any], settings, run_dir: str | Path, console=None) -> dict[str, Any]:
    """Run every check; print the table; write `doctor.json` (and the picture) into `run_dir`. Returns the report;
    `report["ok"]` is False when any check failed."""
    from rich.table import Table

    from signlip.build import build_data, data_settings, seed_everything
    from signlip.config import check_config
    from signlip.data.loaders import make_loaders
    from signlip.run_logger import console as default_console
    from signlip.sweep import wide
    from signlip.trainer import select_device

    console = console or default_console
    started = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = merge(DEFAULTS, config.get("doctor"))
    task = config.get("task_name", "custom")
    seed = int(config.get("seed", 0))
    device = select_device(settings.device)
    check_config(config, settings, device)  # a bad override is one line, exit 2 — not a table of failures
    clip = float(settings.grad_clip_norm)
    seed_everything(seed)
    checks: list[Check] = []
    timings: dict[str, float] = {}
    console.print(f"[bold]signlip doctor[/bold] task={task} on {device} — run folder {run_dir}", soft_wrap=True)

    def timed(name: str, fn, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        finally:
            timings[name] = time.perf_counter() - t0
        return result

    data_entry, loader_kwargs = data_settings(config["data"])
    data_name, data_kwargs = data_entry["name"], data_entry["kwargs"]
    data = None
    try:
        data = timed("data", build_data, config, seed)
    except SignlipError as exc:
        checks.append(Check("data", "data builds", "fail", str(exc)))
        manifest = data_kwargs.get("manifest")
        if manifest:
            try:
                checks.append(audit_manifest_files(manifest))
            except SignlipError as inner:
                checks.append(Check("data", "manifest", "fail", str(inner)))
    if data is not None:
        n = sum(len(ds) for ds in data.splits.values())
        checks.append(Check("data", "data builds", "pass", f"{data_name}: {n} samples, {len(data.classes)} classes, "
                            f"splits {', '.join(data.splits)} ({timings['data']:.1f} s)"))
        manifest = data.preprocessing.get("manifest") or data_kwargs.get("manifest")
        if manifest and Path(manifest).is_file():
            checks.append(timed("files", audit_manifest_files, manifest))
        checks += audit_counts(data, cfg["audit"])
        checks.append(audit_groups(data))
        checks.append(timed("hash", audit_duplicates, data, cfg["audit"]))
        transform = data.batch_transform.to(device)
        checks += timed("values", audit_values, data, transform, device, cfg["audit"])
        try:
            checks.append(timed("picture", picture, data, transform, device, run_dir / cfg["picture"]["file"],
                                cfg["picture"], seed))
        except Exception as exc:  # noqa: BLE001 — a picture that cannot be drawn must not hide the other checks
            checks.append(Check("picture", "what the model sees", "warn", f"could not draw it: {type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''}"))
        try:
            if not cfg["training"]:
                raise _SkipTraining
            parts = _Parts(config, data, device)
            checks.append(timed("overfit", overfit_one_batch, parts, transform, cfg["overfit"], clip, seed))
            if "val" in data.splits:
                loader_kwargs = {k: v for k, v in loader_kwargs.items() if k != "num_workers"}
                loaders = make_loaders(data, seed=seed, **loader_kwargs)
                checks += timed("short_run", learning_checks, parts, transform, loaders, cfg, clip, seed)
        except _SkipTraining:
            checks.append(Check("training", "overfit one batch / short runs", "skip", "doctor.training=false"))
        except SignlipError as exc:
            checks.append(Check("training", "model trains", "fail", str(exc)))
    elapsed = time.perf_counter() - started
    table = Table(title=f"signlip doctor — task {task}", show_lines=False)
    for col in ("", "check", "result", "details"):
        table.add_column(col, overflow="fold")
    for c in checks:
        table.add_row(c.section, c.name, MARK[c.status], c.detail)
    wide(console).print(table)
    fails = [c for c in checks if c.status == "fail"]
    warns = [c for c in checks if c.status == "warn"]
    pic = next((c.data["path"] for c in checks if c.section == "picture" and "path" in c.data), None)
    if pic:
        console.print(f"picture of what the model sees: {pic}", soft_wrap=True)
    verdict = ("[bold red]FAIL[/bold red]: fix the failed checks before training" if fails else
               "[yellow]passed with warnings[/yellow]" if warns else "[green]all checks passed[/green]")
    console.print(f"{verdict} — {len(fails)} fail, {len(warns)} warn, {len(checks)} checks in {elapsed:.0f} s",
                  soft_wrap=True)
    report = {"task": task, "ok": not fails, "seconds": elapsed, "timings": timings,
              "checks": [asdict(c) for c in checks], "picture": pic}
    (run_dir / "doctor.json").write_text(json.dumps(report, indent=2, default=str))
    return report
