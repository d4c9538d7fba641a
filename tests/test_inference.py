"""The CPU inference form (signlip.inference): same predictions as the eager model, conv stacks really converted."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from signlip.inference import OneDNNStack, bfloat16_supported, for_cpu_inference
from signlip.registry import build_model

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch build has no oneDNN")


def _trained_like(model: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics, so folding them into the convs is actually exercised."""
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.mark.parametrize("name", ["lip_cnnlstm", "lip_cnn3d"])
@pytest.mark.parametrize("batch", [1, 3])
def test_lip_models_give_the_same_logits(name, batch):
    model = _trained_like(build_model(name, num_classes=4))
    fast = for_cpu_inference(model)
    assert isinstance(fast.features, OneDNNStack)  # the conv stack was converted …
    assert not any(isinstance(m, nn.BatchNorm3d) for m in fast.features.modules())  # … with BatchNorm folded in
    x = torch.rand(batch, 1, 8, 32, 48)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-5)


def test_the_original_model_is_left_untouched():
    model = build_model("lip_cnnlstm", num_classes=4).train()
    for_cpu_inference(model)
    assert model.training and isinstance(model.features, nn.Sequential)
    assert any(isinstance(m, nn.BatchNorm3d) for m in model.features)


def test_stacks_with_other_layers_stay_eager_and_exact():
    model = nn.Sequential(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.GELU()),
                          nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()))
    model = _trained_like(model)
    fast = for_cpu_inference(model)
    assert isinstance(fast[0], nn.Sequential)  # GELU cannot take a oneDNN tensor: unchanged
    assert isinstance(fast[1], OneDNNStack)
    x = torch.rand(2, 3, 16, 16)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-5)


def test_non_float32_input_is_refused_with_a_clear_message():
    fast = for_cpu_inference(build_model("lip_cnnlstm", num_classes=4))
    with pytest.raises(ValueError, match="float32 CPU tensors"):
        fast(torch.zeros(1, 1, 8, 32, 48, dtype=torch.float64))


@pytest.mark.skipif(not bfloat16_supported(), reason="this CPU has no native bfloat16 (AVX512-BF16 or AMX)")
def test_bfloat16_convs_keep_the_predictions():
    model = _trained_like(build_model("lip_cnnlstm", num_classes=4))
    fast = for_cpu_inference(model, torch.bfloat16)
    x = torch.rand(16, 1, 8, 32, 48)
    with torch.inference_mode():
        ref, out = model(x), fast(x)
    assert out.dtype == torch.float32
    assert (out - ref).abs().max() < 0.05
    assert (out.argmax(1) == ref.argmax(1)).float().mean() >= 0.9
