"""`signlip benchmark ckpt=PATH [threads=[1,2]] [batch_size=32] [out=DIR]`."""

from __future__ import annotations

from signlip.commands import user_errors_exit_2


@user_errors_exit_2
def main(cfg) -> None:
    import os

    # Idle OpenMP threads sleep instead of spinning (set before torch loads, which reads it once): on a shared
    # machine spinning threads steal the cores the other formats are being timed on. onnxruntime's own pool is told
    # the same by its session options.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from signlip.deploy.benchmark import benchmark_checkpoint
    from signlip.run_logger import console

    benchmark_checkpoint(cfg.ckpt, out=cfg.out, threads=tuple(cfg.threads), batch_size=cfg.batch_size, runs=cfg.runs,
                         warmup=cfg.warmup, int8_mode=cfg.int8_mode, calibration_batches=cfg.calibration_batches,
                         manifest=cfg.data.manifest, live_input=cfg.live_input,
                         report=lambda line: console.print(line, soft_wrap=True, markup=False))
