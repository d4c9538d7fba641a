"""Shared fixtures: tiny synthetic data, config composition and in-process training runs (CPU, seconds)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO = Path(__file__).resolve().parents[1]
# A small synthetic hand dataset: 26 classes, 10/2/2 signers, 2 samples per class per signer.
SMALL_HANDS = ["data.synthetic.n_signers=[10,2,2]", "data.synthetic.per_class=2"]


def compose(config_name: str = "train", overrides: list[str] | None = None):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from signlip.cli import conf_dir
    from signlip.config import register_schemas

    register_schemas()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=overrides or [])


def train_in_process(run_dir: Path, overrides: list[str], outputs_root: Path | None = None) -> dict:
    """What `signlip train <overrides>` does, without a subprocess; logs quietly."""
    from omegaconf import OmegaConf

    from signlip.training import run_training

    cfg = compose("train", ["logger.tensorboard=false", *overrides])
    settings = OmegaConf.to_object(cfg.trainer)
    config = OmegaConf.to_container(cfg, resolve=True)
    return run_training(config, settings, run_dir, outputs_root=outputs_root or run_dir.parent)


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300, env: dict | None = None):
    """Run the installed `signlip` entry point as a user would."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "signlip", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


@pytest.fixture(scope="session")
def hands_root(tmp_path_factory) -> Path:
    """Small synthetic hand dataset shared by the session (generated once)."""
    from signlip.data.landmarks.synthetic import make_synthetic_hands

    root = tmp_path_factory.mktemp("hands")
    make_synthetic_hands(root, n_signers=(10, 2, 2), per_class=2, seed=0)
    return root


@pytest.fixture(scope="session")
def hands_overrides(hands_root) -> list[str]:
    return [f"data.synthetic.root={hands_root}", *SMALL_HANDS]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, hands_overrides) -> dict:
    """One short landmark_gru training run, shared by the tests that need a checkpoint."""
    run_dir = tmp_path_factory.mktemp("run")
    result = train_in_process(run_dir, [*hands_overrides, "trainer.max_epochs=12", "seed=0"])
    return result
