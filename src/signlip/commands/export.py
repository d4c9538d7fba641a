"""`signlip export ckpt=PATH [format=onnx] [int8=true] [int8_mode=auto] [out=DIR]`."""

from __future__ import annotations

from signlip.commands import user_errors_exit_2


@user_errors_exit_2
def main(cfg) -> None:
    from signlip.deploy.onnx_export import export_checkpoint
    from signlip.run_logger import console

    out = export_checkpoint(cfg.ckpt, out=cfg.out, int8=cfg.int8, int8_mode=cfg.int8_mode, tolerance=cfg.tolerance,
                            calibration_batches=cfg.calibration_batches, batch_size=cfg.batch_size,
                            manifest=cfg.data.manifest,
                            report=lambda line: console.print(line, soft_wrap=True, markup=False))
    console.print(f"exported: {', '.join(str(p) for p in out.paths.values())}", soft_wrap=True, markup=False)
