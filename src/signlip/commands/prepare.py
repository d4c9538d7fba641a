"""`signlip prepare task=NAME data.raw_manifest=CSV`: raw media → cache + prepared manifest."""

from __future__ import annotations

from signlip.commands import user_errors_exit_2
from signlip.errors import SignlipError


@user_errors_exit_2
def main(cfg) -> None:
    from omegaconf import OmegaConf

    from signlip.data.cache import PREPARERS, Sharding, prepare_data
    from signlip.registry import load_all
    from signlip.run_logger import console

    load_all()
    data = OmegaConf.to_container(cfg.data, resolve=True)
    name = data.pop("name")
    if name not in PREPARERS:
        raise SignlipError(f"task {cfg.task_name} reads its data directly ({name} .npy files) — nothing to prepare; "
                           f"train with data.manifest=<your manifest>")
    import shlex

    command = " ".join(["signlip prepare", *map(shlex.quote, _overrides(exclude=("prepare.shard", "prepare.merge")))])
    sharding = Sharding.parse(cfg.prepare.shard, cfg.prepare.merge, command)
    result = prepare_data(name, data, seed=cfg.seed, workers=cfg.prepare.workers, overwrite=cfg.prepare.overwrite,
                          sharding=sharding)
    if result.shard:
        console.print(f"next, once all {sharding.count} shards are done: {command} prepare.merge=true",
                      soft_wrap=True)
    else:
        console.print(f"next: signlip train task={cfg.task_name} data.manifest={result.manifest}", soft_wrap=True)


def _overrides(exclude: tuple[str, ...]) -> list[str]:
    """The command line's overrides (to name the command that runs another shard), without the `exclude` keys."""
    from hydra.core.hydra_config import HydraConfig

    try:
        given = list(HydraConfig.get().overrides.task)
    except ValueError:  # called without Hydra's runtime (in-process tests)
        return []
    return [o for o in given if o.split("=", 1)[0].lstrip("+~") not in exclude]
