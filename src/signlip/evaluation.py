"""Evaluate a checkpoint on a split, with nothing but the checkpoint (and optionally other data)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from signlip.checkpoint import load_checkpoint
from signlip.errors import SignlipError
from signlip.logging import RunLogger
from signlip.metrics import classification_report, confusion_figure

# Half-width of the 95% interval above which the test set is too small for the precision people usually claim.
CI_WARN_HALF_WIDTH = 0.05


def report_predictions(logits: np.ndarray, targets: np.ndarray, classes: list[str], split: str,
                       checkpoint: str | Path, out_dir: str | Path, logger: RunLogger,
                       extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Metrics + bootstrap CI → JSON, confusion CSV/PNG in `out_dir`, and a rich table on the console."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = classification_report(logits, targets, classes)
    report.update({"split": split, "checkpoint": str(checkpoint), **(extra or {})})
    cm = np.asarray(report["confusion_matrix"])
    with (out_dir / f"confusion_{split}.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["true\\predicted", *classes])
        for name, row in zip(classes, cm):
            writer.writerow([name, *row.tolist()])
    fig = confusion_figure(cm, classes, f"{split}: accuracy {report['accuracy']:.3f}")
    fig.savefig(out_dir / f"confusion_{split}.png", dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    lo, hi = report["accuracy_ci"]
    report["files"] = {"json": str(out_dir / f"evaluation_{split}.json"),
                       "confusion_csv": str(out_dir / f"confusion_{split}.csv"),
                       "confusion_png": str(out_dir / f"confusion_{split}.png")}
    (out_dir / f"evaluation_{split}.json").write_text(json.dumps(report, indent=2))
    _print_report(report, classes, logger)
    if (hi - lo) / 2 > CI_WARN_HALF_WIDTH:
        logger.print(f"[yellow]warning:[/yellow] {report['n_samples']} {split} samples pin accuracy down only to "
                     f"±{(hi - lo) / 2:.3f} (95% CI) — do not report more precision than that; collect more data")
    return report


def _print_report(report: dict[str, Any], classes: list[str], logger: RunLogger) -> None:
    from rich.table import Table

    table = Table(title=f"{report['split']} split — {report['n_samples']} samples")
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="right" if col != "class" else "left")
    for c in classes:
        r = report["per_class"][c]
        table.add_row(c, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", str(r["support"]))
    logger.print(table)
    lo, hi = report["accuracy_ci"]
    extra = "".join(f"  {k} {report[k]:.4f}" for k in ("top3_accuracy", "top5_accuracy") if k in report)
    logger.print(f"[bold]{report['split']} accuracy {report['accuracy']:.4f}[/bold] (95% CI {lo:.4f}–{hi:.4f}, "
                 f"chance {report['chance']:.4f})  balanced {report['balanced_accuracy']:.4f}  "
                 f"macro F1 {report['macro_f1']:.4f}{extra}")


def evaluate_checkpoint(ckpt_path: str | Path, split: str = "test", manifest: str | None = None,
                        out: str | Path | None = None, device: str = "auto", batch_size: int | None = None,
                        logger: RunLogger | None = None) -> dict[str, Any]:
    """Rebuild data and model from the checkpoint's own contract and report on `split`."""
    from signlip.data.loaders import make_loaders
    from signlip.inference import for_cpu_inference
    from signlip.pipeline import split_data_config
    from signlip.registry import build_data, build_model
    from signlip.trainer import predict_logits, select_device

    ckpt = load_checkpoint(ckpt_path)
    config = ckpt["config"]
    data_name, data_kwargs, loader_kwargs = split_data_config(config["data"])
    prep = ckpt["preprocessing"]
    if manifest is not None:
        data_kwargs["manifest"] = manifest
    elif prep.get("manifest") and Path(prep["manifest"]).is_file():
        data_kwargs["manifest"] = prep["manifest"]
    elif data_kwargs.get("manifest") is not None:
        raise SignlipError(f"the data this checkpoint was trained on ({prep.get('manifest')}) is not here — "
                           f"pass data.manifest=<manifest with a {split} split>")
    data = build_data(data_name, **data_kwargs, seed=int(config.get("seed", 0)), preprocessing=prep, splits=(split,))
    model = build_model(ckpt["model"]["name"], **ckpt["model"]["kwargs"])
    model.load_state_dict(ckpt["model_state"])
    dev = select_device(device)
    model.to(dev)
    loader_kwargs.pop("stratified", None)
    bs = batch_size or loader_kwargs.pop("eval_batch_size", None) or loader_kwargs.get("batch_size", 32)
    loader_kwargs.pop("batch_size", None)
    loader_kwargs.pop("eval_batch_size", None)
    loader = make_loaders(data, batch_size=bs, eval_batch_size=bs, **loader_kwargs)[split]
    # On CPU, conv stacks run on oneDNN tensors with BatchNorm folded (same logits to float rounding, faster).
    runner = for_cpu_inference(model) if dev.type == "cpu" else model
    logits, y = predict_logits(runner, data.batch_transform.to(dev), loader, dev)
    n_params = sum(p.numel() for p in model.parameters())
    size_mb = sum(t.numel() * t.element_size() for t in ckpt["model_state"].values()) / 2**20
    out_dir = Path(out) if out else Path(ckpt_path).parent
    logger = logger or RunLogger(out_dir, tensorboard=False, progress=False)
    logger.print(f"[bold]signlip evaluate[/bold] {ckpt_path} · task {ckpt.get('task')} · model {ckpt['model']['name']} "
                 f"({n_params:,} parameters, {size_mb:.2f} MB) · split {split}")
    return report_predictions(logits, y, list(ckpt["classes"]), split, ckpt_path, out_dir, logger,
                              {"task": ckpt.get("task"), "parameters": n_params, "model_size_mb": size_mb,
                               "trained_epochs": ckpt.get("epoch")})
