"""Recipes are tested against their sources (docs/recipes.md), and task files hold only what differs from the defaults.

The table in docs/recipes.md lists, per task, every recipe value with the reference write-up it comes from. These
tests compose each task as `signlip train task=<t>` does (and `signlip distill` for the distill rows) and compare;
they also prove, on a copy of conf/, that the check catches the bug that once dropped every task's label smoothing
(a root-level default composed after the task).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO, compose
from signlip.cli import conf_dir

TABLE = REPO / "docs" / "recipes.md"
# In CI the repo is a fresh clone with shared/ beside it, as here: /work/main next to /work/shared.
REFERENCE = REPO.parent / "shared" / "reference"
CONF = conf_dir()  # the tree `compose` reads: the repo's conf/ in a checkout
TASKS = sorted(p.stem for p in (CONF / "task").glob("*.yaml"))
HEADER = ["task", "key", "value", "source", "note"]
SOURCE_FILE = re.compile(r"^\d{3}_[0-9a-f]{16}\.txt$")
# The recipe values every task's rows must cover (the schedule's own parameters are added per task, below).
REQUIRED = ("optim.name", "optim.lr", "optim.weight_decay", "data.batch_size", "trainer.max_epochs", "sched.name",
            "trainer.early_stopping.patience", "trainer.early_stopping.min_delta", "objective.label_smoothing",
            "trainer.grad_clip_norm")
REQUIRED_DISTILL = ("distill.temperature", "distill.alpha")
MISSING = object()


@dataclass(frozen=True)
class Row:
    line: int
    task: str
    key: str
    raw: str
    value: Any
    source: str                # the write-up's file name
    quotes: tuple[str, ...]    # verbatim words of that file showing the value
    source_cell: str
    note: str


def parse_table(text: str) -> list[Row]:
    """The rows of the `| task | key | value | source | note |` table; a malformed row fails naming its line."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if [c.strip() for c in line.strip().strip("|").split("|")] == HEADER]
    assert len(starts) == 1, f"docs/recipes.md: expected one table headed | {' | '.join(HEADER)} |, found {len(starts)}"
    rows = []
    for i in range(starts[0] + 2, len(lines)):  # + 2: the header and its |---| line
        line = lines[i].strip()
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == len(HEADER), (
            f"docs/recipes.md:{i + 1}: {len(cells)} cells, want {len(HEADER)} (no | inside a cell)")
        task, key, raw, source, note = cells
        value = yaml.safe_load(raw)
        # PyYAML reads `1e-4` as a string (YAML 1.1 wants `1.0e-4`); a number written so would never match a float.
        if isinstance(value, str) and re.fullmatch(r"[-+]?[\d.]+[eE][-+]?\d+", raw):
            pytest.fail(f"docs/recipes.md:{i + 1}: {task} {key}: write {raw} as YAML reads a float, e.g. 1.0e-4")
        spans = re.findall(r"`([^`]+)`", source)
        assert spans and SOURCE_FILE.match(spans[0]), (
            f"docs/recipes.md:{i + 1}: {task} {key}: the source must start with `NNN_<hash>.txt`, got {source!r}")
        rows.append(Row(i + 1, task, key, raw, value, spans[0], tuple(spans[1:]), source, note))
    return rows


@cache
def table() -> tuple[Row, ...]:
    return tuple(parse_table(TABLE.read_text(encoding="utf-8")))


