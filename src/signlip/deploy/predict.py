"""`signlip predict`: a checkpoint on new files — one video or landmark file, a folder, or a manifest.

A folder of frame images (PNG / JPEG, as PHOENIX-2014 ships its sentences) is one input for a model that reads
videos, its frames taken as they are, at the checkpoint's frame rate; a folder of such folders is one input each.

Every input goes through the checkpoint's own reader (`signlip.build.reader_from_checkpoint`): the same decoding,
MediaPipe extraction, cropping and normalisation that `signlip prepare` and the data module ran at training time,
then the checkpoint's evaluation-time batch transform and model. An input that cannot be used (no face, no hand,
a damaged file) gets a result row saying why; the others are still predicted.

    rec = Recogniser.load("best.pt")
    rows = rec.predict_paths(["clip.mp4"], top_k=3)   # [{"input", "status", "label", "probability", "top_k", …}]
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from signlip.data.base import stack_samples
from signlip.errors import SignlipError


@dataclass
class Recogniser:
    """A checkpoint's model (in its CPU inference form on CPU) with the reader of new inputs it was trained for."""

    checkpoint: dict[str, Any]
    model: torch.nn.Module
    reader: Any  # signlip.data.base.SampleReader
    classes: list[str]
    device: torch.device

    @classmethod
    def load(cls, ckpt: str | Path | dict[str, Any], device: str = "auto", models_dir: str | None = None
             ) -> Recogniser:
        from signlip.build import model_from_checkpoint, reader_from_checkpoint
        from signlip.checkpoint import load_checkpoint
        from signlip.inference import for_cpu_inference
        from signlip.trainer import select_device

        checkpoint = ckpt if isinstance(ckpt, dict) else load_checkpoint(ckpt)
        reader = reader_from_checkpoint(checkpoint, models_dir)  # refuses models/settings other than the training ones
        dev = select_device(device)
        model = model_from_checkpoint(checkpoint).to(dev).eval()
        # As evaluate does: on CPU the conv stacks run on oneDNN tensors (same outputs to float rounding, faster).
        runner = for_cpu_inference(model) if dev.type == "cpu" else model
        reader.transform.to(dev)
        return cls(checkpoint, runner, reader, list(checkpoint["classes"]), dev)

    @torch.inference_mode()
    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Stored-form batch (what `reader.read` gives, stacked) → logits (B, C)."""
        from signlip.trainer import model_input

        batch = model_input(batch, self.reader.transform, self.device, channels_last=False, training=False)
        logits = self.model(batch["x"], batch.get("mask")).float()
        if self.glosses:  # (B, T', V+1): frames past each input's end decode as nothing
            from signlip.objectives.ctc import decoder_input, output_lengths

            return decoder_input(logits, output_lengths(self.model, batch, logits.shape[1]))
        return logits

    @property
    def glosses(self) -> bool:
        """A continuous-recognition checkpoint: a gloss sequence per input (greedy CTC decoding)."""
        from signlip.deploy import is_gloss_checkpoint

        return is_gloss_checkpoint(self.checkpoint)

    def rows(self, logits: torch.Tensor, top_k: int) -> list[dict[str, Any]]:
        """Logits (B, C) → one result row per sample: top-1 label and probability, the top-k list. For a gloss
        checkpoint the label is the decoded gloss sequence and the probability that of its best path's frames."""
        if self.glosses:
            from signlip.data.glosses import greedy_decode, to_text
            from signlip.objectives.ctc import is_padded

            best = logits.max(-1).values  # (B, T') log-probability of each frame's best output
            real = ~is_padded(logits) & (logits.argmax(-1) != 0)  # blank frames say nothing about the glosses
            confidence = [float(b[r].mean().exp()) if r.any() else 1.0 for b, r in zip(best.cpu(), real.cpu())]
            texts = [to_text(ids, self.classes) for ids in greedy_decode(logits)]
            return [{"status": "ok", "label": t, "probability": c, "top_k": [(t, c)], "reason": ""}
                    for t, c in zip(texts, confidence)]
        probs = logits.softmax(-1).cpu()
        k = min(top_k, probs.shape[1])
        values, indices = probs.topk(k, dim=1)
        return [{"status": "ok", "label": self.classes[int(i[0])], "probability": float(v[0]),
                 "top_k": [(self.classes[int(c)], float(p)) for c, p in zip(i, v)], "reason": ""}
                for v, i in zip(values, indices)]

    def predict_paths(self, paths: Iterable[str], top_k: int = 5, batch_size: int = 8,
                      progress: bool = False) -> list[dict[str, Any]]:
        """One result row per path, in order; inputs the reader refuses get status "error" and the reason."""
        paths = [str(p) for p in paths]
        if hasattr(self.reader, "check"):
            self.reader.check(paths)
        results: list[dict[str, Any] | None] = [None] * len(paths)
        for positions, batch in self._batches(paths, results, batch_size, progress):
            for pos, row in zip(positions, self.rows(self.logits(batch), top_k)):
                results[pos] = {"input": paths[pos], **row}
        return [r for r in results if r is not None]

    def _batches(self, paths: list[str], results: list, batch_size: int, progress: bool
                 ) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
        from signlip.run_logger import progress_bar

        pending: list[tuple[int, dict[str, torch.Tensor]]] = []
        with progress_bar("predict", len(paths), enabled=progress) as advance:
            for pos, path in enumerate(paths):
                try:
                    pending.append((pos, self.read(path)))
                except SignlipError as exc:
                    results[pos] = error_row(path, str(exc))
                advance()
                if len(pending) == batch_size or (pos == len(paths) - 1 and pending):
                    yield [p for p, _ in pending], stack_samples([s for _, s in pending])
                    pending = []

    def read(self, path: str) -> dict[str, torch.Tensor]:
        """One input in stored form; SignlipError for a missing file, a kind this model does not read, or what the
        reader refuses."""
        p = Path(path)
        if reads_frame_folders(self.reader.suffixes) and is_frame_folder(p, self.reader.suffixes):
            pass  # the reader's preparer reads a folder of frames as it reads a video
        elif not p.is_file():
            raise SignlipError("file not found")
        elif p.suffix.lower() not in self.reader.suffixes:
            raise SignlipError(f"this model reads {', '.join(self.reader.suffixes)} files, not {p.suffix or 'this'}")
        try:
            return self.reader.read(str(p))
        except SignlipError:
            raise
        except Exception as exc:  # a damaged file must not stop the others; its row names the problem
            raise SignlipError(f"{type(exc).__name__}: {exc}") from exc


