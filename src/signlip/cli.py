"""`signlip <command> [hydra overrides]`: dispatch to the Hydra entry point of each command.

This module stays light (no torch import) so that `signlip --help` answers at once. Problems a user can fix
end as one line on stderr and exit code 2.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

COMMANDS: dict[str, tuple[str, str]] = {
    # command: (config name, one-line description)
    "train": ("train", "fit a model: signlip train [task=NAME] [key=value ...]"),
    "distill": ("distill", "train a student from a frozen teacher: signlip distill teacher=i3d student=mobilenetv3"),
    "evaluate": ("evaluate", "report a checkpoint on a split: signlip evaluate ckpt=PATH [split=val]"),
    "predict": ("predict", "run a checkpoint on new files or a stream: signlip predict ckpt=PATH input=FILE|DIR|CSV"),
    "export": ("export", "model → ONNX (+ INT8) with a parity check and a JSON sidecar: signlip export ckpt=PATH"),
    "benchmark": ("benchmark", "size, latency and accuracy per format: signlip benchmark ckpt=PATH"),
    "prepare": ("prepare", "raw videos/landmarks → cache + manifest: signlip prepare task=NAME data.raw_manifest=CSV"),
    "doctor": ("doctor", "pre-flight check of data, pipeline and model: signlip doctor task=NAME [data overrides]"),
    "report": ("", "seeds/sweep summary (mean ± sd, runs, learning curves): signlip report <sweep folder>"),
}
GROUPS = ("task", "data", "model", "objective", "evaluator", "optim", "sched", "trainer", "logger")
HYDRA_FLAGS = ("-m", "--multirun", "--cfg", "-c", "--help", "-h", "--hydra-help", "--info", "--resolve", "-p",
               "--package", "--shell-completion", "-sc")


def conf_dir() -> Path:
    """The config tree: shipped inside the wheel as signlip/conf, or the repo's top-level conf/ in a checkout."""
    packaged = Path(__file__).parent / "conf"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml") if p.stem != "schema")


# Groups only some commands take (distill's teacher and student), beside the GROUPS every training command takes.
COMMAND_GROUPS: dict[str, tuple[str, ...]] = {"distill": ("student", "teacher")}


def config_groups_help(command: str) -> str:
    """`group: option, option` lines of the groups `signlip <command>` takes (its --help)."""
    groups = sorted((*GROUPS, *COMMAND_GROUPS.get(command, ())))
    return "\n".join(f"{g}: {', '.join(options(g))}" for g in groups)


def fail(message: str) -> None:
    print(f"signlip: error: {message}", file=sys.stderr)
    sys.exit(2)


def usage() -> str:
    lines = ["usage: signlip <command> [overrides ...]   (Hydra overrides: key=value, group=option, -m, --cfg job)",
             "", "commands:"]
    lines += [f"  {name:<9} {desc}" for name, (_, desc) in COMMANDS.items()]
    lines += ["", "tasks:     " + ", ".join(options("task")), "config groups:"]
    lines += [f"  {g:<9} {', '.join(options(g))}" for g in GROUPS if g != "task"]
    lines += ["", "`signlip <command> --help` shows that command's config. Docs: README.md"]
    return "\n".join(lines)


def check_group_choices(overrides: list[str]) -> None:
    """`task=foo` with no conf/task/foo.yaml → one line listing the valid choices (before Hydra's long error)."""
    for item in overrides:
        key, sep, value = item.lstrip("+~").partition("=")
        if sep and key in GROUPS and "," not in value and value not in options(key):
            fail(f"unknown {key} {value!r} — choose one of: {', '.join(options(key))}")


def student_task(overrides: list[str]) -> list[str]:
    """`signlip distill student=NAME`: the student's task supplies data, model and recipe, so it selects task=NAME
    too (Hydra cannot pick a config group by interpolation when the chosen config overrides other groups)."""
    student = next((a.split("=", 1)[1] for a in overrides if a.startswith("student=")), None)
    if student is None or any(a.startswith("task=") for a in overrides):
        return overrides
    return [f"task={student}", *overrides]


def validate(config_name: str, overrides: list[str]) -> None:
    """Compose the config once up front and check it against the typed schemas (signlip.config), so that a bad
    key or value is one clear line, exit 2 — before the command imports torch or touches any data."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from signlip.config import check_composed
    from signlip.errors import SignlipError

    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            config = OmegaConf.to_container(compose(config_name=config_name, overrides=overrides), resolve=True)
    except Exception as exc:  # Hydra/OmegaConf raise many types; all mean "this config is wrong"
        text = " ".join(str(exc).split())
        cause = exc.__cause__
        if cause is not None and str(cause).strip():
            text += ": " + str(cause).strip().splitlines()[0]
        fail(f"{text} — see `signlip {config_name} --cfg job` for the valid keys and values")
    finally:
        GlobalHydra.instance().clear()
    try:
        check_composed(config_name, config)
    except SignlipError as exc:
        fail(str(exc))


def run_hydra(command: str, task_function: Callable, argv: list[str]) -> None:
    import hydra
    from omegaconf import OmegaConf

    from signlip.config import register_schemas

    register_schemas()
    # `${signlip_groups:train}` in a command's help template: the groups a user picks, not Hydra's list of every
    # folder under conf/ (which would offer distill's student/teacher and the schema to `signlip train`).
    if not OmegaConf.has_resolver("signlip_groups"):
        OmegaConf.register_new_resolver("signlip_groups", config_groups_help)
    config_name = COMMANDS[command][0]
    if not any(a in HYDRA_FLAGS or a.startswith("--cfg") for a in argv):
        check_group_choices(argv)
        validate(config_name, argv)
    rank = int(os.environ.get("RANK", "0"))
    if rank > 0 and not any(a.startswith("hydra.run.dir=") for a in argv):
        # Under torchrun only rank 0 writes the run folder; the others must not make folders of their own.
        argv = [*argv, f"hydra.run.dir={tempfile.gettempdir()}/signlip-rank{rank}-{os.getpid()}",
                "hydra.output_subdir=null"]
    sys.argv = [f"signlip-{command}", *argv]
    hydra.main(config_path=str(conf_dir()), config_name=config_name, version_base="1.3")(task_function)()


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return
    if argv[0] in ("-V", "--version"):
        from signlip import __version__

        print(f"signlip {__version__}")
        return
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        fail(f"unknown command {command!r} — choose one of: {', '.join(COMMANDS)}")
    import importlib

    module = importlib.import_module(f"signlip.commands.{command}")
    if command == "report":  # a positional folder, no Hydra config
        module.main(rest)
        return
    if command in ("train", "prepare", "doctor"):
        check_group_choices(rest)
    if command == "distill":
        rest = student_task(rest)
    # A layout's options are open-ended (each adapter names its own), and so are evaluate's evaluator settings (the
    # checkpoint's evaluator decides): `data.format_options.<key>=v` adds the key, as Hydra's `+` would — the adapter
    # or the evaluator rejects a key it does not take, by name.
    open_keys = ("data.format_options.", *(("evaluator.",) if command == "evaluate" else ()))
    rest = [f"+{a}" if a.startswith(open_keys) else a for a in rest]
    if command == "prepare" and "data.format=gislr" in rest and not any(a.startswith("task=") for a in rest):
        rest = ["task=asl_tcn_transformer", *rest]  # GISLR landmarks only feed the holistic sign task
    run_hydra(command, module.main, rest)
