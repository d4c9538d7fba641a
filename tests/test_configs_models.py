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
    if name in ("lip_cnnlstm", "lip_cnn3d"):  # gray mouth clips (B, 1, T, H, W)
        return {}, torch.rand(b, 1, 4, 16, 24), None
    if name == "asl_tcn_transformer":  # (B, T, 744) motion features, second sequence padded after 12 frames
        return {"input_dim": 744}, torch.randn(b, 20, 744), torch.arange(20)[None] < torch.tensor([20, 12])[:, None]
    if name == "i3d":  # RGB clips (B, 3, T, H, W); the smallest size that reaches every pooling stage
        return {}, torch.randn(b, 3, 8, 32, 32), None
    if name == "mobilenetv3":  # RGB clips (B, 3, T, H, W), frames folded into the batch
        return {"variant": "small"}, torch.randn(b, 3, 4, 32, 32), None
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
