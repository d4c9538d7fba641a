"""Export and INT8 figures for docs/benchmarks.md ("Export and INT8"), all in one run:

    OMP_WAIT_POLICY=PASSIVE python scripts/bench_export.py --ckpt A/best.pt [--ckpt B/best.pt ...] [--runs 50]
    OMP_WAIT_POLICY=PASSIVE python scripts/bench_export.py --task lip_cnn3d [--task i3d ...]   # a tiny checkpoint

Per checkpoint:
(a) `signlip benchmark`'s table (signlip.deploy.benchmark): PyTorch eager, the CPU inference form, ONNX Runtime fp32
    and INT8 (int8_mode=auto) — size, batch-1 latency p50/p95 at 1 and 2 threads, throughput, test accuracy;
(b) both INT8 modes side by side (dynamic, static QDQ): test accuracy change vs fp32 ONNX and the batch-1, 1-thread
    speed-up over fp32 ONNX, the figures behind `choose_int8_mode`. Targets: ≤ 1 point lost, ≥ 1.5× faster.

`--task NAME` trains the task's recipe for one epoch on the tiny synthetic set of signlip.benchmarking.TINY_DATA
(as the tests' `tiny_checkpoint`): right sizes for export, untrained, so its accuracy says nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: idle OpenMP threads must not spin


def tiny_checkpoint(task: str, root: Path) -> Path:
    from signlip.benchmarking import compose_task, tiny_data_overrides
    from signlip.training import run_training

    config, settings, _ = compose_task(task, [*tiny_data_overrides(task, root), "trainer.max_epochs=1", "seed=0",
                                              "trainer.device=cpu", "logger.tensorboard=false"])
    return Path(run_training(config, settings, root / "runs" / task, outputs_root=root)["checkpoint_dir"]) / "best.pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", action="append", default=[], help="a checkpoint (repeatable)")
    parser.add_argument("--task", action="append", default=[], help="a task, on a tiny one-epoch checkpoint")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", default=None, help="folder for the exports (default: a temporary one)")
    args = parser.parse_args()

    from signlip.deploy.benchmark import benchmark_checkpoint
    from signlip.deploy.onnx_export import export_checkpoint

    out = Path(args.out or tempfile.mkdtemp(prefix="bench_export_"))
    ckpts = [Path(c) for c in args.ckpt] + [tiny_checkpoint(t, out / "tiny") for t in args.task]
    modes: list[str] = []
    for ckpt in ckpts:
        folder = out / ckpt.parent.parent.name
        benchmark_checkpoint(ckpt, out=folder / "auto", batch_size=args.batch_size, runs=args.runs, report=print)
        for mode in ("dynamic", "static"):
            q = export_checkpoint(ckpt, out=folder / mode, int8=True, int8_mode=mode, report=lambda _: None).sidecar
            i = q["int8"]
            modes.append(f"| {q['model']['name']} | {mode} | {i['accuracy_fp32_onnx']:.3f} → {i['accuracy_int8']:.3f} "
                         f"({i['accuracy_change_points']:+.1f}) | {i['latency_ms_batch1_1thread']['fp32']:.2f} → "
                         f"{i['latency_ms_batch1_1thread']['int8']:.2f} ms | {i['speedup_vs_fp32_onnx']:.2f}× | "
                         f"{i['size_mb']['fp32']:.2f} → {i['size_mb']['int8']:.2f} MB |")
        print()
    print("| model | int8 mode | test accuracy fp32 ONNX → INT8 (points) | batch-1 latency, 1 thread | speed-up "
          "| size |")
    print("|---|---|---|---|---|---|")
    print("\n".join(modes))


if __name__ == "__main__":
    main()
