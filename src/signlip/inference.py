"""CPU inference form of a trained model: its plain conv stacks run on oneDNN tensors with BatchNorm folded in.

Why: this torch build runs a batch-1 Conv3d with few channels on a slow reference kernel (`slow_conv3d_forward`);
tensors in oneDNN's layout always take oneDNN's kernels. lip_cnnlstm at batch 1 on this CPU: ~100 ms → ~14 ms with
the same outputs to float rounding, ~8 ms with bfloat16 convolutions (docs/benchmarks.md). Used by `signlip evaluate`
on CPU and by the benchmarks; deploy with `for_cpu_inference(model)` after loading a checkpoint.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

_CONVS = (nn.Conv2d, nn.Conv3d)
_BATCH_NORMS = {nn.Conv2d: nn.BatchNorm2d, nn.Conv3d: nn.BatchNorm3d}
_LAYOUT_SAFE = (nn.ReLU, nn.MaxPool2d, nn.MaxPool3d)  # layers whose ops accept oneDNN tensors


class OneDNNStack(nn.Module):
    """A conv stack computed on oneDNN tensors of `dtype`: dense float32 in, dense float32 out."""

    def __init__(self, body: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.body, self.dtype = body, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dtype != torch.float32:
            raise ValueError(f"for_cpu_inference models take float32 CPU tensors, got {x.dtype} on {x.device}")
        return self.body(x.to(self.dtype).to_mkldnn()).to_dense().float()


def _folded(stack: nn.Sequential) -> nn.Sequential | None:
    """The stack with each conv→BatchNorm pair folded into one conv; None when it holds a layer oneDNN tensors
    cannot pass through (or no conv at all)."""
    layers: list[nn.Module] = []
    for layer in stack:
        previous = layers[-1] if layers else None
        if previous is not None and type(layer) is _BATCH_NORMS.get(type(previous)):
            layers[-1] = fuse_conv_bn_eval(previous, layer)
        elif type(layer) in _CONVS and layer.padding_mode == "zeros" and not isinstance(layer.padding, str):
            layers.append(layer)
        elif isinstance(layer, _LAYOUT_SAFE) and not getattr(layer, "return_indices", False):
            layers.append(layer)
        else:
            return None
    return nn.Sequential(*layers) if any(isinstance(layer, _CONVS) for layer in layers) else None


def _convert(module: nn.Module, to_mkldnn, dtype: torch.dtype) -> None:
    for name, child in module.named_children():
        folded = _folded(child) if type(child) is nn.Sequential else None
        if folded is not None:
            setattr(module, name, OneDNNStack(to_mkldnn(folded, dtype), dtype))
        else:
            _convert(child, to_mkldnn, dtype)


def bfloat16_supported() -> bool:
    """Whether this CPU has native bfloat16 dot products (AVX512-BF16 or AMX) for oneDNN."""
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def for_cpu_inference(model: nn.Module, dtype: torch.dtype = torch.float32) -> nn.Module:
    """An eval-mode copy of `model` for CPU inference on float32 inputs; the model itself is left untouched.
    `dtype=torch.bfloat16` runs the conv stacks in bfloat16 (faster where `bfloat16_supported()`, outputs differ
    from float32 at about 1e-4). Without oneDNN the copy is returned as it is."""
    if dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"for_cpu_inference dtype must be torch.float32 or torch.bfloat16, got {dtype}")
    model = copy.deepcopy(model).eval()
    if not torch.backends.mkldnn.is_available():
        return model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.utils.mkldnn builds its modules with torch.jit
        try:
            from torch.utils.mkldnn import to_mkldnn
        except ImportError:  # a future torch without the utility: plain eager is still correct
            return model
        with torch.no_grad():
            _convert(model, to_mkldnn, dtype)
    return model
