"""Distillation: the KD loss by hand, a frozen teacher outside optimizer and checkpoint, logit caching, CLI refusals."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from conftest import compose, run_cli
from signlip.checkpoint import save_checkpoint
from signlip.models.mobilenetv3 import MobileNetV3Student
from signlip.objectives.distillation import DistillObjective, kd_loss

TINY = {"n_classes": 3, "n_people": [2, 1, 1], "per_class_per_person": 1, "n_frames": 8, "frame_size": [32, 32]}


def tiny_data_overrides(root) -> list[str]:
    """Hydra overrides for a tiny RGB set (3 classes, 6/3/3 clips of 4 × 32 × 32) under `root`."""
    s = TINY
    return [f"data.synthetic.root={root}/rgb", f"data.synthetic.n_classes={s['n_classes']}",
            "data.synthetic.n_people=[2,1,1]", "data.synthetic.per_class_per_person=1",
            "data.synthetic.n_frames=8", "data.synthetic.frame_size=[32,32]", "data.prepare.n_frames=4",
            "data.prepare.size=[32,32]", f"data.cache_dir={root}/cache", f"data.manifests_dir={root}/manifests",
            "data.workers=1"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny RGB data bundle (augmentation on) and its overrides; prepared once for this module."""
    from omegaconf import OmegaConf

    from signlip.build import build_data

    root = tmp_path_factory.mktemp("rgb")
    overrides = tiny_data_overrides(root)
    cfg = compose("train", ["task=mobilenetv3", *overrides])
    return SimpleNamespace(root=root, overrides=overrides, data=build_data(OmegaConf.to_container(cfg, resolve=True)))


def test_kd_loss_matches_hand_computation():
    s = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    t = torch.tensor([[1.0, 1.0, 0.0], [-2.0, 0.5, 2.5]])
    y = torch.tensor([0, 1])
    temperature, alpha = 3.0, 0.7

    def softmax(row, temp):
        e = [math.exp(v / temp) for v in row]
        return [v / sum(e) for v in e]

    kl = 0.0
    for srow, trow in zip(s.tolist(), t.tolist()):
        p_t, p_s = softmax(trow, temperature), softmax(srow, temperature)
        kl += sum(pt * (math.log(pt) - math.log(ps)) for pt, ps in zip(p_t, p_s))
    kl /= 2
    ce = -sum(math.log(softmax(row, 1.0)[c]) for row, c in zip(s.tolist(), y.tolist())) / 2
    out = kd_loss(s, t, y, temperature=temperature, alpha=alpha)
    assert out["kd"].item() == pytest.approx(9.0 * kl, rel=1e-5)  # the T² factor
    assert out["ce"].item() == pytest.approx(ce, rel=1e-5)
    assert out["loss"].item() == pytest.approx(alpha * 9.0 * kl + (1 - alpha) * ce, rel=1e-5)
    # Identical logits → no KD term; alpha = 1 → the soft term only.
    assert kd_loss(s, s, y)["kd"].item() == pytest.approx(0.0, abs=1e-6)
    assert kd_loss(s, t, y, alpha=1.0)["loss"].item() == pytest.approx(9.0 * kl, rel=1e-5)


class TinyClipNet(torch.nn.Module):
    """A small clip classifier (B, 3, T, H, W) → (B, C) with BatchNorm and dropout, standing in for I3D/MobileNetV3."""

    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm3d(8)
        self.drop = torch.nn.Dropout(0.5)
        self.fc = torch.nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3, 4))  # (B, 8)
        return self.fc(self.drop(h))


def _pair(num_classes: int = 3):
    torch.manual_seed(0)
    return TinyClipNet(num_classes), TinyClipNet(num_classes)


def test_teacher_frozen_outside_optimizer_and_student_checkpoint():
    teacher, student = _pair()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    objective = DistillObjective(teacher, temperature=3.0, alpha=0.7)
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-2)
    student.train()
    batch = {"x": torch.randn(2, 3, 4, 32, 32), "y": torch.tensor([0, 2]), "index": torch.tensor([0, 1])}
    for _ in range(2):
        out = objective(student, batch)
        out["loss"].backward()
        optimizer.step()
        optimizer.zero_grad()
    assert not teacher.training  # eval mode, though the student trains
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())  # BN statistics untouched too
    teacher_ids = {id(p) for p in teacher.parameters()}
    assert not teacher_ids & {id(p) for g in optimizer.param_groups for p in g["params"]}
    teacher_ptrs = {t.data_ptr() for t in teacher.state_dict().values()}
    assert not teacher_ptrs & {t.data_ptr() for t in student.state_dict().values()}
    assert set(student.state_dict()) == set(TinyClipNet().state_dict())
    for key in ("kd_loss", "ce_loss", "agreement", "teacher_acc"):
        assert out[key].ndim == 0 and not out[key].requires_grad


