"""Every config group has a typed schema (signlip.schemas): an unknown key, a wrong type or an out-of-range value
stops at start with one line naming the full dotted key, in-process (check_config) and through the CLI (exit 2); each
schema matches the signature of what it configures; keys renamed to one spelling per idea still load from old
checkpoints."""

from __future__ import annotations

import copy
import csv
import dataclasses
import functools
import inspect
import subprocess
import sys
from typing import Annotated

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from conftest import REPO, compose, run_cli
from signlip import schemas
from signlip.config import check_composed, check_config, discriminator, upgrade_config, validate
from signlip.errors import SignlipError
from signlip.schemas import GROUPS, Group

TASKS = sorted(p.stem for p in (REPO / "conf" / "task").glob("*.yaml"))
CPU = torch.device("cpu")


def fields(schema: type, without: tuple[str, ...] = ()) -> set[str]:
    return {f.name for f in dataclasses.fields(schema)} - set(without)


def params(fn, without: tuple[str, ...] = ()) -> set[str]:
    return set(inspect.signature(fn).parameters) - set(without)


def composed(config_name: str, overrides: list[str]) -> tuple[dict, object]:
    cfg = compose(config_name, overrides)
    config = OmegaConf.to_container(cfg, resolve=True)
    return config, (OmegaConf.to_object(cfg.trainer) if "trainer" in cfg else None)


GROUP_CHOICES = ("task", "data", "model", "objective", "evaluator", "optim", "sched")


@functools.cache
def composed_once(config_name: str, choices: tuple[str, ...]) -> tuple[dict, object]:
    return composed(config_name, list(choices))


def with_overrides(config_name: str, overrides: list[str]) -> tuple[dict, object]:
    """The composed config with `overrides` applied: group choices by Hydra (each composition once per session, to
    keep the many cases fast), `key=value` / `+key=value` / `~key` on the plain dict as Hydra would apply them."""
    choices = tuple(o for o in overrides if o.split("=")[0] in GROUP_CHOICES)
    config, settings = copy.deepcopy(composed_once(config_name, choices))
    for item in overrides:
        if item in choices:
            continue
        path, _, value = item.lstrip("+~").partition("=")
        *parents, leaf = path.split(".")
        node = config
        for part in parents:
            node = node[part]
        if item.startswith("~"):
            del node[leaf]
        else:
            assert item.startswith("+") or leaf in node, f"{item}: Hydra would need +{item}"
            node[leaf] = yaml.safe_load(value)
    return config, settings


def rejection(config_name: str, overrides: list[str]) -> str:
    """The one line check_config (check_composed for evaluate) stops with."""
    config, settings = with_overrides(config_name, overrides)
    with pytest.raises(SignlipError) as info:
        if settings is None:
            check_composed(config_name, config)
        else:
            check_config(config, settings, CPU)
    message = str(info.value)
    assert "\n" not in message, message
    return message


