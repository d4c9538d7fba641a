"""The start-up check of a composed config against the typed schemas of `signlip.schemas`.

`check_config(config, settings, device)` walks every node (the groups picked by their `name`, the trainer, the
logger, each command's own node) and stops at the first wrong key with one line naming its full dotted path and
what it must be — an unknown key, a wrong type, a value out of range, a key a schedule needs but lacks:

    data.augment.p_hflip=1.5 — it must be a probability in [0, 1]
    data.augment.hflip: no such key (renamed to p_hflip) — data.augment takes p_hflip, brightness, …

The CLI runs `check_composed` on every command's config before anything heavy is imported, so a bad override costs
a second, not a data preparation. `conf/trainer/default.yaml` also extends `TrainerSettings` (registered in Hydra's
ConfigStore as the groupless `signlip_trainer_schema`, so it is no choice of the trainer group): commands get the
settings as that dataclass. Torch-free: the CLI loads this module.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from signlip.errors import SignlipError
from signlip.schemas import COMMAND_SCHEMAS, GROUPS, Group, Rule, RunConfig
from signlip.schemas import EarlyStoppingSettings as EarlyStoppingSettings  # re-exported: the settings' home
from signlip.schemas import TrainerSettings as TrainerSettings

TRAINER_SCHEMA = "signlip_trainer_schema"
NONE = type(None)
NO_RULE = Rule()


def register_schemas() -> None:
    """Store `TrainerSettings` where conf/trainer/default.yaml's defaults list finds it (`/signlip_trainer_schema`)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=TRAINER_SCHEMA, node=TrainerSettings)


# --- entry points ------------------------------------------------------------------------------------------------
def check_config(config: dict[str, Any], settings: TrainerSettings, device) -> None:
    """Every node of a run's config against its schema, the trainer settings, and what the device allows.

    `config` is the plain dict of a composed train / distill / prepare / doctor config. SignlipError (one line)
    on the first problem."""
    validate(config, RunConfig, "")
    validate(dataclasses.asdict(settings), TrainerSettings, "trainer")
    if device is not None and settings.precision == "16" and device.type != "cuda":
        raise SignlipError("trainer.precision=16 (float16 autocast) needs a CUDA device — use trainer.precision=bf16 "
                           "or 32 on CPU")


def check_composed(config_name: str, config: dict[str, Any]) -> None:
    """The CLI's check of a freshly composed config (`signlip <command>`, before Hydra runs the command)."""
    validate(config, COMMAND_SCHEMAS.get(config_name, RunConfig), "")


# --- the walk ----------------------------------------------------------------------------------------------------
def validate(value: Any, schema: Any, path: str) -> None:
    """Check `value` against a schema type (a dataclass, or any annotation of `signlip.schemas`)."""
    tp, _, group = _unwrap(schema)
    if group is not None:
        _check_group(value, group, path)
    elif dataclasses.is_dataclass(tp):
        _check_node(value, tp, path)
    elif _is_union(tp) and isinstance(value, dict) and any(dataclasses.is_dataclass(m) for m in get_args(tp)):
        _check_node(value, _pick(tp, value, path), path)
    elif not _fits(value, schema):
        raise _bad(path, value, describe(schema))


def _check_group(value: Any, group: str, path: str) -> None:
    if not isinstance(value, dict):
        raise _bad(path, value, f"a mapping with a name (choose {path}=<option>)")
    name = value.get("name")
    schema = next((s for s in GROUPS[group] if discriminator(s)[1] == (name,)), None)
    if schema is not None:  # else: an entry registered outside signlip's schemas — its signature checks it
        _check_node(value, schema, path)


