"""Every task config composes; every registered model runs forward and backward."""

from __future__ import annotations

import pytest
import torch

from conftest import REPO, compose
from signlip.registry import MODELS, load_all

TASKS = sorted(p.stem for p in (REPO / "conf" / "task").glob("*.yaml"))


@pytest.mark.parametrize("task", TASKS)
def test_task_config_composes(task):
    cfg = compose("train", [f"task={task}"])
    assert cfg.task_name == task
    for group in ("data", "model", "optim", "sched", "trainer"):
        assert "name" in cfg[group] or group == "trainer", group


@pytest.mark.parametrize("group", ["optim", "sched", "model"])
def test_every_option_of_a_group_composes(group):
    for path in sorted((REPO / "conf" / group).glob("*.yaml")):
        cfg = compose("train", [f"{group}={path.stem}"])
        assert cfg[group].name


# One small example input per registered model: (x, mask). A new model must add its entry here.
def example_inputs(name: str):
    b = 2
    if name == "landmark_gru":
        return {"input_size": 63}, torch.randn(b, 30, 63), torch.ones(b, 30, dtype=torch.bool)
    raise KeyError(name)


load_all()


@pytest.mark.parametrize("name", MODELS.names())
def test_registered_model_forward_backward(name):
    kwargs, x, mask = example_inputs(name)
    model = MODELS.build(name, num_classes=5, **kwargs)
    logits = model(x, mask)
    assert logits.shape == (x.shape[0], 5)
    logits.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
