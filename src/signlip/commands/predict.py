"""`signlip predict ckpt=PATH input=FILE|DIR|CSV|camera:N [out=…] [stream=true]`."""

from __future__ import annotations

from signlip.commands import user_errors_exit_2


@user_errors_exit_2
def main(cfg) -> None:
    if cfg.stream or str(cfg.input).startswith("camera:"):
        from signlip.deploy.stream import stream

        stream(cfg.ckpt, str(cfg.input), out=cfg.out, window=cfg.window, hop=cfg.hop, smoothing=cfg.smoothing,
               device=cfg.device, models_dir=cfg.models_dir, top_k=cfg.top_k, max_frames=cfg.max_frames)
        return
    from signlip.deploy.predict import predict

    predict(cfg.ckpt, str(cfg.input), out=cfg.out, top_k=cfg.top_k, batch_size=cfg.batch_size, device=cfg.device,
            models_dir=cfg.models_dir)