def lookup(config: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(config, dict) or part not in config:
            return MISSING
        config = config[part]
    return config


def same(actual: Any, expected: Any) -> bool:
    # True == 1 in Python; a bool in the table must meet a bool in the config (and the reverse).
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    return actual == expected


def composed(task: str, compose_fn: Callable[[str, list[str]], Any] = compose) -> dict:
    from omegaconf import OmegaConf

    cfg = compose_fn("distill", []) if task == "distill" else compose_fn("train", [f"task={task}"])
    return OmegaConf.to_container(cfg, resolve=True)


def recipe_mismatches(rows: list[Row] | tuple[Row, ...], configs: Callable[[str], dict]) -> list[str]:
    """One line per table value that the composed config does not hold, naming task, key and both values."""
    out = []
    for row in rows:
        actual = lookup(configs(row.task), row.key)
        if actual is MISSING:
            out.append(f"{row.task}: {row.key} is not in the composed config (docs/recipes.md:{row.line} says "
                       f"{row.value!r})")
        elif not same(actual, row.value):
            out.append(f"{row.task}: {row.key} = {actual!r} in the composed config, {row.value!r} in "
                       f"docs/recipes.md:{row.line}")
    return out


@cache
def composed_task(task: str) -> dict:
    return composed(task)


# ---------------------------------------------------------------------------------------------------------------------
# The table against the composed configs


def test_table_covers_every_task_and_every_recipe_key():
    rows = table()
    assert {r.task for r in rows} == {*TASKS, "distill"}, "docs/recipes.md must have rows for every conf/task/*.yaml " \
                                                          "and for distill, and for nothing else"
    seen: dict[tuple[str, str], int] = {}
    for r in rows:
        assert (r.task, r.key) not in seen, f"{r.task} {r.key}: rows {seen[r.task, r.key]} and {r.line}"
        seen[r.task, r.key] = r.line
    missing = []
    for task in (*TASKS, "distill"):
        # Every parameter the task's schedule takes is part of its recipe, whichever schedule the task picks.
        sched = [f"sched.{k}" for k in composed_task(task)["sched"] if k != "name"]
        extra = REQUIRED_DISTILL if task == "distill" else ()
        # An objective without label smoothing (CTC) names itself instead.
        objective = composed_task(task)["objective"]
        required = [k if k != "objective.label_smoothing" or "label_smoothing" in objective else "objective.name"
                    for k in REQUIRED]
        missing += [f"{task}: {k}" for k in (*required, *sched, *extra) if (task, k) not in seen]
    assert not missing, "docs/recipes.md lacks rows for:\n" + "\n".join(missing)


@pytest.mark.parametrize("task", [*TASKS, "distill"])
def test_recipe_values_are_what_the_task_composes(task):
    mismatches = recipe_mismatches([r for r in table() if r.task == task], composed_task)
    assert not mismatches, "\n".join(mismatches)


def test_every_source_names_a_reference_write_up_that_holds_its_quote():
    if not REFERENCE.is_dir():
        pytest.skip(f"{REFERENCE} is absent (shared/ is not beside this checkout): source files not checked")
    normalised = {}
    problems = []
    for r in table():
        path = REFERENCE / r.source
        if not path.is_file():
            problems.append(f"docs/recipes.md:{r.line}: {r.task} {r.key}: {path} does not exist")
            continue
        if r.source not in normalised:
            normalised[r.source] = " ".join(path.read_text(encoding="utf-8").split())
        for quote in r.quotes:
            # Whitespace is normalised: the write-ups align their comments with runs of spaces.
            if " ".join(quote.split()) not in normalised[r.source]:
                problems.append(f"docs/recipes.md:{r.line}: {r.task} {r.key}: {quote!r} is not in {r.source}")
        if not r.quotes and not ("not stated" in r.source_cell and r.note):
            problems.append(f"docs/recipes.md:{r.line}: {r.task} {r.key}: no quote — mark the source *not stated* "
                            f"and say in the note where the value comes from")
    assert not problems, "\n".join(problems)


def compose_in(conf: Path, config_name: str, overrides: list[str], return_hydra_config: bool = False):
    """`compose` against another config tree (a patched copy of conf/)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from signlip.config import register_schemas

    register_schemas()
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=overrides, return_hydra_config=return_hydra_config)


def test_the_check_catches_a_root_default_that_overrides_a_task(tmp_path):
    """Today's bug class: train.yaml's own values composed after the task (`_self_` last) silently replaced the
    recipes' label smoothing by the root's 0.0. Reintroduce it on a copy of conf/ and the check must name it."""
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    train = yaml.safe_load((conf / "train.yaml").read_text(encoding="utf-8"))
    train["defaults"] = [d for d in train["defaults"] if d != "_self_"] + ["_self_"]
    train["objective"] = {"label_smoothing": 0.0}
    train["trainer"] = {"grad_clip_norm": 1.0}
    (conf / "train.yaml").write_text(yaml.safe_dump(train, sort_keys=False, allow_unicode=True), encoding="utf-8")

    rows = [r for r in table() if r.task in ("landmark_gru", "i3d")]
    configs = cache(lambda task: composed(task, lambda name, ov: compose_in(conf, name, ov)))
    found = recipe_mismatches(rows, configs)
    assert any(m.startswith("landmark_gru: objective.label_smoothing = 0.0") for m in found), found
    assert any(m.startswith("i3d: trainer.grad_clip_norm = 1.0") for m in found), found
    assert not recipe_mismatches(rows, composed_task)  # the real tree composes the tasks last


# ---------------------------------------------------------------------------------------------------------------------
# Task files hold only deltas


def leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key → value for every leaf of a YAML mapping (a list is one leaf)."""
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(leaves(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def restated_defaults(task: str, conf: Path = CONF) -> list[str]:
    """What conf/task/<task>.yaml states although the task would get it anyway.

    - `override /<group>: <option>` where <option> is already train.yaml's default for <group>;
    - a value equal to what the options the task selects give it (conf/<group>/<option>.yaml, trainer/default.yaml
      with its schema, train.yaml's root) — or, for a task built on another task (lip_cnn3d on lip_cnnlstm), what
      that parent task gives it.
    """
    from omegaconf import OmegaConf

    # OmegaConf reads the files as Hydra does (`1e-4` is a float there, a string to PyYAML).
    text = OmegaConf.to_container(OmegaConf.load(conf / "task" / f"{task}.yaml")) or {}
    train_defaults = {k: v for d in OmegaConf.to_container(OmegaConf.load(conf / "train.yaml"))["defaults"]
                      if isinstance(d, dict) for k, v in d.items()
                      if not k.startswith("override")}  # Hydra's own groups (hydra/job_logging): no task picks them
    out, parent = [], None
    for entry in text.get("defaults", []):
        if isinstance(entry, dict):
            for key, option in entry.items():
                group = key.removeprefix("override").strip().lstrip("/")
                if key.startswith("override") and train_defaults.get(group) == option:
                    out.append(f"{task}: `override /{group}: {option}` is train.yaml's default already")
        elif entry != "_self_":
            parent = entry
    choices = compose_in(conf, "train", [f"task={task}"], return_hydra_config=True).hydra.runtime.choices
    picks = [f"{group}={choices[group]}" for group in train_defaults if group != "task"]
    baseline = OmegaConf.to_container(
        compose_in(conf, "train", [f"task={parent}" if parent else "~task", *picks]), resolve=False)
    where = f"task {parent} already gives it" if parent else "the group options it selects already give it"
    for key, value in leaves({k: v for k, v in text.items() if k not in ("defaults", "task_name")}).items():
        default = lookup(baseline, key)
        if default is not MISSING and same(default, value):
            out.append(f"{task}: {key}: {value!r} is what {where} — remove it (docs/recipes.md still checks it)")
    return out


@pytest.mark.parametrize("task", TASKS)
def test_task_file_holds_only_what_differs_from_the_defaults(task):
    found = restated_defaults(task)
    assert not found, "\n".join(found)


def test_the_delta_check_catches_a_restated_default(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    path = conf / "task" / "landmark_gru.yaml"
    text = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    text["defaults"] = [{"override /optim": "adam"}, *text.get("defaults", ["_self_"])]
    text["data"] = {**text.get("data", {}), "batch_size": 32}  # data/landmarks.yaml's own value
    path.write_text("# @package _global_\n" + yaml.safe_dump(text, sort_keys=False), encoding="utf-8")
    with (conf / "task" / "lip_cnn3d.yaml").open("a", encoding="utf-8") as f:
        f.write("optim:\n  lr: 1.0e-4\n")               # what its parent task lip_cnnlstm gives it
    landmark = restated_defaults("landmark_gru", conf)
    assert any("`override /optim: adam`" in m for m in landmark), landmark
    assert any("data.batch_size: 32" in m for m in landmark), landmark
    assert any("optim.lr: 0.0001" in m for m in restated_defaults("lip_cnn3d", conf))
