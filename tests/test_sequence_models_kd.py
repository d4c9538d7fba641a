"""Sequence outputs of the RGB models (MobileNetV3 per frame, I3D at stride 8) and sequence-level distillation."""

from __future__ import annotations

import copy
from dataclasses import fields as dc_fields

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from conftest import REPO
from signlip import schemas
from signlip.errors import SignlipError
from signlip.models.i3d import I3D
from signlip.models.mobilenetv3 import MobileNetV3Student, _masked_mean
from signlip.objectives.sequence_distillation import SequenceDistillObjective, align_time

V1 = 6  # 5 glosses + blank


def small_mobilenet(seed: int = 0, **kwargs) -> MobileNetV3Student:
    torch.manual_seed(seed)
    return MobileNetV3Student(V1, variant="small", hidden=32, **kwargs)


# --- models -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("head", ["conv1d", "bilstm"])
def test_mobilenetv3_sequence_has_one_output_per_frame(head):
    model = small_mobilenet(temporal_head=head, output="sequence").eval()
    x = torch.randn(2, 3, 16, 64, 64)
    mask = torch.ones(2, 16, dtype=torch.bool)
    mask[1, 11:] = False
    with torch.no_grad():
        out = model(x, mask)
    assert out.shape == (2, 16, V1)
    assert model.output_lengths(mask.sum(1)).tolist() == [16, 11]
    if head == "conv1d":  # the conv head re-zeroes padded steps: real frames do not see the padded tail
        with torch.no_grad():
            alone = model(x[1:, :, :11], None)
        torch.testing.assert_close(out[1, :11], alone[0], atol=1e-5, rtol=1e-5)


def test_mobilenetv3_tconv_head_pools_four_frames_per_step_and_masks_the_padded_ones():
    """VAC's K5-P2-K5-P2 + BiLSTM: ⌊T/4⌋ steps; a padded clip's pooled tail is zero before the BiLSTM, so its
    forward direction over the real steps is that of the clip alone."""
    model = small_mobilenet(temporal_head="tconv_bilstm", output="sequence").eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-1.0, 1.0)  # BN maps zeroed (padded) steps away from zero
    feats = torch.randn(2, 16, 576)
    mask = torch.ones(2, 16, dtype=torch.bool)
    mask[1, 11:] = False  # 11 real frames → 2 real steps of 4
    with torch.no_grad():
        h, step_mask = model.temporal_features(feats, mask)
        alone, _ = model.temporal_features(feats[1:, :11])
        out = model.classify_features(feats, mask)
    assert out.shape == (2, 4, V1) and h.shape[1] == 4
    assert model.output_lengths(mask.sum(1)).tolist() == [4, 2]
    assert step_mask.tolist() == [[True] * 4, [True, True, False, False]]
    hidden = model.rnn.hidden_size
    torch.testing.assert_close(h[1, :2, :hidden], alone[0, :, :hidden], atol=1e-5, rtol=1e-5)  # forward direction
    with pytest.raises(SignlipError, match="at least 4 frames"):
        model.temporal_features(feats[:, :3])
    stream = model.stream(window=8)
    assert stream.push(torch.randn(3, 64, 64)).shape == (1, 1, V1)  # one frame in: the first repeated to fill a step


def test_mobilenetv3_class_path_is_unchanged():
    """Default = output=class: same seed, same parameters and logits; and the logits are the pre-sequence formula
    (per-frame features → conv head with padded steps re-zeroed → masked mean → classifier), bit for bit."""
    default, explicit = small_mobilenet().eval(), small_mobilenet(output="class").eval()
    sequence = small_mobilenet(output="sequence")
    assert default.state_dict().keys() == sequence.state_dict().keys()  # same weights fit both modes
    x = torch.randn(2, 3, 6, 32, 32)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2], dtype=torch.bool)
    with torch.no_grad():
        logits = default(x, mask)
        assert torch.equal(logits, explicit(x, mask))
        feats = default.frame_features(x) * mask[..., None].float()
        keep = mask.float()[:, None]
        h = feats.transpose(1, 2)
        for start in (0, 3):
            h = default.head[start:start + 3](h) * keep
        reference = default.classifier(default.dropout(_masked_mean(h.transpose(1, 2), mask)))
    assert logits.shape == (2, V1) and torch.equal(logits, reference)