# (config, overrides, the message's start) — for every group and option: one unknown key, one value out of range.
LIP, RGB, ASL = "task=lip_cnnlstm", "task=i3d", "task=asl_tcn_transformer"
CASES = [
    # data, each option and its nested nodes
    ("train", ["+data.foo=1"], "data.foo: no such key"),
    ("train", ["data.augment.p_rotate=1.5"], "data.augment.p_rotate=1.5 — it must be a probability in [0, 1]"),
    ("train", ["+data.synthetic.foo=1"], "data.synthetic.foo: no such key"),
    ("train", ["data.synthetic.n_people=[12,0,3]"], "data.synthetic.n_people=[12, 0, 3] — it must be a list [train"),
    ("train", ["data.batch_size=0"], "data.batch_size=0 — it must be an integer ≥ 1, or auto"),
    ("train", ["data.val_fraction=1.0"], "data.val_fraction=1.0 — it must be a number in (0, 1)"),
    ("train", ["data.val_fraction=0.5", "data.test_fraction=0.5"], "data.val_fraction + data.test_fraction=1.0"),
    ("train", [ASL, "+data.augment.foo=1"], "data.augment.foo: no such key"),
    ("train", [ASL, "data.augment.p_hflip=-0.1"], "data.augment.p_hflip=-0.1 — it must be a probability"),
    ("train", [ASL, "data.limit=0"], "data.limit=0 — it must be an integer ≥ 1 or null"),
    ("train", [ASL, "+data.prepare.foo=1"], "data.prepare.foo: no such key"),
    ("train", [ASL, "data.prepare.min_confidence=2"], "data.prepare.min_confidence=2 — it must be a number in [0, 1]"),
    ("train", [ASL, "data.format=csv"], "data.format='csv' — it must be one of auto, manifest, videos, gislr, folders"),
    ("train", [LIP, "+data.synthetic.foo=1"], "data.synthetic.foo: no such key"),
    ("train", [LIP, "data.augment.p_hflip=1.5"], "data.augment.p_hflip=1.5 — it must be a probability in [0, 1]"),
    ("train", [LIP, "data.augment.contrast=[1.1,0.9]"], "data.augment.contrast=[1.1, 0.9] — it must be a number"),
    ("train", [LIP, "data.prepare.roi=face"], "data.prepare.roi='face' — it must be one of auto, mediapipe, none, box"),
    ("train", [RGB, "+data.prepare.foo=1"], "data.prepare.foo: no such key"),
    ("train", [RGB, "data.synthetic.n_people=[6,2]"], "data.synthetic.n_people=[6, 2] — it must be a list [train"),
    ("train", [RGB, "data.synthetic.kind=video"],
     "data.synthetic.kind='video' — it must be one of lip, lip_sentences, rgb"),
    ("train", [RGB, "+data.augment.resized_crop.p=1"], "data.augment.resized_crop.p: no such key (renamed to"),
    ("train", [RGB, "data.augment.p_resized_crop=2"], "data.augment.p_resized_crop=2 — it must be a probability"),
    # model, every option
    ("train", ["+model.foo=1"], "model.foo: no such key"),
    ("train", ["model.hidden_size=0"], "model.hidden_size=0 — it must be an integer ≥ 1"),
    ("train", ["model=landmark_gru_deep", "model.num_layers=0"], "model.num_layers=0 — it must be an integer ≥ 1"),
    ("train", ["model=landmark_gru_light", "model.cell=rnn"], "model.cell='rnn' — it must be one of gru, lstm"),
    ("train", ["+model.input_size=63"], "model.input_size: no such key"),  # the data's fact, not a setting
    ("train", [ASL, "+model.foo=1"], "model.foo: no such key"),
    ("train", [ASL, "model.attn_drop=1.5"], "model.attn_drop=1.5 — it must be a number in [0, 1)"),
    ("train", [ASL, "model.num_heads=7"], "model.dim=192 — it must be a multiple of model.num_heads=7"),
    ("train", [LIP, "+model.foo=1"], "model.foo: no such key"),
    ("train", [LIP, "model.pooled_size=[4]"], "model.pooled_size=[4] — it must be a list [height, width]"),
    ("train", ["task=lip_cnn3d", "+model.foo=1"], "model.foo: no such key"),
    ("train", ["task=lip_cnn3d", "model.dropouts=[0.4,0.2]"], "model.dropouts=[0.4, 0.2] — it must be a list of 3"),
    ("train", [RGB, "+model.foo=1"], "model.foo: no such key"),
    ("train", [RGB, "model.dropout=-0.1"], "model.dropout=-0.1 — it must be a number in [0, 1)"),
    ("train", ["task=mobilenetv3", "+model.foo=1"], "model.foo: no such key"),
    ("train", ["task=mobilenetv3", "model.variant=huge"], "model.variant='huge' — it must be one of large, small"),
    # objective, evaluator
    ("train", ["+objective.foo=1"], "objective.foo: no such key"),
    ("train", ["objective.label_smoothing=1.0"], "objective.label_smoothing=1.0 — it must be a number in [0, 1)"),
    ("train", ["objective.class_weights=heavy"], "objective.class_weights='heavy' — it must be balanced"),
    ("train", ["+evaluator.alarm.foo=1"], "evaluator.alarm.foo: no such key"),
    ("train", ["evaluator.top_k=[0]"], "evaluator.top_k=[0] — it must be a list of integers ≥ 1"),
    # optim, every option
    ("train", ["optim=adam", "+optim.momentum=0.9"], "optim.momentum: no such key"),
    ("train", ["optim=adam", "optim.betas=[0.9,1.0]"], "optim.betas=[0.9, 1.0] — it must be a list [beta1, beta2]"),
    ("train", ["optim=adamw", "+optim.foo=1"], "optim.foo: no such key"),
    ("train", ["optim=adamw", "optim.lr=-1"], "optim.lr=-1 — it must be a number > 0"),
    ("train", ["optim=sgd", "+optim.betas=[0.9,0.99]"], "optim.betas: no such key"),
    ("train", ["optim=sgd", "optim.momentum=1.0"], "optim.momentum=1.0 — it must be a number in [0, 1)"),
    ("train", ["optim=sgd", "~optim.nesterov"], "optim.nesterov is missing — it must be true or false"),
    # sched, every option
    ("train", ["sched=plateau", "+sched.T_mult=2"], "sched.T_mult: no such key"),
    ("train", ["sched=plateau", "sched.factor=1.5"], "sched.factor=1.5 — it must be a number in (0, 1)"),
    ("train", ["sched=plateau", "~sched.patience"], "sched.patience is missing — it must be an integer ≥ 0"),
    ("train", ["sched=cosine", "+sched.factor=0.5"], "sched.factor: no such key"),
    ("train", ["sched=cosine", "sched.min_lr=-1"], "sched.min_lr=-1 — it must be a number ≥ 0"),
    ("train", [ASL, "+sched.foo=1"], "sched.foo: no such key"),  # cosine_warm_restarts
    ("train", [ASL, "sched.T_mult=0"], "sched.T_mult=0 — it must be an integer ≥ 1"),
    ("train", [RGB, "sched=step", "+sched.foo=1"], "sched.foo: no such key"),
    ("train", [RGB, "sched=step", "sched.gamma=0"], "sched.gamma=0 — it must be a number in (0, 1]"),
    ("train", [RGB, "sched=onecycle", "+sched.foo=1"], "sched.foo: no such key"),
    ("train", [RGB, "sched=onecycle", "sched.pct_start=1"], "sched.pct_start=1 — it must be a number in (0, 1)"),
    ("train", [RGB, "sched=none", "+sched.min_lr=0"], "sched.min_lr: no such key"),
    ("train", [RGB, "sched=none", "sched.warmup_steps=-1"], "sched.warmup_steps=-1 — it must be an integer ≥ 0"),
    # logger, top level
    ("train", ["+logger.foo=1"], "logger.foo: no such key"),
    ("train", ["logger.tensorboard=3"], "logger.tensorboard=3 — it must be true or false"),
    ("train", ["+foo=1"], "foo: no such key — the config takes seed, task_name, data"),
    ("train", ["seed=1.5"], "seed=1.5 — it must be an integer in 0..2⁶³−1"),
    # command nodes
    ("distill", ["+distill.foo=1"], "distill.foo: no such key"),
    ("distill", ["distill.alpha=1.5"], "distill.alpha=1.5 — it must be a number in [0, 1]"),
    ("distill", ["distill.temperature=0"], "distill.temperature=0 — it must be a number > 0"),
    ("distill", ["+teacher.foo=1"], "teacher.foo: no such key"),
    ("distill", ["+student.foo=1"], "student.foo: no such key"),
    ("prepare", ["+prepare.foo=1"], "prepare.foo: no such key"),
    ("prepare", ["prepare.workers=0"], "prepare.workers=0 — it must be an integer ≥ 1"),
    ("evaluate", ["ckpt=x.pt", "+foo=1"], "foo: no such key — the config takes ckpt, split"),
    ("evaluate", ["ckpt=x.pt", "split=dev"], "split='dev' — it must be one of test, val, train"),
    ("evaluate", ["ckpt=x.pt", "batch_size=0"], "batch_size=0 — it must be an integer ≥ 1 or null"),
    ("evaluate", ["ckpt=x.pt", "+data.foo=1"], "data.foo: no such key"),
    ("evaluate", [], "ckpt is missing — it must be the path of a checkpoint"),
]


