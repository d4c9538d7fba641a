"""Public dataset layouts → the raw manifest that signlip's preparers read.

A *format adapter* (registered in `FORMATS`) reads a dataset folder in the layout its publishers ship (class
folders, WLASL's JSON, LRW's word folders, …) and writes one raw manifest, `path,label[,split][,speaker|signer]`
plus any per-row columns its preparer uses (`frame_start`/`frame_end`, a box `x,y,w,h`, …). From there the one
`prepare` runner does the work: parallel, resumable, a report of what was left out and why, a fingerprint. A file
the layout names but that is missing is kept in the raw manifest, so the runner's report lists it ("file not
found") instead of it vanishing.

    signlip prepare task=lip_cnnlstm data.root=DIR [data.format=folders] [data.format_options.<key>=…]

(the CLI adds the `+` Hydra wants for a key the config does not list: options differ per layout.)

`data.format=auto` (the default) picks the adapter from what the folder holds (`detect_format`).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from signlip.errors import SignlipError
from signlip.registry import Registry

# name → adapter(root: Path, out: Path, **options) -> Path (the raw manifest it wrote, normally `out`).
# Metadata: `detect=callable(root) -> bool` (for format=auto), `modalities=(...)` the data modules it feeds
# ("clips", "holistic", "landmarks"), `help="one line"`.
FORMATS = Registry("data format")
MANIFEST_FORMATS = ("manifest", "videos")  # not adapters: data.raw_manifest is the user's own CSV


def write_csv(path: str | Path, header: list[str] | tuple[str, ...], rows: list) -> Path:
    """A raw manifest (or report) written atomically, UTF-8: a killed run never leaves half a file."""
    import csv

    path = Path(path)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    tmp.replace(path)
    return path


def detect_format(root: Path, modality: str) -> str:
    """The adapter whose `detect(root)` recognises the folder, for the data module `modality`."""
    load_adapters()
    found = [name for name in FORMATS.names()
             if modality in FORMATS.metadata(name).get("modalities", ())
             and FORMATS.metadata(name).get("detect", lambda _r: False)(root)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise SignlipError(f"cannot tell the layout of {root} — pass data.format=<{'|'.join(supported(modality))}>")
    raise SignlipError(f"{root} matches several layouts ({', '.join(found)}) — choose one with data.format=…")


def supported(modality: str) -> list[str]:
    load_adapters()
    return [n for n in FORMATS.names() if modality in FORMATS.metadata(n).get("modalities", ())]


def load_adapters() -> None:
    """Import every adapter module of this package (each registers itself)."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


def raw_manifest_from(format: str, root: str | Path, options: dict[str, Any] | None, manifests_dir: str | Path,
                      modality: str) -> str:
    """Run adapter `format` (or the detected one, for `auto`) on `root`; return the raw manifest it wrote under
    `manifests_dir`, named by the root and a hash of the options (two settings never share one)."""
    root = Path(root).expanduser().absolute()  # the raw manifest lives elsewhere: its paths must not be relative
    if not root.is_dir():
        raise SignlipError(f"data.root={root} is not a folder — point it at the dataset's top folder")
    if format == "auto":
        format = detect_format(root, modality)
    load_adapters()
    if format not in FORMATS or modality not in FORMATS.metadata(format).get("modalities", ()):
        raise SignlipError(f"data.format={format} cannot feed this task's data ({modality}) — choose one of "
                           f"{', '.join(supported(modality))}")
    adapter: Callable[..., Path] = FORMATS.get(format)
    options = dict(options or {})
    takes = inspect.signature(adapter).parameters
    unknown = sorted(k for k in options if k not in takes or k in ("root", "out"))
    if unknown:
        known = [k for k in takes if k not in ("root", "out")]
        raise SignlipError(f"data.format_options.{unknown[0]} is not an option of format {format} — its options: "
                           f"{', '.join(known) or 'none'}")
    digest = hashlib.sha1(json.dumps([str(root.resolve()), format, options], sort_keys=True,
                                     default=str).encode()).hexdigest()[:8]
    out = Path(manifests_dir) / f"{format}-{root.resolve().name}-{digest}.raw.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    return str(adapter(root=root, out=out, **options))
