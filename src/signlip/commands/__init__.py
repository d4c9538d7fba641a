"""The Hydra edge: one module per command, each with `main(cfg)` that receives the composed DictConfig, turns it
into plain objects and calls the library. Only this package sees DictConfig.

SignlipError (a problem the user can fix) becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from signlip.errors import SignlipError


def user_errors_exit_2(fn):
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SignlipError as exc:
            print(f"signlip: error: {exc}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("signlip: interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper


def run_dir() -> str:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.output_dir


def plain(cfg) -> tuple[dict[str, Any], Any]:
    """(the resolved config as plain data, the typed trainer settings)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True), OmegaConf.to_object(cfg.trainer)


class SweepReportHint:
    """Hydra callback (conf/train.yaml `hydra.callbacks`): a `-m` sweep ends with the line that summarises it."""

    def on_multirun_end(self, config, **kwargs: Any) -> None:
        folder = config.hydra.sweep.dir
        print(f"sweep done: its runs are in {folder} — summarise them (mean ± sd over seeds, learning curves) with\n"
              f"  signlip report {folder}", flush=True)

    # Hydra calls every event on every callback; the others have nothing to say.
    def on_run_start(self, config, **kwargs: Any) -> None: ...

    def on_run_end(self, config, **kwargs: Any) -> None: ...

    def on_multirun_start(self, config, **kwargs: Any) -> None: ...

    def on_job_start(self, config, **kwargs: Any) -> None: ...

    def on_job_end(self, config, job_return, **kwargs: Any) -> None: ...
