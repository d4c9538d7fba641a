"""I3D teacher: Inception-v1 (GoogLeNet with BatchNorm) inflated to 3D, as in Carreira & Zisserman (2017).

Layout (paper names, TF-slim channel counts; the "5×5" branch uses 3×3×3 kernels as in the published model):

    Conv3d_1a 7×7×7 /2 → MaxPool 1×3×3 /(1,2,2) → Conv3d_2b 1×1×1 → Conv3d_2c 3×3×3 → MaxPool 1×3×3 /(1,2,2)
    → Mixed_3b, 3c → MaxPool 3×3×3 /2 → Mixed_4b..4f → MaxPool 2×2×2 /2 → Mixed_5b, 5c
    → AvgPool (spatially adaptive; 2 frames × stride 1 in time as published) → Dropout → Conv3d 1×1×1 logits
    → mean over time.

`output="sequence"` (continuous recognition, CTC) keeps the time axis of the last feature map: spatial average,
Dropout, the same 1×1×1 logits convolution per time step → (B, T', num_classes) with num_classes = glosses + blank
(no 2-frame average, no mean over time). Temporal stride 8: Conv3d_1a, MaxPool_4a and MaxPool_5a each halve time
with "SAME" rounding, so T' = ⌈⌈⌈T/2⌉/2⌉/2⌉ = ⌈T/8⌉ (`I3D.output_lengths`); a sign of ~40 frames gets 5 outputs.

Convolutions pad symmetrically (k // 2, as torchvision's GoogLeNet, so that inflated ImageNet weights see the
same spatial alignment); max-pools pad TF-"SAME" style, so every clip size ≥ 1 frame works and even sizes pool
exactly as torchvision's `ceil_mode=True`. Input: `(B, 3, T, H, W)` float normalised with ImageNet statistics
(`I3D.NORMALIZATION`, like every torchvision backbone, so teacher and student share one data pipeline); the first
step maps it to the [-1, 1] range that the paper's I3D and torchvision's GoogLeNet weights were trained on (exactly
torchvision's `GoogLeNet(transform_input=True)`).

Parameters (asserted in tests/test_i3d.py): 12,697,264 for 400 classes; the backbone without the 400-way 1×1×1
classifier (1024·400 + 400) is 12,287,264 — the "≈12.3M" usually quoted for I3D-RGB; 12,293,414 for 6 classes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from signlip.errors import SignlipError
from signlip.registry import MODELS

# Inception modules: name → (in, 1×1, 3×3 reduce, 3×3, "5×5" reduce, "5×5" (really 3×3), pool proj).
_MIXED = {
    "mixed_3b": (192, 64, 96, 128, 16, 32, 32),
    "mixed_3c": (256, 128, 128, 192, 32, 96, 64),
    "mixed_4b": (480, 192, 96, 208, 16, 48, 64),
    "mixed_4c": (512, 160, 112, 224, 24, 64, 64),
    "mixed_4d": (512, 128, 128, 256, 24, 64, 64),
    "mixed_4e": (512, 112, 144, 288, 32, 64, 64),
    "mixed_4f": (528, 256, 160, 320, 32, 128, 128),
    "mixed_5b": (832, 256, 160, 320, 32, 128, 128),
    "mixed_5c": (832, 384, 192, 384, 48, 128, 128),
}
# Our module name → torchvision GoogLeNet module name (weight inflation).
_TORCHVISION_NAMES = {
    "conv_1a": "conv1", "conv_2b": "conv2", "conv_2c": "conv3",
    "mixed_3b": "inception3a", "mixed_3c": "inception3b",
    "mixed_4b": "inception4a", "mixed_4c": "inception4b", "mixed_4d": "inception4c", "mixed_4e": "inception4d",
    "mixed_4f": "inception4e", "mixed_5b": "inception5a", "mixed_5c": "inception5b",
}
GOOGLENET_URL = "https://download.pytorch.org/models/googlenet-1378be20.pth"  # GoogLeNet_Weights.IMAGENET1K_V1


class Unit3d(nn.Module):
    """Conv3d (no bias) → BatchNorm3d → ReLU; same module names as torchvision's `BasicConv2d` (conv, bn)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int, int],
                 stride: tuple[int, int, int] = (1, 1, 1)) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride=stride,
                              padding=tuple(k // 2 for k in kernel), bias=False)
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3)  # eps as in TF-slim / torchvision GoogLeNet

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class MaxPool3dSame(nn.Module):
    """Max-pool with TF 'SAME' padding: output size = ceil(input / stride) in every dimension.

    Every pool of this network takes ReLU outputs (≥ 0), so the padding is 0, as neutral for their max as −∞ (the
    same outputs) — and finite: an INT8 export calibrates each tensor's range, and −∞ in the padded tensors made
    that range infinite (static INT8 of a trained I3D fell from test accuracy 1.000 to 0.500)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    @staticmethod
    def _same_pad(sizes, kernel, stride) -> list[int]:
        """F.pad's (last axis first) before/after padding that makes each output size ceil(size / stride)."""
        pad: list[int] = []
        for size, k, s in reversed(list(zip(sizes, kernel, stride))):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pad += [total // 2, total - total // 2]
        return pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing():  # ONNX export: time must stay a dynamic axis of the graph
            return self._traceable(x)
        pad = self._same_pad(x.shape[2:], self.kernel, self.stride)
        if any(pad):
            x = F.pad(x, pad, value=0.0)
        return F.max_pool3d(x, self.kernel, self.stride)

    def _traceable(self, x: torch.Tensor) -> torch.Tensor:
        """The same pooling with the time padding computed by tensor ops, so a traced graph keeps it right at every
        length (Python arithmetic on the traced shape would freeze the traced length's padding into the graph: a
        wrong size at other lengths). Height and width keep fixed pads (clip sizes are fixed).
        Time: pad k − 1 frames each side, pool with stride 1, then pick the windows SAME pooling starts."""
        (kt, *k_hw), (st, *s_hw) = self.kernel, self.stride
        x = F.pad(x, [*self._same_pad(x.shape[3:], k_hw, s_hw), kt - 1, kt - 1], value=0.0)
        pooled = F.max_pool3d(x, self.kernel, (1, *s_hw))
        t = torch._shape_as_tensor(x)[2] - 2 * (kt - 1)  # the unpadded length, as a graph value
        steps = torch.div(t + st - 1, st, rounding_mode="floor")  # ceil(T / stride)
        front = torch.div(torch.clamp((steps - 1) * st + kt - t, min=0), 2, rounding_mode="floor")
        starts = torch.arange(steps) * st - front + (kt - 1)
        return pooled.index_select(2, starts)


class InceptionBlock3d(nn.Module):
    """Four branches concatenated on channels; module names mirror torchvision's `Inception` for inflation."""

    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, cpool: int) -> None:
        super().__init__()
        self.branch1 = Unit3d(cin, c1, (1, 1, 1))
        self.branch2 = nn.Sequential(Unit3d(cin, c3r, (1, 1, 1)), Unit3d(c3r, c3, (3, 3, 3)))
        self.branch3 = nn.Sequential(Unit3d(cin, c5r, (1, 1, 1)), Unit3d(c5r, c5, (3, 3, 3)))
        self.branch4 = nn.Sequential(MaxPool3dSame((3, 3, 3), (1, 1, 1)), Unit3d(cin, cpool, (1, 1, 1)))
        self.out_channels = c1 + c3 + c5 + cpool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