def test_i3d_sequence_output_lengths_match_the_network_and_class_path_is_unchanged():
    torch.manual_seed(0)
    seq = I3D(V1, output="sequence").eval()
    lengths = (1, 7, 8, 9, 16, 17)
    with torch.no_grad():
        for t in lengths:
            out = seq(torch.randn(1, 3, t, 32, 32))
            assert out.shape == (1, -(-t // 8), V1), t
            assert int(seq.output_lengths(torch.tensor([t]))) == out.shape[1], t
    assert seq.output_lengths(torch.tensor(lengths)).tolist() == [1, 1, 1, 2, 2, 3]
    torch.manual_seed(0)
    default = I3D(V1).eval()
    torch.manual_seed(0)
    explicit = I3D(V1, output="class").eval()
    x = torch.randn(2, 3, 16, 32, 32)
    with torch.no_grad():
        logits = default(x)
        assert torch.equal(logits, explicit(x))
        f = default.features(x).mean(dim=(3, 4), keepdim=True)
        reference = default.logits((f[:, :, :-1] + f[:, :, 1:]) / 2).mean(dim=(2, 3, 4))
    assert logits.shape == (2, V1) and torch.equal(logits, reference)


def test_lip_cnnlstm_sequence_has_one_output_per_frame_and_class_path_is_unchanged():
    from signlip.models.lip import LipCNNLSTM

    torch.manual_seed(0)
    seq = LipCNNLSTM(V1, output="sequence").eval()
    x = torch.rand(2, 1, 12, 32, 48)
    out = seq(x)
    assert out.shape == (2, 12, V1)
    assert torch.equal(seq.output_lengths(torch.tensor([12, 7])), torch.tensor([12, 7]))
    torch.manual_seed(0)
    cls = LipCNNLSTM(V1).eval()
    cls.load_state_dict(seq.state_dict())  # one encoder: the same parameters serve both outputs
    assert cls(x).shape == (2, V1)
    torch.testing.assert_close(cls(x), out[:, -1])  # class = the head on the last step
    with pytest.raises(ValueError, match="output must be class or sequence"):
        LipCNNLSTM(V1, output="frames")


def test_schemas_and_yaml_state_every_key():
    from signlip.registry import OBJECTIVES

    for name, schema in (("i3d", schemas.I3DModel), ("mobilenetv3", schemas.MobileNetV3Model),
                         ("lip_cnnlstm", schemas.LipCNNLSTMModel)):
        node = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "model" / f"{name}.yaml"))
        assert node["output"] == "class" and set(node) == {f.name for f in dc_fields(schema)}, name
    node = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "objective" / "sequence_distill.yaml"))
    keys = {f.name for f in dc_fields(schemas.SequenceDistillConfig)}
    import inspect

    params = set(inspect.signature(OBJECTIVES.get("sequence_distill")).parameters)
    # renormalize is signlip distill's, from the two checkpoints' statistics, never configured
    assert set(node) == keys and keys - {"name"} == params - {"renormalize"}
    assert (node["temperature"], node["alpha"]) == (3.0, 0.7)
    with pytest.raises(SignlipError, match="no teacher — pass objective.teacher="):
        SequenceDistillObjective(None)