def _check_node(value: Any, schema: type, path: str) -> None:
    hints = _hints(schema)
    if not isinstance(value, dict):
        raise _bad(path, value, f"a mapping of {', '.join(hints)}")
    for name in value:
        if name not in hints:
            raise _unknown(path, str(name), list(hints), value)
    for name, tp in hints.items():
        sub = f"{path}.{name}" if path else name
        if name not in value or value[name] == "???":
            if _unwrap(tp)[1].required:
                raise SignlipError(f"{sub} is missing — it must be {describe(tp)}")
            continue
        validate(value[name], tp, sub)
    for check in getattr(schema, "__checks__", ()):
        problem = check(value)
        if problem is not None:
            keys, shown, must = problem
            sub = " + ".join(f"{path}.{k}" if path else k for k in keys)
            raise SignlipError(f"{sub}={shown!r} — it must be {must}")


def _pick(tp: Any, value: dict[str, Any], path: str) -> type:
    """The dataclass member of a union whose `Literal` discriminator field matches the value (the first member when
    the value has no such field: the kind a node meant before the union had others)."""
    members = [m for m in get_args(tp) if dataclasses.is_dataclass(m)]
    if len(members) == 1:
        return members[0]
    field, _ = discriminator(members[0])
    if field not in value:
        return members[0]
    choices = [c for m in members for c in discriminator(m)[1]]
    for member in members:
        if value.get(field) in discriminator(member)[1]:
            return member
    sub = f"{path}.{field}" if path else field
    raise _bad(sub, value.get(field), "one of " + ", ".join(map(str, choices)))


def discriminator(schema: type) -> tuple[str, tuple[Any, ...]]:
    """(field, allowed values) of the first `Literal` field of a schema: ("name", ("landmarks",)) for a group's."""
    for name, tp in _hints(schema).items():
        base = _unwrap(tp)[0]
        if get_origin(base) is Literal:
            return name, get_args(base)
    raise TypeError(f"{schema.__name__} has no Literal field to pick it by")


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(schema: type) -> dict[str, Any]:
    """Field name → annotation (with the field's `key(...)` rule folded in), in declaration order."""
    if schema not in _HINTS:
        resolved = get_type_hints(schema, include_extras=True)
        hints = {}
        for f in dataclasses.fields(schema):
            rule = f.metadata.get("rule")
            hints[f.name] = Annotated[resolved[f.name], rule] if rule is not None else resolved[f.name]
        _HINTS[schema] = hints
    return _HINTS[schema]


def _unwrap(tp: Any) -> tuple[Any, Rule, str | None]:
    """(bare type, merged Rule, group name) of a possibly `Annotated` type."""
    rule, group = NO_RULE, None
    while get_origin(tp) is Annotated:
        base, *extras = get_args(tp)
        for extra in extras:
            if isinstance(extra, Rule):
                rule = dataclasses.replace(rule, **{f.name: getattr(extra, f.name) for f in dataclasses.fields(extra)
                                                    if getattr(extra, f.name) != getattr(NO_RULE, f.name)})
            elif isinstance(extra, Group):
                group = extra.name
        tp = base
    return tp, rule, group


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _members(union: Any, rule: Rule) -> list[Any]:
    """A union's member types, each carrying the bounds or choices put on the union (`Optional[int]` with ge=1)."""
    shared = dataclasses.replace(rule, must=None, required=False)
    if shared == NO_RULE:
        return list(get_args(union))
    return [m if m is NONE else Annotated[m, shared] for m in get_args(union)]


def _fits(value: Any, schema: Any) -> bool:
    tp, rule, _ = _unwrap(schema)
    origin = get_origin(tp)
    if tp is Any:
        return True
    if _is_union(tp):
        return any(_fits(value, member) for member in _members(tp, rule))
    if tp is NONE:
        return value is None
    if origin is Literal:
        return any(value == choice and type(value) is type(choice) for choice in get_args(tp))
    if tp is bool:
        return isinstance(value, bool)
    if tp in (int, float):
        if isinstance(value, bool) or not isinstance(value, int if tp is int else (int, float)):
            return False
        return math.isfinite(value) and _in_bounds(value, rule)
    if tp is str:
        return isinstance(value, str) and (rule.choices is None or value in rule.choices) and \
            (rule.pattern is None or re.fullmatch(rule.pattern, value) is not None)
    if tp is dict or origin is dict:
        return isinstance(value, dict)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        args = get_args(tp)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            items = list(args)  # a fixed-length tuple: one type per position
            if len(value) != len(items):
                return False
        else:
            items = [args[0] if args else Any] * len(value)
        if rule.length is not None and len(value) != rule.length:
            return False
        if rule.min_length is not None and len(value) < rule.min_length:
            return False
        if not all(_fits(v, t) for v, t in zip(value, items)):
            return False
        return not rule.ascending or all(a <= b for a, b in zip(value, value[1:]))
    if dataclasses.is_dataclass(tp):
        try:
            _check_node(value, tp, "")
        except SignlipError:
            return False
        return True
    raise TypeError(f"signlip.config cannot check values of type {tp!r}")