@pytest.mark.parametrize(("config_name", "overrides", "start"), CASES, ids=[" ".join(c[1]) for c in CASES])
def test_a_wrong_key_or_value_is_one_line_naming_it(config_name, overrides, start):
    message = rejection(config_name, overrides)
    assert message.startswith(start), message


def test_an_unknown_key_names_what_the_node_takes_and_the_likely_key():
    message = rejection("train", [LIP, "+data.augment.brightnes=0.1"])
    assert "(did you mean brightness?)" in message and "data.augment takes p_hflip, brightness, p_brightness" in message
    assert "(renamed to p_hflip)" in rejection("train", [LIP, "+data.augment.hflip=0.5"])
    assert "(renamed to n_people: [train, val, test])" in rejection("train", [ASL, "+data.synthetic.val_signers=1"])


def test_a_recipe_value_left_behind_by_another_option_is_named_with_its_owner():
    """landmark_gru's recipe sets sched.min_lr for its plateau schedule; picking sched=onecycle keeps that key in the
    composed group, where onecycle has no use for it: stop, say whose key it is and how to drop it."""
    message = rejection("train", ["task=landmark_gru", "sched=onecycle"])
    assert message.startswith("sched.min_lr: no such key") and \
        message.endswith("min_lr belongs to sched=plateau, cosine: drop it with ~sched.min_lr"), message
    config, settings = composed("train", ["task=landmark_gru", "sched=onecycle", "~sched.min_lr"])
    check_config(config, settings, CPU)


