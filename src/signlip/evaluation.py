"""Evaluate a checkpoint on a split, with nothing but the checkpoint (and optionally other data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from signlip.build import rebuild
from signlip.run_logger import RunLogger


def evaluate_checkpoint(ckpt_path: str | Path, split: str = "test", manifest: str | None = None,
                        out: str | Path | None = None, device: str = "auto", batch_size: int | None = None,
                        logger: RunLogger | None = None, evaluator: dict[str, Any] | None = None) -> dict[str, Any]:
    """Rebuild model and data from the checkpoint's own contract, score `split` with its evaluator (`evaluator`:
    settings replacing the stored ones, e.g. {"decoder": "beam"}), write the report into `out` (default: beside the
    checkpoint)."""
    from signlip.inference import for_cpu_inference
    from signlip.trainer import run_evaluation, select_device

    back = rebuild(ckpt_path, splits=(split,), manifest=manifest, evaluator=evaluator)
    dev = select_device(device)
    back.model.to(dev)
    # On CPU, conv stacks run on oneDNN tensors with BatchNorm folded (same outputs to float rounding, faster).
    runner = for_cpu_inference(back.model) if dev.type == "cpu" else back.model
    metrics = run_evaluation(runner, back.objective, back.evaluator, back.loader(split, batch_size),
                             back.data.batch_transform.to(dev), dev)
    ckpt = back.checkpoint
    n_params = sum(p.numel() for p in back.model.parameters())
    size_mb = sum(t.numel() * t.element_size() for t in ckpt["model_state"].values()) / 2**20
    out_dir = Path(out) if out else Path(ckpt_path).parent
    logger = logger or RunLogger(out_dir, tensorboard=False, progress=False)
    logger.print(f"[bold]signlip evaluate[/bold] {ckpt_path} · task {ckpt.get('task')} · model {ckpt['model']['name']} "
                 f"({n_params:,} parameters, {size_mb:.2f} MB) · split {split}")
    report = back.evaluator.report(split, out_dir, logger,
                                   {"checkpoint": str(ckpt_path), "loss": metrics["loss"], "task": ckpt.get("task"),
                                    "parameters": n_params, "model_size_mb": size_mb,
                                    "trained_epochs": ckpt.get("epoch")})
    files = report.get("files") or {}
    if files:  # the evaluator's own names for what it wrote (evaluation JSON, confusion CSV / PNG, ...)
        width = max(len(k) for k in files) + 1
        logger.print("written:\n" + "\n".join(f"  {k + ':':<{width}} {v}" for k, v in files.items()), markup=False)
    return report
