"""`signlip train [task=NAME] [overrides]`."""

from __future__ import annotations

from signlip.commands import plain, run_dir, user_errors_exit_2


@user_errors_exit_2
def main(cfg) -> float | None:
    from signlip.training import run_training

    config, settings = plain(cfg)
    result = run_training(config, settings, run_dir())
    return result["summary"]["best"]["value"] if "summary" in result else None  # Hydra sweepers may optimise on it
