"""The objective / evaluator seam holds: a second kind of task, added here alone, trains through the one Trainer.

A toy regression task — y a linear function of a (T, F) sequence plus noise — registers its own data module, model,
MSE objective and MAE evaluator in this file, and is trained by `signlip.training.run_training` from a plain config
dict. trainer.py is not touched: it must pick the best checkpoint on val/mae (mode min, the evaluator's), and
`signlip.build.rebuild` must bring the model and its data back from the checkpoint alone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import REPO
from signlip import distributed as dist
from signlip.build import build_data, rebuild
from signlip.checkpoint import load_checkpoint
from signlip.config import EarlyStoppingSettings, TrainerSettings
from signlip.data.base import BatchTransform, DataBundle
from signlip.evaluators import Alarm
from signlip.registry import DATASETS, EVALUATORS, MODELS, OBJECTIVES
from signlip.trainer import run_evaluation
from signlip.training import run_training

T, FEATURES = 12, 4  # each sample is a (T, F) sequence
NOISE = 0.1  # std of the noise on y; the signal's std is ~1
SPLIT_SIZES = {"train": 512, "val": 128, "test": 128}


# --- the toy task: registered here only -----------------------------------------------------------------------------
class ToySequences:
    """A split of (T, F) sequences and float targets, handed out a whole batch at a time."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x = torch.from_numpy(x)  # (N, T, F) float32
        self.targets = torch.from_numpy(y)  # (N,) float32

    def __len__(self) -> int:
        return len(self.targets)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.int64)
        return {"x": self.x[idx], "y": self.targets[idx], "index": idx}


@DATASETS.register("toy_regression")
def toy_regression(data_seed: int = 0, bias: float = 1.0, seed: int = 0, splits: tuple[str, ...] = ("train", "val",
                   "test"), preprocessing: dict[str, Any] | None = None) -> DataBundle:
    """y = <W, x> / sqrt(T·F) + bias + noise for x ~ N(0, 1)^(T×F). `data_seed` fixes the world (W and every split),
    so a rebuild from the checkpoint regenerates the very same test set; `seed` (the run's) is not needed here."""
    rng = np.random.default_rng(data_seed)
    weights = rng.standard_normal((T, FEATURES))
    generated = {}
    for split, n in SPLIT_SIZES.items():  # always all three, in order: a split's samples do not depend on `splits`
        x = rng.standard_normal((n, T, FEATURES)).astype(np.float32)
        y = (x * weights).sum((1, 2)) / np.sqrt(T * FEATURES) + bias + NOISE * rng.standard_normal(n)
        generated[split] = (x, y.astype(np.float32))
    # The train mean is a statistic of the training data: computed once, then carried by the checkpoint.
    target_mean = (preprocessing or {}).get("target_mean", float(generated["train"][1].mean()))
    return DataBundle(classes=[], splits={s: ToySequences(*generated[s]) for s in splits},
                      batch_transform=BatchTransform(),
                      preprocessing={"kind": "toy_regression", "data_seed": data_seed, "target_mean": target_mean},
                      model_kwargs={"input_dim": T * FEATURES})


def toy_example(batch: int = 2) -> tuple[dict, torch.Tensor, torch.Tensor | None]:
    return {"input_dim": T * FEATURES}, torch.randn(batch, T, FEATURES), None