# --- distillation on toy per-frame models --------------------------------------------------------------------------
class FrameModel(nn.Module):
    """(B, T, F) → (B, ⌈T/stride⌉, V+1): mean over each `stride` frames, then a linear layer."""

    def __init__(self, features: int = 4, stride: int = 1):
        super().__init__()
        self.stride = stride
        self.linear = nn.Linear(features, V1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, t, f = x.shape
        pad = (-t) % self.stride
        x = torch.cat([x, x.new_zeros(b, pad, f)], 1).reshape(b, -1, self.stride, f).mean(2)
        return self.linear(x)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return (lengths + self.stride - 1) // self.stride


def toy_batch(t: int = 8, features: int = 4) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    mask = torch.ones(2, t, dtype=torch.bool)
    mask[1, t - 2:] = False
    return {"x": torch.randn(2, t, features), "mask": mask, "y": torch.tensor([[1, 2, 3], [4, 5, 0]]),
            "y_lengths": torch.tensor([3, 2])}


def test_kd_term_is_zero_when_student_equals_teacher():
    student = FrameModel()
    objective = SequenceDistillObjective(copy.deepcopy(student))
    result = objective(student, toy_batch())
    assert float(result["kd_loss"]) == pytest.approx(0.0, abs=1e-6)
    assert float(result["agreement"]) == 1.0
    torch.testing.assert_close(result["loss"], 0.3 * result["ctc_loss"])
    assert result["outputs"].shape == (2, 8, V1)


def test_time_alignment_maps_a_stride_2_teacher_onto_a_stride_1_student():
    """Teacher steps a, b, c, d (4 real) onto 8 student steps: centres aligned, j → (j + ½)/2 − ½, clamped; the
    second sample (3 teacher steps → 5 student steps, padded) uses its own real lengths."""
    a, b, c, d = (torch.eye(4)[i] for i in range(4))
    probs = torch.stack([torch.stack([a, b, c, d]), torch.stack([a, b, c, c])])  # (2, 4, 4)
    out = align_time(probs, torch.tensor([4, 3]), torch.tensor([8, 5]), 8)
    expected = torch.stack([a, .75 * a + .25 * b, .25 * a + .75 * b, .75 * b + .25 * c, .25 * b + .75 * c,
                            .75 * c + .25 * d, .25 * c + .75 * d, d])
    torch.testing.assert_close(out[0], expected)
    # 3 → 5: positions (j + ½)·3/5 − ½ = −0.2, 0.4, 1.0, 1.6, 2.2 → clamped to [0, 2].
    expected_short = torch.stack([a, .6 * a + .4 * b, b, .4 * b + .6 * c, c])
    torch.testing.assert_close(out[1, :5], expected_short)
    torch.testing.assert_close(out.sum(-1), torch.ones(2, 8))
    same = align_time(probs, torch.tensor([4, 3]), torch.tensor([4, 3]), 4)  # equal strides: frame to frame
    torch.testing.assert_close(same[0], probs[0])
    torch.testing.assert_close(same[1, :3], probs[1, :3])


def test_gradients_reach_the_student_only_with_a_coarser_teacher():
    student, teacher = FrameModel(stride=1), FrameModel(stride=2)
    objective = SequenceDistillObjective(teacher)
    result = objective(student.train(), toy_batch())
    result["loss"].backward()
    assert float(result["kd_loss"]) > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert not teacher.training


def test_i3d_teacher_distils_into_a_mobilenetv3_student():
    """The pair the issue names: I3D (stride 8, 2 steps for 16 frames) onto MobileNetV3 (16 steps)."""
    torch.manual_seed(0)
    objective = SequenceDistillObjective(I3D(V1, output="sequence"))
    student = small_mobilenet(output="sequence").train()
    batch = toy_batch()
    batch.update(x=torch.randn(2, 3, 16, 32, 32), mask=torch.ones(2, 16, dtype=torch.bool))
    result = objective(student, batch)
    result["loss"].backward()
    assert result["outputs"].shape == (2, 16, V1) and torch.isfinite(result["loss"])
    assert student.classifier.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in objective.teacher.parameters())


def test_a_student_learns_the_teachers_posteriors():
    """KD alone (α = 1) fits a fresh per-frame student to a confident teacher of the same stride (a per-frame student
    cannot fit the neighbour mixtures a stride-2 teacher's alignment makes; that mapping is tested above)."""
    torch.manual_seed(0)
    teacher = FrameModel(stride=1)
    with torch.no_grad():
        teacher.linear.weight.mul_(8)  # confident, distinct posteriors per step
    student = FrameModel(stride=1)
    objective = SequenceDistillObjective(teacher, alpha=1.0)
    batch = toy_batch(t=16)
    optimizer = torch.optim.Adam(student.parameters(), lr=0.05)
    first = None
    for _ in range(150):
        result = objective(student, batch)
        first = float(result["kd_loss"]) if first is None else first
        optimizer.zero_grad()
        result["loss"].backward()
        optimizer.step()
    assert float(result["kd_loss"]) < 0.2 * first
    assert float(result["agreement"]) >= 0.9