def test_trainer_settings_are_checked_in_process_too():
    config, settings = composed("train", [])
    for key, value, must in (("max_epochs", 0, "an integer ≥ 1"), ("grad_clip_norm", -1.0, "a number ≥ 0 (0 = off)"),
                             ("mode", "sideways", "one of max, min or null"), ("nan_policy", "retry", "one of stop"),
                             ("limit_train_batches", 0, "an integer ≥ 1 or null")):
        with pytest.raises(SignlipError) as info:
            check_config(config, dataclasses.replace(settings, **{key: value}), CPU)
        assert str(info.value).startswith(f"trainer.{key}={value!r} — it must be {must}"), str(info.value)
    with pytest.raises(SignlipError, match=r"^trainer\.max_epoch: no such key \(did you mean max_epochs\?\)"):
        check_config({**config, "trainer": {**config["trainer"], "max_epoch": 5}}, settings, CPU)
    with pytest.raises(SignlipError, match="needs a CUDA device"):
        check_config(config, dataclasses.replace(settings, precision="16"), CPU)


@pytest.mark.parametrize("task", TASKS)
def test_every_task_composes_and_validates_for_every_command(task):
    for config_name in ("train", "prepare", "doctor"):
        config, settings = composed(config_name, [f"task={task}"])
        check_composed(config_name, config)
        check_config(config, settings, CPU)


def test_distill_and_evaluate_compose_and_validate():
    config, settings = composed("distill", ["task=mobilenetv3", "teacher.ckpt=t.pt"])
    check_config(config, settings, CPU)
    check_composed("evaluate", composed("evaluate", ["ckpt=x.pt", "split=val", "data.manifest=m.csv"])[0])


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_every_option_of_a_group_has_its_schema_and_validates(group):
    """Each conf/<group>/<option>.yaml alone (no task deltas) against the schema its name picks."""
    names = {option_name(s) for s in GROUPS[group]}
    for path in sorted((REPO / "conf" / group).glob("*.yaml")):
        node = option_node(path)
        assert node["name"] in names, f"conf/{group}/{path.name}: no schema for {group}.name={node['name']}"
        validate(node, dict_group(group), group)
        with pytest.raises(SignlipError, match=rf"^{group}\.zz_typo: no such key"):
            validate({**node, "zz_typo": 1}, dict_group(group), group)


def option_node(path) -> dict:
    """An option file with its own defaults list applied (e.g. data/holistic's `synthetic: signs` →
    conf/data/synthetic/signs.yaml under `synthetic`)."""
    node = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    for entry in node.pop("defaults", []):
        if isinstance(entry, dict):
            (sub, option), = entry.items()
            node = {sub: OmegaConf.to_container(OmegaConf.load(path.parent / sub / f"{option}.yaml")), **node}
    return node


def option_name(schema: type) -> str:
    field, (name,) = discriminator(schema)
    assert field == "name"
    return name


def dict_group(group: str):
    """The type of a group node in a run config: picked from GROUPS by its name."""
    return Annotated[dict, Group(group)]


def test_a_name_without_a_signlip_schema_is_left_to_its_constructor():
    config, settings = composed("train", [])
    config["objective"] = {"name": "toy_objective_of_a_test", "anything": 1}
    check_config(config, settings, CPU)  # its own signature rejects what it does not take, when it is built


# --- schemas match the signatures they configure ---------------------------------------------------------------------
def builtin(registry) -> list[str]:
    from signlip.registry import load_all

    load_all()
    return [n for n in registry.names() if registry.get(n).__module__.startswith("signlip.")]