def _in_bounds(v: float, rule: Rule) -> bool:
    return ((rule.ge is None or v >= rule.ge) and (rule.gt is None or v > rule.gt)
            and (rule.le is None or v <= rule.le) and (rule.lt is None or v < rule.lt))


# --- words -------------------------------------------------------------------------------------------------------
def describe(schema: Any, plural: bool = False) -> str:
    """What a value of this schema type must be, in words ("a probability in [0, 1]", "an integer ≥ 1 or null")."""
    tp, rule, group = _unwrap(schema)
    if rule.must and not plural:
        return rule.must
    origin = get_origin(tp)
    if group is not None or tp is dict or origin is dict:
        return "mappings" if plural else "a mapping"
    if tp is Any:
        return "any values" if plural else "any value"
    if _is_union(tp):
        members = [m for m in _members(tp, rule) if m is not NONE]
        text = ", or ".join(describe(m, plural) for m in members)
        return text + (" or null" if NONE in get_args(tp) else "")
    if origin is Literal:
        choices = [str(c) for c in get_args(tp)]
        return choices[0] if len(choices) == 1 else "one of " + ", ".join(choices)
    if tp is bool:
        return "true or false"
    if tp is int:
        return ("integers" if plural else "an integer") + _bounds(rule)
    if tp is float:
        return ("numbers" if plural else "a number") + _bounds(rule)
    if tp is str:
        if rule.choices:
            return "one of " + ", ".join(rule.choices)
        return "strings" if plural else "a string"
    if origin in (list, tuple):
        args = get_args(tp)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return f"a list [{', '.join(describe(a) for a in args)}]"
        n = f"{rule.length} " if rule.length else f"at least {rule.min_length} " if (rule.min_length or 0) > 1 else ""
        text = f"a {'non-empty ' if rule.min_length == 1 else ''}list of {n}" \
               f"{describe(args[0], plural=True) if args else 'values'}"
        return text + (" in ascending order" if rule.ascending else "")
    if dataclasses.is_dataclass(tp):
        return f"a mapping of {', '.join(_hints(tp))}"
    return str(tp)


def _bounds(rule: Rule) -> str:
    def num(v: float) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)

    low = ("[", rule.ge) if rule.ge is not None else ("(", rule.gt) if rule.gt is not None else None
    high = (rule.le, "]") if rule.le is not None else (rule.lt, ")") if rule.lt is not None else None
    if low and high:
        return f" in {low[0]}{num(low[1])}, {num(high[0])}{high[1]}"
    if low:
        return f" {'≥' if low[0] == '[' else '>'} {num(low[1])}"
    if high:
        return f" {'≤' if high[1] == ']' else '<'} {num(high[0])}"
    return ""


def _bad(path: str, value: Any, must: str) -> SignlipError:
    return SignlipError(f"{path or 'the config'}={value!r} — it must be {must}")


def _unknown(path: str, name: str, known: list[str], node: dict[str, Any]) -> SignlipError:
    sub = f"{path}.{name}" if path else name
    renamed = RENAMED.get((path.rsplit(".", 1)[-1], name))
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (renamed to {renamed})" if renamed else f" (did you mean {close[0]}?)" if close else ""
    where = path or "the config"
    if path and "name" in node:
        where += f" ({node['name']})"
    # A task's recipe values for its own option stay in the group when another option is picked (sched=onecycle on
    # a task that sets sched.min_lr for its plateau schedule): say whose key it is and how to drop it.
    owners = [discriminator(s)[1][0] for s in GROUPS.get(path, ()) if name in _hints(s)]
    tail = f"; {name} belongs to {path}={', '.join(map(str, owners))}: drop it with ~{sub}" if owners else ""
    return SignlipError(f"{sub}: no such key{hint} — {where} takes {', '.join(known)}{tail}")