@MODELS.register("toy_regressor", example=toy_example)
class ToyRegressor(nn.Module):
    """(B, T, F) → (B,): one linear layer over the flattened sequence."""

    def __init__(self, input_dim: int):
        super().__init__()
        self.linear = nn.Linear(input_dim, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # noqa: ARG002
        return self.linear(x.flatten(1)).squeeze(1)


@OBJECTIVES.register("toy_mse")
class MSEObjective:
    """Mean squared error on (B,) predictions against float batch["y"]."""

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pred = model(batch["x"], batch.get("mask"))  # (B,)
        return {"loss": F.mse_loss(pred.float(), batch["y"]), "outputs": pred}


@EVALUATORS.register("toy_mae")
class MAEEvaluator:
    """Mean absolute error (and the MAE of always predicting the train mean, the trivial baseline); lower is
    better. Its alarm: the model is no better than that baseline."""

    monitor, mode = "mae", "min"
    headline = ("mae",)

    def __init__(self, data: DataBundle, after_epochs: int = 5):
        self.target_mean = float(data.preprocessing["target_mean"])
        self.after_epochs = after_epochs
        self.fired: str | None = None
        self.last: dict[str, float] | None = None
        self.reset()

    def reset(self) -> None:
        self._sums: torch.Tensor | None = None  # (abs error, baseline abs error, count), on the outputs' device

    def update(self, outputs: torch.Tensor, batch: dict[str, torch.Tensor]) -> None:
        y = batch["y"].float()
        sums = torch.stack([(outputs.float() - y).abs().sum(), (y - self.target_mean).abs().sum(),
                            torch.tensor(float(len(y)), device=y.device)])
        self._sums = sums if self._sums is None else self._sums + sums

    def compute(self) -> dict[str, float]:
        abs_err, base_err, n = dist.all_reduce_sum(self._sums).tolist()
        self.last = {"mae": abs_err / n, "baseline_mae": base_err / n, "n_samples": int(n)}
        return {"mae": self.last["mae"], "baseline_mae": self.last["baseline_mae"]}

    def check_alarm(self, epoch: int, history: list[dict[str, float]]) -> Alarm | None:  # noqa: ARG002
        if self.fired or self.last is None or epoch < self.after_epochs or self.last["mae"] < self.last["baseline_mae"]:
            return None
        self.fired = f"val MAE {self.last['mae']:.3f} is no better than predicting the train mean"
        return Alarm("NO BETTER THAN THE MEAN", self.fired, ("inputs not aligned with targets",))

    def fired_alarms(self) -> list[str]:
        return [self.fired] if self.fired else []

    def images(self) -> dict[str, np.ndarray]:
        return {}  # nothing worth a picture per epoch

    def report(self, split: str, out_dir: str | Path, logger, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        report = {"split": split, **self.last, **(extra or {})}
        Path(out_dir, f"evaluation_{split}.json").write_text(json.dumps(report, indent=2))
        logger.print(f"{split} MAE {report['mae']:.4f} (predicting the train mean: {report['baseline_mae']:.4f})")
        return report

    def summary(self, report: dict[str, Any]) -> tuple[str, str]:
        return f"{report['split']} MAE", f"{report['mae']:.4f}"

    def state_dict(self) -> dict[str, Any]:
        return {"fired": self.fired}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.fired = state.get("fired")


# --- the run ---------------------------------------------------------------------------------------------------------
def group_defaults(group: str, option: str, **changes: Any) -> dict[str, Any]:
    """A config group's option as conf/<group>/<option>.yaml states it (its defaults live there only), changed."""
    from omegaconf import OmegaConf

    return {**OmegaConf.to_container(OmegaConf.load(REPO / "conf" / group / f"{option}.yaml")), **changes}


def toy_config() -> dict[str, Any]:
    """A plain config dict, as `OmegaConf.to_container` of a composed config would give it."""
    return {"task_name": "toy_regression", "seed": 0,
            "data": {"name": "toy_regression", "data_seed": 7, "batch_size": 32, "eval_batch_size": 64,
                     "num_workers": 0},
            "model": {"name": "toy_regressor"},
            "objective": {"name": "toy_mse"},
            "evaluator": {"name": "toy_mae"},
            "optim": group_defaults("optim", "adam", lr=3e-2, weight_decay=0.0),
            "sched": group_defaults("sched", "none"),
            "logger": group_defaults("logger", "default", tensorboard=False, progress=False)}


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> dict[str, Any]:
    run_dir = tmp_path_factory.mktemp("toy") / "run"
    settings = TrainerSettings(max_epochs=15, device="cpu",
                               early_stopping=EarlyStoppingSettings(enabled=True, patience=100))
    result = run_training(toy_config(), settings, run_dir, outputs_root=run_dir.parent)
    return {**result, "settings": settings}


def test_toy_regression_learns_far_below_the_trivial_baseline(toy_run):
    data = build_data(toy_config(), splits=("train", "test"))
    train_mean = data.splits["train"].targets.mean()
    baseline = (data.splits["test"].targets - train_mean).abs().mean().item()  # predict the train mean: ~0.8
    test = toy_run["test"]
    assert test["baseline_mae"] == pytest.approx(baseline, rel=1e-5)
    # The noise alone costs NOISE·sqrt(2/π) ≈ 0.08; a model that learned nothing sits at the baseline.
    assert test["mae"] < 0.25 * baseline, (test["mae"], baseline)
    assert test["n_samples"] == SPLIT_SIZES["test"]
    assert json.loads((Path(toy_run["run_dir"]) / "evaluation_test.json").read_text())["mae"] == test["mae"]
    assert not toy_run["summary"]["alarms"]


def test_best_checkpoint_is_chosen_on_val_mae_with_mode_min(toy_run):
    settings = toy_run["settings"]
    assert (settings.monitor, settings.mode) == ("val/mae", "min")  # the evaluator's defaults, not accuracy / max
    summary = toy_run["summary"]
    assert summary["best"]["monitor"] == "val/mae"
    ckpt_dir = Path(toy_run["checkpoint_dir"])
    history = load_checkpoint(ckpt_dir / "last.pt")["history"]
    maes = [h["val/mae"] for h in history]
    best_epoch = int(np.argmin(maes)) + 1
    assert best_epoch != int(np.argmax(maes)) + 1  # the curve moved: min and max pick different epochs
    assert summary["best_epoch"] == best_epoch and summary["best"]["value"] == pytest.approx(min(maes))
    best = load_checkpoint(ckpt_dir / "best.pt")
    assert best["epoch"] == best_epoch and best["history"][-1]["val/mae"] == pytest.approx(min(maes))
    assert best["classes"] == [] and best["evaluator"]["name"] == "toy_mae"


def test_rebuild_from_the_checkpoint_reproduces_the_test_mae(toy_run):
    back = rebuild(Path(toy_run["checkpoint_dir"]) / "best.pt", splits=("test",))
    assert isinstance(back.model, ToyRegressor) and isinstance(back.evaluator, MAEEvaluator)
    assert back.data.preprocessing == back.checkpoint["preprocessing"]
    metrics = run_evaluation(back.model, back.objective, back.evaluator, back.loader("test"),
                             back.data.batch_transform, torch.device("cpu"))
    assert metrics["mae"] == pytest.approx(toy_run["test"]["mae"], rel=1e-5, abs=1e-6)
    assert metrics["loss"] == pytest.approx(toy_run["test"]["loss"], rel=1e-5, abs=1e-6)


def test_evaluate_checkpoint_scores_the_toy_task_with_its_own_evaluator(toy_run, tmp_path):
    from signlip.evaluation import evaluate_checkpoint

    report = evaluate_checkpoint(Path(toy_run["checkpoint_dir"]) / "best.pt", out=tmp_path, device="cpu")
    assert report["task"] == "toy_regression" and report["mae"] == pytest.approx(toy_run["test"]["mae"], rel=1e-5)
    assert json.loads((tmp_path / "evaluation_test.json").read_text())["split"] == "test"


def test_trainer_knows_no_classification_words():
    source = (REPO / "src" / "signlip" / "trainer.py").read_text()
    # `class Trainer:` statements are Python, not a classification concept; every other "class…" counts.
    text = re.sub(r"(?m)^\s*class \w+\s*[(:]", "", source)
    found = sorted({m.group(0).lower() for m in re.finditer(r"class|accuracy|confusion|chance", text, re.IGNORECASE)})
    assert not found, f"trainer.py mentions {', '.join(found)} — metrics belong to an evaluator"