def error_row(path: str, reason: str) -> dict[str, Any]:
    if path:  # the row already names the file
        reason = reason.replace(f"{path}: ", "").replace(path, "the file")
    return {"input": path, "status": "error", "label": "", "probability": float("nan"), "top_k": [],
            "reason": reason}


# --- inputs -------------------------------------------------------------------------------------------------------
def reads_frame_folders(suffixes: tuple[str, ...]) -> bool:
    """Models that read videos read folders of frames too (their preparers do; signlip.data.frame_folder)."""
    from signlip.data.clips.reader import VIDEO_SUFFIXES

    return any(s in VIDEO_SUFFIXES for s in suffixes)


def is_frame_folder(p: Path, suffixes: tuple[str, ...]) -> bool:
    """A folder of frame images holding none of the files the model reads (a folder of videos with a stray
    thumbnail is a folder of videos)."""
    from signlip.data.frame_folder import FRAME_SUFFIXES

    if not p.is_dir():
        return False
    kinds = {f.suffix.lower() for f in p.iterdir() if f.is_file()}
    return bool(kinds & set(FRAME_SUFFIXES)) and not kinds & set(suffixes)


def resolve_inputs(source: str, suffixes: tuple[str, ...]) -> tuple[list[str], list[str] | None]:
    """(paths, true labels or None) of `source`: one file, a folder (every file of a kind the model reads, found
    recursively, and for models that read videos every folder of frame images — or the folder itself when it holds
    frames) or a manifest CSV with a `path` column (relative paths from its folder; a `label` column is compared
    with the predictions). SignlipError for a source that is not there or holds nothing usable."""
    p = Path(source).expanduser()
    folders = reads_frame_folders(suffixes)
    if folders and is_frame_folder(p, suffixes):
        return [os.path.normpath(p)], None
    if p.is_dir():
        paths = sorted(os.path.normpath(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes
                       or folders and is_frame_folder(f, suffixes))
        if not paths:
            kinds = "/".join(suffixes) + (" file or folder of frame images" if folders else " file")
            raise SignlipError(f"no {kinds} in {p} — this model reads those kinds of input")
        return paths, None
    if not p.is_file():
        raise SignlipError(f"input not found: {p} — give a video or landmark file, a folder of them, or a manifest "
                           f"CSV with a path column")
    if p.suffix.lower() == ".csv":
        with p.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        if not rows or "path" not in rows[0]:
            raise SignlipError(f"{p} has no path column — a manifest lists one input per row (path[,label])")
        paths = [os.path.normpath(q if (q := Path(r["path"]).expanduser()).is_absolute() else p.parent / q)
                 for r in rows]
        labels = [r.get("label") or "" for r in rows] if "label" in rows[0] else None
        return paths, labels
    if p.suffix.lower() not in suffixes:
        raise SignlipError(f"this model reads {', '.join(suffixes)} files, not {p.name} — give such a file, a folder "
                           f"or a manifest")
    return [str(p)], None


def write_rows(rows: list[dict[str, Any]], out: str | Path) -> Path:
    """Result rows → CSV (top_k as `label:p;…`) or JSON lines (`.json` / `.jsonl`), atomically."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if out.suffix.lower() in (".json", ".jsonl"):
        with tmp.open("w") as fh:
            for row in rows:
                fh.write(json.dumps({**row, "top_k": [{"label": c, "probability": q} for c, q in row["top_k"]]})
                         + "\n")
    elif out.suffix.lower() == ".csv":
        keys = ["input", "status", "label", "probability", "top_k", "reason"]
        keys += [k for k in rows[0] if k not in keys] if rows else []
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            for row in rows:
                writer.writerow({**row, "top_k": ";".join(f"{c}:{q:.4f}" for c, q in row["top_k"])})
    else:
        raise SignlipError(f"out={out} — write predictions to a .csv, .json or .jsonl file")
    tmp.replace(out)
    return out


def predict(ckpt: str | Path, source: str, out: str | Path | None = None, top_k: int = 5, batch_size: int = 8,
            device: str = "auto", models_dir: str | None = None, report=None) -> list[dict[str, Any]]:
    """`signlip predict ckpt=… input=…`: predict every input, print a table (a single input) or a summary, write
    `out`. SignlipError when no input could be used."""
    from signlip.run_logger import console

    rec = Recogniser.load(ckpt, device=device, models_dir=models_dir)
    paths, labels = resolve_inputs(source, rec.reader.suffixes)
    rows = rec.predict_paths(paths, top_k=top_k, batch_size=batch_size, progress=len(paths) > 1)
    if labels is not None:
        for row, label in zip(rows, labels):
            row["true_label"] = label
    (report or print_rows)(rows, console)
    if out is not None:
        console.print(f"predictions → {write_rows(rows, out)}", soft_wrap=True)
    if not any(r["status"] == "ok" for r in rows):
        first = rows[0]
        raise SignlipError(f"no input could be used ({len(rows)} tried); {first['input']}: {first['reason']}")
    return rows


def print_rows(rows: list[dict[str, Any]], console) -> None:
    """A top-k table for a single input; for many, a table of the first 20 and what failed."""
    from rich.table import Table

    ok = [r for r in rows if r["status"] == "ok"]
    if len(rows) == 1 and ok:
        console.print(rows[0]["input"], soft_wrap=True, markup=False)
        table = Table()
        table.add_column("#", justify="right")
        table.add_column("label")
        table.add_column("probability", justify="right")
        for i, (label, p) in enumerate(rows[0]["top_k"], 1):
            table.add_row(str(i), label, f"{p:.3f}")
        console.print(table)
        return
    table = Table(title=f"{len(ok)} of {len(rows)} inputs predicted", title_justify="left")
    for column in ("input", "label", "probability", *(["true label"] if "true_label" in rows[0] else [])):
        table.add_column(column, justify="right" if column == "probability" else "left", overflow="fold")
    for row in rows[:20]:
        shown = [row["label"], f"{row['probability']:.3f}"] if row["status"] == "ok" else [f"({row['reason']})", ""]
        table.add_row(row["input"], *shown, *([row["true_label"]] if "true_label" in row else []))
    console.print(table)
    if len(rows) > 20:
        console.print(f"… and {len(rows) - 20} more rows")
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        console.print(f"[yellow]{len(failed)} input(s) could not be used[/yellow] (reason in each row)")
    scored = [r for r in ok if r.get("true_label")]
    if scored:
        right = sum(r["label"] == r["true_label"] for r in scored)
        console.print(f"accuracy on the {len(scored)} labelled inputs predicted: {right / len(scored):.3f} "
                      f"({right}/{len(scored)})")
