"""`signlip prepare task=NAME data.raw_manifest=CSV`: raw media → cache + prepared manifest."""

from __future__ import annotations

from signlip.commands import user_errors_exit_2
from signlip.errors import SignlipError


@user_errors_exit_2
def main(cfg) -> None:
    from omegaconf import OmegaConf

    from signlip.data.cache import PREPARERS, prepare_data
    from signlip.registry import load_all
    from signlip.run_logger import console

    load_all()
    data = OmegaConf.to_container(cfg.data, resolve=True)
    name = data.pop("name")
    if name not in PREPARERS:
        raise SignlipError(f"task {cfg.task_name} reads its data directly ({name} .npy files) — nothing to prepare; "
                           f"train with data.manifest=<your manifest>")
    result = prepare_data(name, data, seed=cfg.seed, workers=cfg.prepare.workers, overwrite=cfg.prepare.overwrite)
    console.print(f"next: signlip train task={cfg.task_name} data.manifest={result.manifest}", soft_wrap=True)
