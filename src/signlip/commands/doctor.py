"""`signlip doctor task=NAME [data overrides]`: exit 0 when no check failed, 1 when one did."""

from __future__ import annotations

import sys

from signlip.commands import plain, run_dir, user_errors_exit_2


@user_errors_exit_2
def main(cfg) -> None:
    from signlip.doctor import run_doctor

    config, settings = plain(cfg)
    if not run_doctor(config, settings, run_dir())["ok"]:
        sys.exit(1)
