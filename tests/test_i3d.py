"""I3D teacher: parameter count, forward/backward on odd clip sizes, ImageNet inflation, offline weight handling."""

from __future__ import annotations

import pytest
import torch

from signlip.errors import SignlipError
from signlip.models.i3d import GOOGLENET_URL, I3D, hub_cache_path


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_count_matches_published_i3d():
    # Documented in docs/distill.md and the module docstring: 12.29M backbone + a 1×1×1 classifier (1024·C + C).
    model = I3D(num_classes=400)
    assert n_params(model) == 12_697_264
    assert n_params(model) - n_params(model.logits) == 12_287_264
    assert n_params(I3D(num_classes=6)) == 12_287_264 + 6 * 1025


# Odd T is avoided: this torch build's CPU Conv3d(k=7, s=2, p=3) backward corrupts the heap at T=5 and returns
# non-finite stem gradients now and then at T=7 — a torch bug reproduced with a bare nn.Conv3d, outside signlip.
@pytest.mark.parametrize("shape", [(2, 3, 8, 32, 32), (1, 3, 8, 34, 50)])
def test_forward_backward_any_clip_size(shape):
    torch.manual_seed(0)
    model = I3D(num_classes=4, dropout=0.3)
    x = torch.randn(*shape)  # (B, C, T, H, W)
    logits = model(x)
    assert logits.shape == (shape[0], 4) and torch.isfinite(logits).all()
    logits.logsumexp(1).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.conv_1a.conv.weight.grad.abs().sum() > 0  # the gradient reaches the stem


def _googlenet(seed: int = 0):
    """A torchvision GoogLeNet with random weights and non-trivial BatchNorm statistics (a stand-in for ImageNet)."""
    import torchvision

    torch.manual_seed(seed)
    net = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True, transform_input=True)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


def _googlenet_stem(net, x2d: torch.Tensor) -> torch.Tensor:
    """torchvision GoogLeNet up to maxpool2: (B, 3, H, W) → (B, 192, H/8, W/8)."""
    x = net._transform_input(x2d)
    x = net.maxpool1(net.conv1(x))
    return net.maxpool2(net.conv3(net.conv2(x)))


@pytest.fixture
def hub_dir(tmp_path):
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(old)


@pytest.fixture
def no_download(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def test_imagenet_inflation_reproduces_2d_stem_on_a_constant_clip(hub_dir, no_download):
    net = _googlenet()
    path = hub_cache_path(GOOGLENET_URL)
    assert path.parent == hub_dir / "checkpoints"
    path.parent.mkdir(parents=True)
    torch.save(net.state_dict(), path)

    model = I3D(num_classes=5, pretrained="imagenet_inflated").eval()
    assert torch.equal(model.mixed_3b.branch2[1].bn.running_var, net.inception3a.branch2[1].bn.running_var)
    torch.manual_seed(1)
    image = torch.randn(1, 3, 64, 64)  # ImageNet-normalised frame
    clip = image.unsqueeze(2).repeat(1, 1, 16, 1, 1)  # "boring video": (1, 3, 16, 64, 64), constant in time
    with torch.no_grad():
        ours = model.stem(clip)  # (1, 192, 8, 8, 8)
        ref = _googlenet_stem(net, image)  # (1, 192, 8, 8)
    assert ours.shape == (1, 192, 8, 8, 8) and ref.shape == (1, 192, 8, 8)
    # Frames whose temporal receptive field lies inside the clip (zero padding in time only touches the ends).
    for t in (3, 4):
        torch.testing.assert_close(ours[:, :, t], ref, rtol=1e-4, atol=1e-4)
    # A fresh (not inflated) model is far from it: the comparison above is not vacuous.
    with torch.no_grad():
        fresh = I3D(num_classes=5).eval().stem(clip)[:, :, 4]
    assert (fresh - ref).abs().max() > 0.1


def test_missing_imagenet_weights_name_the_file_and_never_download(hub_dir, no_download):
    with pytest.raises(SignlipError) as err:
        I3D(num_classes=5, pretrained="imagenet_inflated")
    message = str(err.value)
    assert "googlenet-1378be20.pth" in message and str(hub_dir / "checkpoints") in message
    assert "\n" not in message


def test_unknown_pretrained_is_refused():
    with pytest.raises(SignlipError, match="imagenet_inflated"):
        I3D(num_classes=5, pretrained="kinetics")


def test_same_pooling_pads_with_a_finite_value_equal_to_minus_infinity_on_relu_outputs(tmp_path):
    """Every pool takes ReLU outputs, so zero padding gives the −∞ padding's maxima exactly — and the exported graph
    holds no infinite constant (−∞ made static INT8 calibration ranges infinite: a trained I3D fell to chance)."""
    import numpy as np
    import torch.nn.functional as F

    from signlip.models.i3d import MaxPool3dSame

    pool = MaxPool3dSame((3, 3, 3), (2, 2, 2))
    x = torch.relu(torch.randn(2, 4, 7, 9, 8))
    pad = MaxPool3dSame._same_pad(x.shape[2:], pool.kernel, pool.stride)
    with_inf = F.max_pool3d(F.pad(x, pad, value=float("-inf")), pool.kernel, pool.stride)
    torch.testing.assert_close(pool(x), with_inf, rtol=0, atol=0)

    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    from signlip.deploy.onnx_export import WithOutputLengths, export_onnx

    model = I3D(3, output="sequence").eval()
    example = {"x": torch.randn(1, 3, 9, 32, 32), "mask": torch.ones(1, 9, dtype=torch.bool)}
    export_onnx(WithOutputLengths(model), example, tmp_path / "i3d.onnx")
    graph = onnx.load(str(tmp_path / "i3d.onnx")).graph
    values = [numpy_helper.to_array(t) for t in graph.initializer]
    values += [numpy_helper.to_array(a.t) for n in graph.node if n.op_type == "Constant" for a in n.attribute
               if a.name == "value"]
    assert all(np.isfinite(v).all() for v in values if v.dtype.kind == "f")
