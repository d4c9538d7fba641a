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
SMALL_HANDS = ["data.synthetic.n_people=[10,2,2]", "data.synthetic.per_class_per_person=2"]

# Each task's short run on its built-in synthetic data: the one place these overrides live (tests/test_task_contract.py
# trains every task with them). "{root}" stands for a folder shared by the tasks of a session, so tasks on the same
# data (lip_cnnlstm / lip_cnn3d, i3d / mobilenetv3) generate and prepare it once.
_LIP = ["data.synthetic.root={root}/lip", "data.synthetic.n_people=[8,2,2]", "data.synthetic.per_class_per_person=3",
        "data.synthetic.n_frames=20", "data.synthetic.frame_size=[48,72]", "data.prepare.n_frames=16",
        "data.prepare.size=[32,48]", "data.cache_dir={root}/lip_cache", "data.manifests_dir={root}/lip_manifests",
        # The recipe's lr 1e-4 needs ~100 updates; lr 1e-3 makes 8 short epochs (96 updates) enough for lip_cnnlstm.
        "optim.lr=1e-3", "trainer.early_stopping.enabled=false"]
# A class and its reverse (ofv_cw vs vfo_ccw, chance 0.5), 800 / 80 / 80 clips, from random weights on a CPU: the
# small-data recipe of docs/distill.md (the reference recipes assume an ImageNet-initialised backbone).
_RGB = ["data.synthetic.root={root}/rgb", "data.cache_dir={root}/rgb_cache", "data.manifests_dir={root}/rgb_manifests",
        "data.synthetic.n_classes=2", "data.synthetic.n_people=[40,4,4]", "data.synthetic.per_class_per_person=10",
        "data.synthetic.n_frames=16", "data.synthetic.frame_size=[64,64]",
        "data.prepare.n_frames=8", "data.prepare.size=[64,64]", "trainer.early_stopping.enabled=false",
        "data.batch_size=8", "data.augment=null", "sched=none", "optim.weight_decay=1e-4"]
# Synthetic RGB sentences (8/2/2 signers × 24 sentences of 2–4 of 6 signs) drawn and prepared at 32×32: a quarter of
# the tasks' 64×64 compute, so teacher and student each train in minutes on 2 CPU cores.
_RGB_SENTENCES = ["data.synthetic.root={root}/rgb_sentences", "data.cache_dir={root}/rgb_sentences_cache",
                  "data.manifests_dir={root}/rgb_sentences_manifests", "data.synthetic.frame_size=[32,32]",
                  "data.prepare.size=[32,32]", "trainer.early_stopping.enabled=false"]
TASK_SHORT: dict[str, list[str]] = {
    "landmark_gru": ["task=landmark_gru", "data.synthetic.root={root}/hands", *SMALL_HANDS, "trainer.max_epochs=12"],
    "lip_cnnlstm": ["task=lip_cnnlstm", *_LIP, "trainer.max_epochs=8"],
    # 4× narrower (1/16 of the compute; same kernels, pooling and head): the full 5.2M-parameter model costs ~30 GFLOP
    # per training clip even at these sizes, minutes per epoch on a CPU. Val accuracy 1.0 from epoch 9 (measured).
    "lip_cnn3d": ["task=lip_cnn3d", *_LIP, "model.channels=[16,32,64,128]", "trainer.max_epochs=15"],
    # 4/1/1 signers × 25 classes × 2 samples, sequences ≤ 64 frames, a higher lr, no late dropout.
    "asl_tcn_transformer": ["task=asl_tcn_transformer", "data.synthetic.root={root}/holistic",
                            "data.synthetic.n_people=[4,1,1]", "data.synthetic.per_class_per_person=2",
                            "data.max_len=64",
                            "optim.lr=1e-3", "sched.T_0_epochs=8", "model.late_dropout_step=100000",
                            "trainer.max_epochs=8", "trainer.early_stopping.enabled=false"],
    # 4/1/1 signers × 20 sentences of 2–4 of 4 signs; CTC leaves the all-blank start after ~8 epochs here.
    "cslr_landmarks": ["task=cslr_landmarks", "data.synthetic.root={root}/sentences", "data.synthetic.n_people=[4,1,1]",
                       "data.synthetic.sentences_per_person=20", "data.synthetic.n_signs=4",
                       "data.synthetic.signs_per_sentence=[2,4]", "data.batch_size=8", "optim.lr=3e-3",
                       "trainer.max_epochs=40", "trainer.early_stopping.enabled=false"],
    # The task's own built-in phrases (8/2/2 speakers × 24 of 2–4 lip words), 16 of its 30 epochs: the full run
    # reached val WER 8% at epoch 12; half the phrases (6/2/2 × 16) were still at 56% after 20 epochs (measured).
    "cslr_lip": ["task=cslr_lip", "data.synthetic.root={root}/lip_sentences",
                 "data.cache_dir={root}/lip_sentences_cache", "data.manifests_dir={root}/lip_sentences_manifests",
                 "trainer.max_epochs=16", "trainer.early_stopping.enabled=false"],
    "cslr_rgb_teacher": ["task=cslr_rgb_teacher", *_RGB_SENTENCES, "trainer.max_epochs=12"],
    "cslr_rgb": ["task=cslr_rgb", *_RGB_SENTENCES, "trainer.max_epochs=12"],
    "i3d": ["task=i3d", *_RGB, "optim.lr=3e-4", "trainer.max_epochs=6"],
    # input_scale 2: the 64×64 clips reach the backbone at 128×128, a last feature map of 4×4 as the recipe's 112×112
    # clips give; at 64×64 itself (2×2, a hand less than a cell) the same run stayed at chance (docs/distill.md).
    "mobilenetv3": ["task=mobilenetv3", *_RGB, "optim.lr=1e-3", "model.variant=small", "model.dropout=0.2",
                    "model.input_scale=2", "trainer.max_epochs=12"],
}


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


def prepare_in_process(overrides: list[str], capsys) -> tuple[int, str, str]:
    """What `signlip prepare <overrides>` does, in-process: (exit code, stdout, stderr)."""
    from signlip.commands.prepare import main as prepare_main

    try:
        prepare_main(compose("prepare", overrides))
        code = 0
    except SystemExit as exc:
        code = int(exc.code)
    out = capsys.readouterr()
    return code, out.out, out.err


def read_rows(path) -> list[dict[str, str]]:
    """The rows of a CSV (a manifest, a report) as dicts."""
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


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
    make_synthetic_hands(root, n_people=(10, 2, 2), per_class_per_person=2, seed=0)
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


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """`tiny_checkpoint(task) -> best.pt`: one epoch of the task's recipe on its TINY_DATA set (signlip.benchmarking),
    trained once per session. For checks that need a real checkpoint of every task (predict, export) but not a
    learned model — what they compare is two paths over the same weights."""
    from signlip.benchmarking import tiny_data_overrides

    root = tmp_path_factory.mktemp("tiny")
    made: dict[str, Path] = {}

    def make(task: str) -> Path:
        if task not in made:
            overrides = [f"task={task}", *tiny_data_overrides(task, root), "trainer.max_epochs=1", "seed=0",
                         "trainer.device=cpu"]
            result = train_in_process(root / "runs" / task, overrides)
            made[task] = Path(result["checkpoint_dir"]) / "best.pt"
        return made[task]

    return make