def test_cached_and_uncached_teacher_logits_agree_on_unaugmented_inputs(tiny):
    teacher, student = _pair()
    cached = DistillObjective(teacher, cache_teacher=True)
    train = tiny.data.splits["train"]
    transform = tiny.data.batch_transform
    trainer = SimpleNamespace(device=torch.device("cpu"), data=tiny.data, transform=transform,
                              loaders={"train": SimpleNamespace(batch_size=4)}, logger=SimpleNamespace(print=print))
    cached.setup(trainer)  # what Trainer.fit does before the first epoch
    assert cached.cached == len(train)
    uncached = DistillObjective(teacher, cache_teacher=False)
    idx = list(range(len(train)))
    clean = transform(train.__getitems__(idx), training=False)
    student.train()
    with torch.no_grad():
        a = cached._cached_logits(clean)
        b = uncached.teacher_logits(clean["x"])
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        # ... while on an augmented view the teacher's logits differ: caching is the clean-view recipe.
        torch.manual_seed(1)
        augmented = transform(train.__getitems__(idx), training=True)
        assert not torch.allclose(uncached.teacher_logits(augmented["x"]), b, atol=1e-4)
        # The cached objective gives the same loss as the uncached one on clean inputs.
        out_a, out_b = cached(student.eval(), clean), uncached(student.eval(), clean)
        torch.testing.assert_close(out_a["loss"], out_b["loss"])


def _fake_teacher_checkpoint(path, classes, preprocessing, task="i3d"):
    teacher = MobileNetV3Student(len(classes), variant="small")
    save_checkpoint({"format_version": 1, "task": task,
                     "model": {"name": "mobilenetv3", "kwargs": {"num_classes": len(classes), "variant": "small"}},
                     "model_state": teacher.state_dict(), "classes": list(classes), "preprocessing": preprocessing,
                     "config": {}}, path)
    return path


def test_distill_refuses_a_teacher_with_other_classes(tiny, tmp_path):
    prep = tiny.data.preprocessing
    ckpt = _fake_teacher_checkpoint(tmp_path / "teacher.pt", ["a", "b", "c"], prep)
    proc = run_cli("distill", "teacher=i3d", "student=mobilenetv3", f"teacher.ckpt={ckpt}", *tiny.overrides,
                   "trainer.max_epochs=1", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "classes" in lines[0] and str(ckpt) in lines[0], proc.stderr
    assert not (tmp_path / "run" / "checkpoints" / "best.pt").exists()


def test_distill_refuses_other_preprocessing_and_missing_teacher(tiny, tmp_path):
    from signlip.errors import SignlipError
    from signlip.objectives.distill_run import distill_objective_factory

    prep = {**tiny.data.preprocessing, "fingerprint": {**tiny.data.preprocessing["fingerprint"], "n_frames": 16}}
    ckpt = _fake_teacher_checkpoint(tmp_path / "teacher.pt", tiny.data.classes, prep)
    factory = distill_objective_factory(str(ckpt), "i3d")
    with pytest.raises(SignlipError, match="n_frames"):
        factory(tiny.data, MobileNetV3Student(len(tiny.data.classes), variant="small"))
    with pytest.raises(SignlipError, match="trained as task lip"):
        distill_objective_factory(str(_fake_teacher_checkpoint(tmp_path / "lip.pt", ["a"], prep, task="lip")), "i3d")
    proc = run_cli("distill", "teacher=i3d", "student=mobilenetv3", cwd=tmp_path)  # no teacher.ckpt
    assert proc.returncode == 2 and "teacher.ckpt" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_distill_config_composes_student_task_teacher_and_overrides():
    cfg = compose("distill", ["teacher=i3d", "student=mobilenetv3", "teacher.ckpt=/t.pt", "model.variant=small",
                              "distill.alpha=0.5", "data.batch_size=8"])
    assert cfg.task_name == "mobilenetv3" and cfg.model.name == "mobilenetv3" and cfg.model.variant == "small"
    assert cfg.teacher.task == "i3d" and cfg.teacher.ckpt == "/t.pt" and cfg.student.init is None
    assert cfg.distill.temperature == 3.0 and cfg.distill.alpha == 0.5 and cfg.distill.cache_teacher is False
    assert cfg.data.batch_size == 8 and cfg.data.name == "clips"
    default = compose("distill", [])
    assert default.data.batch_size == 4 and default.optim.lr == pytest.approx(5e-5)  # the distillation recipe
    assert default.model.dropout == 0.6