def schema_of(group: str, name: str) -> type:
    match = [s for s in GROUPS[group] if option_name(s) == name]
    assert match, f"{group} {name!r} is registered but has no schema in signlip/schemas.py (GROUPS[{group!r}])"
    return match[0]


def test_model_schemas_match_the_model_constructors():
    """A model's schema in schemas.py is optional (a new model is one file + one YAML: without a schema its
    constructor's signature checks the keys when it is built); where one exists it must match the constructor."""
    from signlip.registry import MODELS

    with_schema = {option_name(s) for s in GROUPS["model"]}
    checked = [name for name in builtin(MODELS) if name in with_schema]
    assert checked
    for name in checked:
        expected = params(MODELS.get(name), schemas.DATA_IMPLIED)
        assert fields(schema_of("model", name), ("name",)) == expected, name


def test_a_model_without_a_schema_is_checked_by_its_signature():
    from signlip.build import instantiate
    from signlip.registry import MODELS

    @MODELS.register("toy_model_without_schema")
    class Toy(torch.nn.Module):
        def __init__(self, num_classes: int, width: int = 4):
            super().__init__()
            self.fc = torch.nn.Linear(width, num_classes)

    config, settings = composed("train", [])
    config["model"] = {"name": "toy_model_without_schema", "width": 8}
    check_config(config, settings, CPU)  # no schema: nothing to refuse up front
    assert instantiate(MODELS, {"name": "toy_model_without_schema", "kwargs": {"num_classes": 3, "width": 8}})
    with pytest.raises(SignlipError, match="model toy_model_without_schema rejected its settings.*widht"):
        instantiate(MODELS, {"name": "toy_model_without_schema", "kwargs": {"num_classes": 3, "widht": 8}})


def test_data_schemas_match_the_data_modules_and_the_loader_keys():
    from signlip.build import LOADER_KEYS
    from signlip.registry import DATASETS

    loader = fields(schemas.Loader)
    assert loader <= set(LOADER_KEYS)
    for name in builtin(DATASETS):
        expected = params(DATASETS.get(name), ("seed", "splits", "preprocessing"))
        assert fields(schema_of("data", name), ("name", *loader)) == expected, name


def test_objective_evaluator_and_command_schemas_match_their_code():
    from signlip.evaluators.classification import ChanceAlarm, ClassificationEvaluator
    from signlip.objectives.classification import ClassifyObjective
    from signlip.objectives.distill_run import distill_objective_factory

    assert fields(schemas.ClassifyConfig, ("name",)) == params(ClassifyObjective)
    assert fields(schemas.ClassificationConfig, ("name",)) == params(ClassificationEvaluator, ("data",))
    assert fields(schemas.ChanceAlarmSettings) == params(ChanceAlarm, ("num_classes",))
    assert fields(schemas.DistillSettings) <= params(distill_objective_factory)


def test_synthetic_prepare_and_augment_schemas_match_their_functions():
    from signlip.data.clips.augment import augment_clips
    from signlip.data.clips.synthetic_lip import make_synthetic_lip
    from signlip.data.clips.synthetic_rgb import make_synthetic_rgb
    from signlip.data.holistic.augment import HolisticAugment
    from signlip.data.holistic.datamodule import HolisticVideoPreparer
    from signlip.data.holistic.synthetic import make_synthetic_holistic, make_synthetic_sentences
    from signlip.data.landmarks.augment import augment_landmarks
    from signlip.data.landmarks.synthetic import make_synthetic_hands

    assert fields(schemas.HandsSynthetic) == params(make_synthetic_hands)
    assert fields(schemas.HolisticSynthetic, ("kind",)) == params(make_synthetic_holistic)
    assert fields(schemas.SentenceSynthetic, ("kind",)) == params(make_synthetic_sentences)
    assert fields(schemas.LipSynthetic, ("kind",)) == params(make_synthetic_lip)
    assert fields(schemas.RgbSynthetic, ("kind",)) == params(make_synthetic_rgb)
    assert fields(schemas.LandmarkAugmentSettings) == params(augment_landmarks, ("x",))
    assert fields(schemas.ClipAugmentSettings) == params(augment_clips, ("x", "generator", "inplace"))
    assert fields(schemas.HolisticAugmentSettings, ("enabled",)) == \
        params(HolisticAugment, ("mirror_index", "preset", "max_len", "flip_centre"))
    assert fields(schemas.HolisticPrepare) == params(HolisticVideoPreparer)


