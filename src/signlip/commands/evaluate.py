"""`signlip evaluate ckpt=PATH [split=test] [out=DIR] [data.manifest=CSV]`."""

from __future__ import annotations

from signlip.commands import user_errors_exit_2


@user_errors_exit_2
def main(cfg) -> None:
    from omegaconf import OmegaConf

    from signlip.evaluation import evaluate_checkpoint

    evaluate_checkpoint(cfg.ckpt, split=cfg.split, manifest=cfg.data.manifest, out=cfg.out, device=cfg.device,
                        batch_size=cfg.batch_size, evaluator=OmegaConf.to_container(cfg.evaluator) or None)
