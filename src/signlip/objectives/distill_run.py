"""Assembling a distillation run for `signlip distill` (plain arguments, no Hydra): the teacher checkpoint read and
checked before any data is prepared, then the objective for the student's data — `DistillObjective` for classes,
`SequenceDistillObjective` for gloss sentences — once data and student are built."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from signlip.errors import SignlipError
from signlip.objectives.distillation import DistillObjective, check_teacher, class_list, load_teacher


def _same_stats(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return all(torch.allclose(torch.tensor(a[k], dtype=torch.float64), torch.tensor(b[k], dtype=torch.float64))
               for k in ("mean", "std"))


def distill_objective_factory(teacher_ckpt: str | None, teacher_task: str | None = None,
                              temperature: float = 3.0, alpha: float = 0.7, cache_teacher: bool = False,
                              label_smoothing: float = 0.0, student_init: str | None = None):
    """Load and check the teacher checkpoint now (fail fast, before any data is prepared); return the factory
    `(data, student) -> objective` that `run_training` calls once data and student are built: `DistillObjective`
    for classes, `SequenceDistillObjective` (frame-level KD + CTC) for gloss sentences."""
    from signlip.checkpoint import load_checkpoint

    if not teacher_ckpt:
        raise SignlipError("no teacher checkpoint — pass teacher.ckpt=<best.pt of a signlip train task=i3d run>")
    if not 0.0 <= alpha <= 1.0:
        raise SignlipError(f"distill.alpha={alpha} — choose a value in [0, 1]")
    if temperature <= 0:
        raise SignlipError(f"distill.temperature={temperature} — choose a value > 0")
    ckpt = load_checkpoint(teacher_ckpt)
    # teacher=i3d names the task the teacher was trained as, or its model (a sentence teacher: task cslr_rgb_teacher).
    if teacher_task and ckpt.get("task") not in (None, teacher_task) \
            and (ckpt.get("model") or {}).get("name") != teacher_task:
        raise SignlipError(f"teacher.ckpt={teacher_ckpt} was trained as task {ckpt.get('task')}, not {teacher_task} "
                           f"— pass teacher={ckpt.get('task')} or a checkpoint of task {teacher_task}")
    init = load_checkpoint(student_init) if student_init else None

    def factory(data: Any, student: nn.Module) -> DistillObjective:
        check_teacher(ckpt, str(teacher_ckpt), data)
        if init is not None:
            init_student(student, init, str(student_init), data.classes)
        teacher_prep, data_prep = ckpt.get("preprocessing") or {}, data.preprocessing
        renormalize = None
        if {"mean", "std"} <= set(teacher_prep) and {"mean", "std"} <= set(data_prep) \
                and not _same_stats(teacher_prep, data_prep):
            # The teacher was trained on another normalisation of the same clips: undo ours, apply its own.
            renormalize = ({"mean": data_prep["mean"], "std": data_prep["std"]},
                           {"mean": teacher_prep["mean"], "std": teacher_prep["std"]})
        if data.target == "glosses":  # sentences: frame-level KD on the CTC posteriors
            from signlip.objectives.sequence_distillation import SequenceDistillObjective

            return SequenceDistillObjective(load_teacher(ckpt), temperature=temperature, alpha=alpha,
                                            renormalize=renormalize, cache_teacher=cache_teacher)
        return DistillObjective(load_teacher(ckpt), temperature=temperature, alpha=alpha, cache_teacher=cache_teacher,
                                label_smoothing=label_smoothing, renormalize=renormalize)

    return factory


def init_student(student: nn.Module, ckpt: Mapping[str, Any], path: str, classes: Sequence[str]) -> None:
    """Load a trained student's weights (`student.init=`) after checking it has the same model and classes."""
    if list(ckpt.get("classes") or []) != list(classes):
        raise SignlipError(f"student.init={path} was trained on classes {class_list(list(ckpt.get('classes') or []))} "
                           f"but the data has {class_list(list(classes))} — initialise from a student of these classes")
    try:
        student.load_state_dict(ckpt["model_state"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise SignlipError(f"student.init={path} ({ckpt['model']['name']} {ckpt['model'].get('kwargs')}) does not fit "
                           f"the student model ({first}) — use the same model settings as that run") from None