def example_input(batch: int = 2) -> tuple[dict, torch.Tensor, torch.Tensor | None]:
    """(kwargs, x, mask) of a small valid call: RGB clips (B, 3, 8, 32, 32), the smallest size that reaches every
    pooling stage."""
    return {}, torch.randn(batch, 3, 8, 32, 32), None


@MODELS.register("i3d", example=example_input)
class I3D(nn.Module):
    """Inception-v1 inflated to 3D (the I3D RGB stream) with a fresh `num_classes` classifier.

    Args:
        num_classes: number of output classes.
        dropout: dropout before the 1×1×1 logits convolution (0.3 in the reference recipe).
        in_channels: input channels (3 for RGB).
        pretrained: None, or "imagenet_inflated" to inflate torchvision's ImageNet GoogLeNet weights (read from the
            torch hub cache only; never downloaded).
        output: "class" (one prediction per clip) or "sequence" (one per 8 frames, for CTC).
    """

    NORMALIZATION: ClassVar[dict[str, tuple[float, ...]]] = {
        "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}

    TEMPORAL_STRIDE: ClassVar[int] = 8  # Conv3d_1a, MaxPool_4a, MaxPool_5a: /2 in time each

    def __init__(self, num_classes: int, dropout: float = 0.3, in_channels: int = 3, pretrained: str | None = None,
                 output: str = "class"):
        super().__init__()
        if output not in ("class", "sequence"):
            raise SignlipError(f"unknown i3d output={output!r} — use class or sequence")
        self.num_classes = num_classes
        self.output = output
        mean, std = torch.tensor(self.NORMALIZATION["mean"]), torch.tensor(self.NORMALIZATION["std"])
        # ImageNet-normalised x → (x·std + mean − 0.5) / 0.5 per channel; buffers (not parameters), not trained.
        self.register_buffer("input_scale", (std / 0.5).view(1, -1, 1, 1, 1), persistent=False)
        self.register_buffer("input_shift", ((mean - 0.5) / 0.5).view(1, -1, 1, 1, 1), persistent=False)
        self.conv_1a = Unit3d(in_channels, 64, (7, 7, 7), stride=(2, 2, 2))
        self.pool_2a = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.conv_2b = Unit3d(64, 64, (1, 1, 1))
        self.conv_2c = Unit3d(64, 192, (3, 3, 3))
        self.pool_3a = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.mixed_3b = InceptionBlock3d(*_MIXED["mixed_3b"])
        self.mixed_3c = InceptionBlock3d(*_MIXED["mixed_3c"])
        self.pool_4a = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        for name in ("mixed_4b", "mixed_4c", "mixed_4d", "mixed_4e", "mixed_4f"):
            setattr(self, name, InceptionBlock3d(*_MIXED[name]))
        self.pool_5a = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        self.mixed_5b = InceptionBlock3d(*_MIXED["mixed_5b"])
        self.mixed_5c = InceptionBlock3d(*_MIXED["mixed_5c"])
        self.dropout = nn.Dropout(dropout)
        self.logits = nn.Conv3d(1024, num_classes, kernel_size=1)  # 1×1×1 conv classifier, with bias
        self._init_weights()
        if pretrained == "imagenet_inflated":
            load_inflated_googlenet(self)
        elif pretrained is not None:
            raise SignlipError(f"unknown i3d pretrained={pretrained!r} — use null or imagenet_inflated")

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.logits.weight, std=0.01)
        nn.init.zeros_(self.logits.bias)

    def transform_input(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet-normalised (B, 3, T, H, W) → the [-1, 1] scale of the GoogLeNet/I3D weights (same shape)."""
        if x.shape[1] != self.input_scale.shape[1]:
            return x  # in_channels != 3: no ImageNet statistics to undo
        return x * self.input_scale + self.input_shift

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) → (B, 192, ⌈T/2⌉, H/8, W/8): the part that matches GoogLeNet's stem frame by frame."""
        x = self.pool_2a(self.conv_1a(self.transform_input(x)))
        return self.pool_3a(self.conv_2c(self.conv_2b(x)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) → (B, 1024, T/8, H/32, W/32) (before pooling)."""
        x = self.mixed_3c(self.mixed_3b(self.stem(x)))
        x = self.pool_4a(x)
        for name in ("mixed_4b", "mixed_4c", "mixed_4d", "mixed_4e", "mixed_4f"):
            x = getattr(self, name)(x)
        x = self.pool_5a(x)
        return self.mixed_5c(self.mixed_5b(x))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, C, T, H, W) normalised clip → logits (B, num_classes). `mask` is accepted and ignored
        (clips have a fixed length)."""
        x = self.features(x)  # (B, 1024, T', H', W')
        if self.output == "sequence":
            # Per time step of the last feature map; padded input frames' outputs are the objective's to ignore.
            x = self.logits(self.dropout(x.mean(dim=(3, 4), keepdim=True)))  # (B, num_classes, T', 1, 1)
            return x.flatten(2).transpose(1, 2)  # (B, T', num_classes)
        # Spatial average (the paper's 7×7 at 224²), then the temporal 2-frame average with stride 1, as published.
        # Written as a mean and a slice sum rather than pooling with kernels computed from x.shape, which ONNX
        # export cannot express (same values: (a + b) / 2 either way).
        x = x.mean(dim=(3, 4), keepdim=True)  # (B, 1024, T', 1, 1)
        if x.shape[2] > 1:
            x = (x[:, :, :-1] + x[:, :, 1:]) / 2
        x = self.logits(self.dropout(x))  # (B, num_classes, T'', 1, 1)
        return x.mean(dim=(2, 3, 4))  # average the per-time logits

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output steps of the sequence head for inputs of `lengths` frames: ⌈T/2⌉ three times (= ⌈T/8⌉)."""
        for _ in range(3):
            lengths = (lengths + 1) // 2
        return lengths


def hub_cache_path(url: str) -> Path:
    """Where torchvision keeps the weights file of `url`: `<torch.hub.get_dir()>/checkpoints/<file name>`."""
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def cached_weights(url: str, what: str) -> Path:
    """Path of torchvision weights `url` in the torch hub cache; SignlipError (never a download) when missing."""
    path = hub_cache_path(url)
    if not path.is_file():
        raise SignlipError(f"{what} weights are not on disk: {path} is missing — download {url} on a machine with "
                           f"internet and copy it to {path} (or set TORCH_HOME to a folder whose checkpoints/ holds "
                           "it)")
    return path


def inflate_googlenet_state(state: dict[str, torch.Tensor], model: I3D) -> dict[str, torch.Tensor]:
    """Map a torchvision GoogLeNet state_dict onto `model`'s keys, inflating 2D kernels to 3D.

    Each 2D kernel (O, I, kh, kw) is repeated over the model's temporal size kt and divided by kt, so that on a
    temporally constant clip the 3D convolution returns the 2D response (the paper's "boring video" argument).
    BatchNorm parameters and running statistics are copied. The classifier (`logits`) and GoogLeNet's aux heads
    are not mapped. Returns the subset of `model.state_dict()` that was filled.
    """
    target = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, value in target.items():
        ours_module = key.split(".", 1)[0]
        if ours_module not in _TORCHVISION_NAMES:
            continue
        src_key = _TORCHVISION_NAMES[ours_module] + "." + key.split(".", 1)[1]
        if src_key not in state:
            raise SignlipError(f"GoogLeNet weights lack {src_key!r} — use torchvision's "
                               "GoogLeNet_Weights.IMAGENET1K_V1 "
                               "file googlenet-1378be20.pth")
        src = state[src_key]
        if value.dim() == 5:  # conv (O, I, kt, kh, kw) ← (O, I, kh, kw)
            kt = value.shape[2]
            src = src.unsqueeze(2).repeat(1, 1, kt, 1, 1) / kt
        if src.shape != value.shape:
            raise SignlipError(f"GoogLeNet weight {src_key} has shape {tuple(src.shape)} but I3D needs "
                               f"{tuple(value.shape)} — in_channels must be 3 for imagenet_inflated")
        out[key] = src.to(value.dtype)
    return out


def load_inflated_googlenet(model: I3D, path: str | Path | None = None) -> None:
    """Inflate ImageNet GoogLeNet weights (from `path`, default the torch hub cache) into `model` in place."""
    path = Path(path) if path is not None else cached_weights(GOOGLENET_URL, "ImageNet GoogLeNet (for i3d)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(inflate_googlenet_state(state, model), strict=False)