# --- keys renamed when every group got a schema (one spelling per idea) --------------------------------------------
RENAMED: dict[tuple[str, str], str] = {  # (parent node, old key) → what it is called now
    ("augment", "p"): "p_rotate, p_scale, p_shift and p_noise",
    ("augment", "hflip"): "p_hflip",
    ("augment", "p_flip"): "p_hflip",
    ("augment", "brightness_p"): "p_brightness",
    ("augment", "contrast_p"): "p_contrast",
    ("augment", "saturation_p"): "p_saturation",
    ("resized_crop", "p"): "augment.p_resized_crop",
    ("synthetic", "n_signers"): "n_people: [train, val, test]",
    ("synthetic", "n_speakers"): "n_people: [train, val, test]",
    ("synthetic", "val_signers"): "n_people: [train, val, test]",
    ("synthetic", "test_signers"): "n_people: [train, val, test]",
    ("synthetic", "per_class"): "per_class_per_person",
    ("synthetic", "clips_per_class"): "per_class_per_person",
    ("synthetic", "clips_per_class_per_signer"): "per_class_per_person",
    ("synthetic", "per_class_per_signer"): "per_class_per_person",
    ("synthetic", "frames"): "n_frames",
    ("synthetic", "size"): "frame_size",
}
_SIMPLE = {"hflip": "p_hflip", "p_flip": "p_hflip", "brightness_p": "p_brightness", "contrast_p": "p_contrast",
           "saturation_p": "p_saturation"}
_PER_PERSON = ("per_class", "clips_per_class", "clips_per_class_per_signer", "per_class_per_signer")


def upgrade_config(config: dict[str, Any]) -> dict[str, Any]:
    """A config written before the renames (in a checkpoint, a run.json) in today's spelling; idempotent, a copy.

    The values keep their meaning: a single landmark `p` becomes the same probability for each augmentation, the
    holistic set's `n_signers` + `val_signers` + `test_signers` become `n_people` (the same signers, the same files)."""
    config = copy.deepcopy(config)
    data = config.get("data")
    if not isinstance(data, dict):
        return config
    augment = data.get("augment")
    if isinstance(augment, dict):
        for old, new in _SIMPLE.items():
            if old in augment:
                augment.setdefault(new, augment.pop(old))
        if data.get("name") == "landmarks" and "p" in augment:
            p = augment.pop("p")
            for new in ("p_rotate", "p_scale", "p_shift", "p_noise"):
                augment.setdefault(new, p)
        crop = augment.get("resized_crop")
        if isinstance(crop, dict) and "p" in crop:
            augment.setdefault("p_resized_crop", crop.pop("p"))
    synthetic = data.get("synthetic")
    if isinstance(synthetic, dict) and data.get("name") == "holistic":
        synthetic.setdefault("kind", "signs")  # before sentences, the holistic set had only one kind
    if isinstance(synthetic, dict):
        people = synthetic.get("n_signers", synthetic.pop("n_speakers", None))
        if isinstance(people, int):  # holistic: a total, split by val_signers / test_signers
            val, test = int(synthetic.pop("val_signers", 2)), int(synthetic.pop("test_signers", 2))
            people = [people - val - test, val, test]
        synthetic.pop("n_signers", None)
        if people is not None:
            synthetic.setdefault("n_people", list(people))
        for old in _PER_PERSON:
            if old in synthetic:
                synthetic.setdefault("per_class_per_person", synthetic.pop(old))
        if synthetic.get("kind") == "rgb":
            for old, new in (("frames", "n_frames"), ("size", "frame_size")):
                if old in synthetic:
                    synthetic.setdefault(new, synthetic.pop(old))
    return config
