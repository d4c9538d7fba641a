"""RGB sign tasks end to end: i3d teacher → signlip distill → mobilenetv3 student checkpoint → signlip evaluate.

The default suite runs the pipeline on a tiny set (plumbing, contracts). That each task learns far above chance is
checked by tests/test_task_contract.py (`@pytest.mark.slow`: I3D is heavy on a CPU, minutes).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_distill import tiny_data_overrides

from conftest import run_cli, train_in_process
from signlip.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rgb_task")


@pytest.fixture(scope="module")
def teacher_ckpt(tiny_root) -> Path:
    """A one-epoch i3d teacher on the tiny set (not a good teacher; the contract is what matters here)."""
    result = train_in_process(tiny_root / "teacher", ["task=i3d", *tiny_data_overrides(tiny_root),
                                                      "trainer.max_epochs=1", "trainer.evaluate_test=false",
                                                      "logger.progress=false"])
    return Path(result["checkpoint_dir"]) / "best.pt"


@pytest.mark.slow  # 17 s: the CLI end to end; the distillation objective and refusals are tested in test_distill.py
def test_distill_end_to_end_student_checkpoint_is_ordinary(tiny_root, teacher_ckpt, tmp_path):
    run = tmp_path / "distill"
    proc = run_cli("distill", "teacher=i3d", "student=mobilenetv3", f"teacher.ckpt={teacher_ckpt}",
                   *tiny_data_overrides(tiny_root), "model.variant=small", "trainer.max_epochs=1",
                   "distill.cache_teacher=true", "logger.tensorboard=false", f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "cached teacher logits for 6 training clips" in proc.stdout
    student = load_checkpoint(run / "checkpoints" / "best.pt")
    teacher = load_checkpoint(teacher_ckpt)
    assert student["model"]["name"] == "mobilenetv3" and student["task"] == "mobilenetv3"
    assert not any(k.startswith(("mixed_", "conv_1a", "teacher")) for k in student["model_state"])
    assert set(student["model_state"]) == set(torch.nn.Module.state_dict(
        __import__("signlip.models.mobilenetv3", fromlist=["x"]).MobileNetV3Student(3, variant="small")))
    assert student["classes"] == teacher["classes"]
    history = student["history"][-1]
    for key in ("train/kd_loss", "train/ce_loss", "train/agreement", "train/teacher_acc", "train/accuracy",
                "val/accuracy"):
        assert key in history, key
    assert 0.0 <= history["train/agreement"] <= 1.0
    # The teacher (12.3M parameters) is not in the file: a MobileNetV3-small student is ~6 MB.
    assert (run / "checkpoints" / "best.pt").stat().st_size < 0.5 * teacher_ckpt.stat().st_size

    proc = run_cli("evaluate", f"ckpt={run / 'checkpoints' / 'best.pt'}", f"out={tmp_path / 'eval'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "eval" / "evaluation_test.json").read_text())
    assert report["parameters"] == sum(v.numel() for k, v in student["model_state"].items()
                                       if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert 0 < report["model_size_mb"] < 10 and "MB" in proc.stdout


def test_student_init_fine_tunes_a_baseline(tiny_root, teacher_ckpt, tmp_path):
    from signlip.errors import SignlipError
    from signlip.models.mobilenetv3 import MobileNetV3Student
    from signlip.objectives.distill_run import distill_objective_factory

    teacher = load_checkpoint(teacher_ckpt)
    # An "i3d" checkpoint is no mobilenetv3 student: student.init refuses it with one clear line.
    factory = distill_objective_factory(str(teacher_ckpt), "i3d", student_init=str(teacher_ckpt))
    data = type("D", (), {"classes": teacher["classes"], "preprocessing": teacher["preprocessing"]})()
    with pytest.raises(SignlipError, match="student.init"):
        factory(data, MobileNetV3Student(len(teacher["classes"]), variant="small"))
