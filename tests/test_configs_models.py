"""Every task config composes; every registered model runs forward and backward."""

from __future__ import annotations

import pytest
import torch

from conftest import REPO, compose
from signlip.errors import SignlipError
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


load_all()
# The package's own models: tests may register toy entries of their own (tests/test_seam.py), which keep no such
# contract (a regressor has no num_classes) and are left out whatever order the files are collected in.
PACKAGE_MODELS = [name for name in MODELS.names() if MODELS.get(name).__module__.startswith("signlip.")]


def test_every_registered_model_declares_an_example_input():
    """A model's example input lives beside its registration (`MODELS.register(name, example=fn)`), so that the
    tests below cover a new model without a per-model branch here."""
    assert len(PACKAGE_MODELS) >= 6, PACKAGE_MODELS
    missing = [name for name in PACKAGE_MODELS if not callable(MODELS.metadata(name).get("example"))]
    assert not missing, (f"models registered without example=<fn returning (kwargs, x, mask)>: {', '.join(missing)} "
                         f"— add it to their MODELS.register(...) line")


def test_a_model_without_an_example_is_named():
    from signlip.registry import Registry

    registry = Registry("model")
    registry.register("with_example", example=lambda: ({}, torch.zeros(1), None))(object)
    registry.register("without_example")(object)
    assert registry.metadata("with_example")["example"]()[0] == {}
    assert registry.metadata("without_example") == {}
    with pytest.raises(SignlipError, match="unknown model 'nope'"):
        registry.metadata("nope")


def example(name: str):
    make = MODELS.metadata(name).get("example")
    if make is None:
        pytest.fail(f"model {name} is registered without an example input (MODELS.register({name!r}, example=...))")
    return make()


@pytest.mark.parametrize("name", PACKAGE_MODELS)
def test_registered_model_forward_backward(name):
    kwargs, x, mask = example(name)
    model = MODELS.build(name, num_classes=5, **kwargs)
    logits = model(x, mask)
    assert logits.shape == (x.shape[0], 5)
    logits.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