def test_optim_and_sched_schemas_match_their_functions_which_have_no_defaults():
    """conf/optim and conf/sched are the one place their defaults live: the functions have none, the schemas require
    every key."""
    from signlip.optim import OPTIMIZERS, SCHEDULES

    for group, table, skip in (("optim", OPTIMIZERS, ("params",)), ("sched", SCHEDULES, ("optimizer", "steps"))):
        for name, fn in table.items():
            sig = {k: p for k, p in inspect.signature(fn).parameters.items() if k not in skip}
            assert all(p.default is inspect.Parameter.empty for p in sig.values()), f"{group}.{name} has a default"
            schema = schema_of(group, name)
            own = fields(schema, ("name", "warmup_steps", "monitor") if group == "sched" else ("name",))
            assert own == set(sig), f"{group}={name}: schema {sorted(own)} vs function {sorted(sig)}"
            node = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / group / f"{name}.yaml"))
            for k in set(node) - {"name"}:  # every key the YAML states is required: the code has no fallback
                with pytest.raises(SignlipError, match=rf"^{group}\.{k} is missing — it must be"):
                    validate({n: v for n, v in node.items() if n != k}, dict_group(group), group)


def test_optimizer_and_schedule_refuse_a_missing_or_unknown_key():
    from signlip.optim import Schedule, build_optimizer

    model = torch.nn.Linear(2, 2)
    with pytest.raises(TypeError, match="betas"):
        build_optimizer(model.parameters(), "adam", lr=1e-3, weight_decay=0.0)
    with pytest.raises(TypeError, match="momentum"):
        build_optimizer(model.parameters(), "adam", lr=1e-3, weight_decay=0.0, betas=(0.9, 0.99), momentum=0.9)
    opt = build_optimizer(model.parameters(), "sgd", lr=0.1, weight_decay=0.0, momentum=0.9, nesterov=True)
    with pytest.raises(TypeError, match="patience"):
        Schedule(opt, "plateau", 10, 5, "max", 0, factor=0.5, min_lr=0.0)
    with pytest.raises(TypeError, match="pct_start"):
        Schedule(opt, "cosine", 10, 5, "max", 0, min_lr=0.0, pct_start=0.3)
    schedule = Schedule(opt, "step", 10, 5, "max", 0, step_epochs=1, gamma=0.5)
    for _ in range(10):
        opt.step()
        schedule.step_update()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)  # halved after one epoch of 10 updates


def test_data_modules_refuse_a_key_they_do_not_take():
    from signlip.registry import build_data

    with pytest.raises(TypeError, match="foo"):
        build_data("landmarks", manifest=None, foo=1)
    with pytest.raises(TypeError, match="p_hflip"):  # checked when the data is built, not at the first batch
        from signlip.data.landmarks.datamodule import LandmarkTransform

        LandmarkTransform([0.0], [1.0], {"p_rotate": 0.5, "p_hflip": 0.5})


