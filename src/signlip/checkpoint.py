"""Self-describing checkpoints: written atomically, loaded with `weights_only=True` only.

A checkpoint is a dict of tensors and plain data: model name + kwargs + state, classes, the resolved config,
the preprocessing contract, training state (optimizer, schedule, scaler, epoch, step, early stopping, RNG)
and the metrics history. `evaluate` needs nothing else.
"""

from __future__ import annotations

import errno
import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from signlip.errors import SignlipError

# 2: "evaluator_state" (was "chance_alarm"), "objective" and "evaluator" specs in the contract.
FORMAT_VERSION = 2


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    """Write `payload` to `path` atomically (temp file in the same folder, fsync, `os.replace`).

    A crash or a full disk leaves the previous file at `path` untouched.
    """
    return _write_atomically(Path(path), lambda fh: torch.save(payload, fh), resume_from=Path(path))


def copy_checkpoint(source: str | Path, path: str | Path) -> Path:
    """Copy a written checkpoint file to `path` as atomically as `save_checkpoint` writes one (no re-serialising)."""
    import shutil

    def copy(fh) -> None:
        with open(source, "rb") as src:
            shutil.copyfileobj(src, fh, length=1 << 22)

    return _write_atomically(Path(path), copy, resume_from=Path(source))


def _write_atomically(path: Path, write, resume_from: Path) -> Path:
    """`write(fh)` into a temp file beside `path`, fsync, `os.replace`; a full disk is one line naming what is kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise SignlipError(f"disk full while writing checkpoint {path} — the previous checkpoint there is kept; "
                               f"free some space and resume with trainer.resume={resume_from}") from None
        raise
    _fsync_dir(path.parent)
    _remove_stale_tmp(path)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (power loss), where the platform allows opening a folder."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_stale_tmp(path: Path) -> None:
    """Temp files of this checkpoint left by writers that were killed mid-write (kill -9): their pid is gone."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2: -len(".tmp")]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # alive under another user, or not ours to judge


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a signlip checkpoint safely (`weights_only=True`); refuse anything that would run pickled code."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SignlipError(f"checkpoint {path} not found — pass the path of a last.pt/best.pt written by signlip train")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SignlipError(f"refusing to load {path}: it holds pickled objects, not just tensors and plain data "
                           f"({first}) — only load checkpoints written by signlip from sources you trust") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise SignlipError(f"checkpoint {path} is unreadable or truncated ({type(exc).__name__}) — "
                           f"use another checkpoint (e.g. best.pt beside it)") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_state" not in ckpt:
        raise SignlipError(f"{path} is not a signlip checkpoint (no model contract inside) — "
                           f"pass a last.pt/best.pt written by signlip train")
    version = ckpt.get("format_version", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise SignlipError(f"{path} is a checkpoint of format {version}, newer than this signlip reads "
                           f"({FORMAT_VERSION}) — upgrade signlip (pip install -U signlip)")
    return upgrade(ckpt)


def upgrade(ckpt: dict[str, Any]) -> dict[str, Any]:
    """Bring an older checkpoint to the current format (the contract keys it lacked are derived from its config)."""
    if ckpt.get("format_version", 1) < 2:
        objective = dict((ckpt.get("config") or {}).get("objective") or {"name": "classify"})
        ckpt["objective"] = {"name": objective.pop("name", "classify"), "kwargs": objective}
        ckpt["evaluator"] = {"name": "classification", "kwargs": {}}
        ckpt["evaluator_state"] = ckpt.pop("chance_alarm", None) or {}
        ckpt["format_version"] = 2
    if isinstance(ckpt.get("config"), dict):  # keys renamed since (one spelling per idea), whatever the format
        from signlip.config import upgrade_config

        ckpt["config"] = upgrade_config(ckpt["config"])
    return ckpt


def capture_rng() -> dict[str, Any]:
    """RNG states of Python, NumPy and torch (CPU and CUDA) as tensors and plain data."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached": float(cached)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def find_latest(root: str | Path, task: str | None = None) -> Path | None:
    """The most recently written `last.pt` under `root` (optionally of one task), for `trainer.resume=auto`."""
    candidates = sorted(Path(root).glob("**/checkpoints/last.pt"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        if task is None:
            return path
        try:
            if load_checkpoint(path).get("task") == task:
                return path
        except SignlipError:
            continue
    return None
