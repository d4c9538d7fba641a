"""MobileNetV3 student: heads, order sensitivity, exact streaming, offline ImageNet weights."""

from __future__ import annotations

import pytest
import torch

from signlip.errors import SignlipError
from signlip.models.i3d import hub_cache_path
from signlip.models.mobilenetv3 import _WEIGHT_URLS, MobileNetV3Student


@pytest.mark.parametrize("head", ["avg", "conv1d", "gru", "tconv_bilstm"])
def test_heads_forward_backward(head):
    torch.manual_seed(0)
    model = MobileNetV3Student(num_classes=5, variant="small", temporal_head=head)
    x = torch.randn(2, 3, 6, 32, 32)  # (B, C, T, H, W)
    logits = model(x)
    assert logits.shape == (2, 5)
    logits.logsumexp(1).mean().backward()
    assert model.backbone[0][0].weight.grad.abs().sum() > 0


def test_large_and_small_feature_sizes():
    assert MobileNetV3Student(3, variant="large").feature_dim == 960
    assert MobileNetV3Student(3, variant="small").feature_dim == 576


def calibrated(model: MobileNetV3Student, x: torch.Tensor) -> MobileNetV3Student:
    """Set every BatchNorm's running statistics from one batch, then eval: a freshly initialised MobileNetV3 in
    eval mode maps all inputs to nearly the same features, which would make the comparisons below vacuous."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(x)
    return model.eval()


def test_temporal_heads_order_sensitivity():
    """avg is order-blind by construction; conv1d and gru see the order of frames (motion direction)."""
    torch.manual_seed(0)
    feats = torch.randn(2, 8, 576)  # per-frame features (B, T, D)
    for head, order_blind in (("avg", True), ("conv1d", False), ("gru", False), ("tconv_bilstm", False)):
        model = MobileNetV3Student(4, variant="small", temporal_head=head).eval()
        with torch.no_grad():
            same = torch.allclose(model.classify_features(feats), model.classify_features(feats.flip(1)), atol=1e-5)
        assert same == order_blind, head


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_streaming_equals_clip_forward_on_the_window(scale):
    torch.manual_seed(0)
    frames = torch.randn(8, 3, 32, 32)
    model = calibrated(MobileNetV3Student(4, variant="small", temporal_head="conv1d", input_scale=scale),
                       frames.transpose(0, 1).unsqueeze(0))
    stream = model.stream(window=5)
    outs = [stream.push(f) for f in frames]
    with torch.no_grad():
        ref = model(frames[-5:].transpose(0, 1).unsqueeze(0))  # (1, 3, 5, 32, 32)
    torch.testing.assert_close(outs[-1], ref, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(outs[-1], outs[-3], atol=1e-4)  # different windows, different logits


def test_imagenet_weights_load_from_hub_cache_and_missing_ones_name_the_file(tmp_path, monkeypatch):
    import torchvision

    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, **k: pytest.fail("download attempted"))
    try:
        with pytest.raises(SignlipError) as err:
            MobileNetV3Student(3, variant="small", pretrained="imagenet")
        assert "mobilenet_v3_small-047dcff4.pth" in str(err.value)
        path = hub_cache_path(_WEIGHT_URLS["small"])
        path.parent.mkdir(parents=True)
        torch.manual_seed(3)
        ref = torchvision.models.mobilenet_v3_small(weights=None)
        torch.save(ref.state_dict(), path)
        model = MobileNetV3Student(3, variant="small", pretrained="imagenet")
        assert torch.equal(model.backbone[0][0].weight, ref.features[0][0].weight)
    finally:
        torch.hub.set_dir(old)


def test_a_signlip_checkpoints_backbone_starts_a_new_student_and_is_not_needed_to_load_it(tmp_path):
    # An isolated-sign student (2 classes, conv1d head) starts a sentence student (bilstm head, CTC outputs): the
    # backbone is copied, the head starts fresh; the new student's checkpoint loads without the file it started from.
    from signlip.build import model_from_checkpoint

    torch.manual_seed(0)
    isolated = MobileNetV3Student(2, variant="small", temporal_head="conv1d")
    path = tmp_path / "isolated.pt"
    torch.save({"model": {"name": "mobilenetv3", "kwargs": {"num_classes": 2, "variant": "small"}},
                "model_state": isolated.state_dict(), "format_version": 2}, path)
    torch.manual_seed(1)
    sentences = MobileNetV3Student(7, variant="small", temporal_head="bilstm", output="sequence", pretrained=str(path))
    fresh = MobileNetV3Student(7, variant="small", temporal_head="bilstm", output="sequence")
    for (name, got), want in zip(sentences.backbone.state_dict().items(), isolated.backbone.state_dict().values()):
        assert torch.equal(got, want), name
    assert not torch.equal(sentences.backbone[0][0].weight, fresh.backbone[0][0].weight)

    kwargs = {"num_classes": 7, "variant": "small", "temporal_head": "bilstm", "output": "sequence",
              "pretrained": str(path)}
    path.unlink()
    back = model_from_checkpoint({"model": {"name": "mobilenetv3", "kwargs": kwargs},
                                  "model_state": sentences.state_dict()})
    assert torch.equal(back.classifier.weight, sentences.classifier.weight)


def test_a_pretrained_checkpoint_of_another_model_is_one_clear_error(tmp_path):
    other = tmp_path / "large.pt"
    torch.save({"model": {"name": "mobilenetv3", "kwargs": {"variant": "large"}}, "model_state": {}}, other)
    with pytest.raises(SignlipError, match=r"holds a mobilenetv3 large model, not a mobilenetv3 small — pass"):
        MobileNetV3Student(3, variant="small", pretrained=str(other))
    with pytest.raises(SignlipError, match=r"checkpoint .*missing.pt not found"):
        MobileNetV3Student(3, variant="small", pretrained=str(tmp_path / "missing.pt"))
    with pytest.raises(SignlipError, match=r"use null, imagenet or the path of a signlip checkpoint"):
        MobileNetV3Student(3, variant="small", pretrained="imagenet21k")


def test_input_scale_shows_the_backbone_resized_frames():
    """input_scale=2: the backbone sees each frame resized to twice its size (a 64×64 clip as 128×128): the same as
    the unscaled model on clips resized beforehand."""
    torch.manual_seed(0)
    clip = torch.randn(2, 3, 4, 32, 32)
    scaled = calibrated(MobileNetV3Student(3, variant="small", input_scale=2.0), clip)  # BN statistics of real runs
    plain = MobileNetV3Student(3, variant="small").eval()
    plain.load_state_dict(scaled.state_dict())
    frames = clip.transpose(1, 2).reshape(8, 3, 32, 32)
    bigger = torch.nn.functional.interpolate(frames, scale_factor=2.0, mode="bilinear", align_corners=False)
    with torch.no_grad():
        torch.testing.assert_close(scaled(clip), plain(bigger.view(2, 4, 3, 64, 64).transpose(1, 2)))
        assert not torch.allclose(scaled(clip), plain(clip), atol=1e-4)


@pytest.mark.parametrize("kwargs", [{"variant": "tiny"}, {"temporal_head": "lstm"}, {"in_channels": 1},
                                    {"pretrained": "kinetics"}, {"input_scale": 0}])
def test_bad_settings_are_one_clear_error(kwargs):
    with pytest.raises(SignlipError):
        MobileNetV3Student(3, **kwargs)


@pytest.mark.parametrize("head", ["avg", "conv1d", "gru"])
def test_padded_frames_do_not_change_the_logits(head):
    """A clip padded with masked frames gets the logits of the unpadded clip (eval mode, non-trivial BN shift)."""
    torch.manual_seed(0)
    model = MobileNetV3Student(4, variant="small", temporal_head=head).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-1.0, 1.0)  # BN maps zeroed (padded) steps away from zero
    feats = torch.randn(2, 8, 576)  # (B, T, D)
    mask = torch.tensor([[True] * 5 + [False] * 3, [True] * 8])
    with torch.no_grad():
        padded = model.classify_features(feats, mask)
        torch.testing.assert_close(padded[0], model.classify_features(feats[:1, :5])[0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(padded[1], model.classify_features(feats[1:])[0], rtol=1e-5, atol=1e-6)