# --- the CLI -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ("train", "task=lip_cnnlstm", "data.augment.p_hflip=1.5"),
    ("train", "+data.foo=1"),
    ("train", "task=lip_cnnlstm", "+data.augment.hflip=0.5"),
    ("train", "optim.lr=-1"),
    ("prepare", "task=lip_cnnlstm", "prepare.workers=0"),
    ("evaluate", "ckpt=nowhere.pt", "split=dev"),
])
def test_cli_rejects_with_one_line_and_exit_2(args, tmp_path):
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-1000:], proc.stderr[-2000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("signlip: error: "), proc.stderr
    key = args[-1].lstrip("+").split("=")[0]  # the last override is the bad one
    assert key in lines[0] and "Traceback" not in proc.stderr
    assert not list(tmp_path.iterdir()), "a rejected config must not start the run (no outputs folder)"


def test_train_help_shows_no_schema_option():
    proc = run_cli("train", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "trainer: default\n" in proc.stdout and "schema" not in proc.stdout


def test_the_check_stays_torch_free():
    code = ("import sys; from signlip.config import check_composed; from signlip.schemas import RunConfig; "
            "check_composed('evaluate', {'ckpt': 'x', 'split': 'test', 'out': None, 'device': 'auto', "
            "'batch_size': None, 'data': {'manifest': None}}); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- renamed keys: old configs (checkpoints, run.json) still load -----------------------------------------------------
OLD = {  # data groups as written before the renames
    "landmarks": {"synthetic": {"root": "r", "n_signers": [12, 3, 3], "per_class": 6, "seed": 0},
                  "augment": {"p": 0.4, "rotation_degrees": 15, "scale_fraction": 0.1, "shift": 0.05,
                              "noise_std": 0.005}},
    "holistic": {"synthetic": {"root": "r", "n_signers": 10, "val_signers": 2, "test_signers": 2,
                               "per_class_per_signer": 3, "n_classes": 25, "seed": 0},
                 "augment": {"enabled": True, "p_flip": 0.5}},
    "clips": {"synthetic": {"kind": "rgb", "root": "r", "n_signers": [6, 2, 2], "clips_per_class_per_signer": 3,
                            "frames": 24, "size": [112, 112], "n_classes": 6, "seed": 0},
              "augment": {"resized_crop": {"scale": [0.7, 1.0], "ratio": [0.75, 1.33], "p": 1.0}, "hflip": 0.0,
                          "brightness": 0.2, "brightness_p": 0.8, "contrast_p": 0.8, "saturation_p": 0.8}},
}


def test_old_spellings_are_upgraded_to_the_same_meaning():
    new = {name: upgrade_config({"data": {"name": name, **node}})["data"] for name, node in OLD.items()}
    assert new["landmarks"]["synthetic"] == {"root": "r", "n_people": [12, 3, 3], "per_class_per_person": 6, "seed": 0}
    assert [new["landmarks"]["augment"][k] for k in ("p_rotate", "p_scale", "p_shift", "p_noise")] == [0.4] * 4
    assert new["holistic"]["synthetic"]["n_people"] == [6, 2, 2]  # 10 signers, 2 val, 2 test
    assert new["holistic"]["augment"] == {"enabled": True, "p_hflip": 0.5}
    rgb = new["clips"]
    assert (rgb["synthetic"]["n_frames"], rgb["synthetic"]["frame_size"], rgb["synthetic"]["per_class_per_person"]) \
        == (24, [112, 112], 3)
    assert rgb["augment"]["p_resized_crop"] == 1.0 and "p" not in rgb["augment"]["resized_crop"]
    assert [rgb["augment"][k] for k in ("p_hflip", "p_brightness", "p_saturation")] == [0.0, 0.8, 0.8]
    for name, node in new.items():
        upgraded = {"name": name, **node}
        assert upgrade_config({"data": upgraded})["data"] == upgraded  # idempotent
        with pytest.raises(SignlipError, match=r"no such key \(renamed to"):  # a user's old key is named, not upgraded
            validate({"name": name, **OLD[name]}, dict_group("data"), "data")


def test_an_old_checkpoint_config_is_upgraded_on_load():
    from signlip.checkpoint import upgrade

    ckpt = {"format_version": 2, "config": {"data": {"name": "landmarks", **OLD["landmarks"]}}}
    data = upgrade(ckpt)["config"]["data"]
    assert data["augment"]["p_noise"] == 0.4 and data["synthetic"]["n_people"] == [12, 3, 3]


# --- data.limit holds when train prepares on first use ---------------------------------------------------------------
def test_holistic_limit_is_honoured_when_training_prepares_on_first_use(tmp_path):
    pytest.importorskip("pyarrow")
    from test_gislr import _write_sequence

    from signlip.build import build_data

    root = tmp_path / "gislr"
    records = []
    for k in range(8):  # 4 participants × 2 signs
        rel = f"train_landmark_files/p{k // 2}/{k}.parquet"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        _write_sequence(root / rel, n_frames=3, seed=k)
        records.append((rel, f"p{k // 2}", str(k), ("hello", "thanks")[k % 2]))
    root.mkdir(exist_ok=True)
    with (root / "train.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([("path", "participant_id", "sequence_id", "sign"), *records])
    base = [ASL, "data.format=gislr", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}",
            f"data.manifests_dir={tmp_path / 'manifests'}", "data.prepare=null"]

    def prepared_rows(extra: list[str]) -> int:
        config, settings = composed("train", [*base, *extra])
        check_config(config, settings, CPU)
        build_data(config, splits=("train",))
        manifest = next((tmp_path / "manifests").glob("*.prepared.csv"))
        return len(list(csv.DictReader(manifest.open())))

    assert prepared_rows(["data.limit=5"]) == 5
    assert prepared_rows([]) == 8
