"""MobileNetV3 student: torchvision's MobileNetV3 as a per-frame feature extractor + a small temporal head.

Frames are folded into the batch, (B, C, T, H, W) → (B·T, C, H, W), each frame is pooled to one feature vector
(960 for `large`, 576 for `small`), and a temporal head turns the (B, T, D) sequence into logits:

- `avg`: masked temporal mean — order-blind, so it cannot tell motions that differ only in direction apart;
- `conv1d` (default): two 1D temporal convolutions (kernel 3, receptive field 5 frames), then the masked mean;
- `gru`: a one-layer GRU over time, then the masked mean of its outputs;
- `bilstm`: a one-layer bidirectional LSTM over time (2 × hidden), then the masked mean;
- `tconv_bilstm`: the continuous-signing head of VAC / CorrNet (2D CNN per frame, then K5-P2-K5-P2, then BiLSTM):
  two 1D convolutions (kernel 5), each followed by max-pooling over 2 steps, then the BiLSTM — temporal stride 4.

`output="sequence"` (continuous recognition, CTC): the same head, but the classifier runs on every step instead of
the masked mean → (B, T', num_classes) with num_classes = glosses + blank: one output per input frame (T' = T) for
`conv1d` / `bilstm`, one per 4 frames (T' = ⌊T/4⌋) for `tconv_bilstm`; `output_lengths` says which (`gru` sees only
the past: not for sequences). Pooling shortens CTC's output and lets each step see ~4 frames at once; on the
built-in RGB sentences from random weights it did not help (test WER 87% vs `bilstm`'s 82%, docs/cslr.md).

Input: float `(B, 3, T, H, W)` normalised with ImageNet statistics (`MobileNetV3Student.NORMALIZATION`).

Streaming: frames are independent until the head (BatchNorm runs in eval mode), so a sliding-window recogniser
caches one feature vector per frame and pays one backbone pass per new frame; see `StreamingClassifier`.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

import torch
from torch import nn

from signlip.errors import SignlipError
from signlip.models.i3d import cached_weights
from signlip.models.recurrent import run_recurrent
from signlip.registry import MODELS

_WEIGHT_URLS = {  # torchvision MobileNet_V3_{Large,Small}_Weights.IMAGENET1K_V1
    "large": "https://download.pytorch.org/models/mobilenet_v3_large-8738ca79.pth",
    "small": "https://download.pytorch.org/models/mobilenet_v3_small-047dcff4.pth",
}
TEMPORAL_HEADS = ("avg", "conv1d", "gru", "bilstm", "tconv_bilstm")
OUTPUTS = ("class", "sequence")


def _masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(B, T, D), mask (B, T) bool → (B, D) mean over the real time steps."""
    if mask is None:
        return x.mean(dim=1)
    w = mask.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)


def example_input(batch: int = 2) -> tuple[dict, torch.Tensor, torch.Tensor | None]:
    """(kwargs, x, mask) of a small valid call: RGB clips (B, 3, 4, 32, 32), frames folded into the batch by the
    small variant."""
    return {"variant": "small"}, torch.randn(batch, 3, 4, 32, 32), None


def checkpoint_backbone(path: str, variant: str) -> dict[str, torch.Tensor]:
    """The backbone weights (torchvision's `features`) of a signlip mobilenetv3 checkpoint; SignlipError naming the
    problem when it is not one of `variant`."""
    from signlip.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    model = ckpt.get("model") or {}
    kwargs = model.get("kwargs") or {}
    held = model.get("name")
    if held == "mobilenetv3":
        held = f"mobilenetv3 {kwargs.get('variant', 'large')}"
    if held != f"mobilenetv3 {variant}":
        raise SignlipError(f"model.pretrained={path} holds a {held} model, not a mobilenetv3 {variant} — pass a "
                           f"checkpoint of signlip train task=mobilenetv3 model.variant={variant}")
    return {k.removeprefix("backbone."): v for k, v in ckpt["model_state"].items() if k.startswith("backbone.")}


@MODELS.register("mobilenetv3", example=example_input)
class MobileNetV3Student(nn.Module):
    """Per-frame MobileNetV3 backbone + temporal head → logits (B, num_classes), or (B, T, num_classes) per frame
    with `output="sequence"`.

    Args:
        num_classes: number of output classes.
        variant: "large" or "small" (torchvision `mobilenet_v3_large` / `mobilenet_v3_small`).
        temporal_head: "avg", "conv1d", "gru" or "bilstm" (see the module docstring).
        hidden: width of the conv1d / gru head (per direction for bilstm).
        dropout: dropout before the classifier (0.6 in the reference recipe).
        in_channels: must be 3 (the backbone's stem is RGB).
        pretrained: None, "imagenet" to load torchvision's ImageNet weights into the backbone from the torch hub
            cache (never downloaded), or the path of a signlip checkpoint of a mobilenetv3 of the same variant — its
            backbone only (the temporal head and classifier start fresh), e.g. a student trained on isolated signs
            to start a sentence (CTC) student from.
        bn_momentum: BatchNorm running-statistics momentum of the backbone. torchvision builds MobileNetV3 with 0.01
            (tuned for long ImageNet runs); after a few hundred updates from random weights the running statistics
            are then still mostly their initial values (mean 0, var 1), and in eval mode the network collapses to
            one constant output. 0.1 (PyTorch's default) follows the weights closely enough for short runs.
        output: "class" (one prediction per clip) or "sequence" (one per frame, for CTC).
        input_scale: each frame is resized by this factor (bilinear) before the backbone. MobileNetV3 reduces a
            frame 32× (ImageNet: 224 → 7×7): a 64×64 clip ends as a 2×2 map in which a hand is less than a cell.
            At 2 (seen as 128×128, 4× the compute) the built-in isolated RGB signs are learnt from random weights
            (val 0.975 at epoch 5) where at 1 the same run stays at chance (docs/distill.md).
    """

    NORMALIZATION: ClassVar[dict[str, tuple[float, ...]]] = {
        "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}

    def __init__(self, num_classes: int, variant: str = "large", temporal_head: str = "conv1d", hidden: int = 256,
                 dropout: float = 0.6, in_channels: int = 3, pretrained: str | None = None,
                 bn_momentum: float = 0.1, output: str = "class", input_scale: float = 1.0) -> None:
        super().__init__()
        import torchvision  # lazy: keeps `import signlip.models` light

        if variant not in _WEIGHT_URLS:
            raise SignlipError(f"unknown mobilenetv3 variant={variant!r} — use large or small")
        if temporal_head not in TEMPORAL_HEADS:
            raise SignlipError(f"unknown mobilenetv3 temporal_head={temporal_head!r} — use one of {TEMPORAL_HEADS}")
        if output not in OUTPUTS:
            raise SignlipError(f"unknown mobilenetv3 output={output!r} — use class or sequence")
        if in_channels != 3:
            raise SignlipError(f"mobilenetv3 needs RGB input but in_channels={in_channels} — use 3-channel clips")
        if input_scale <= 0:
            raise SignlipError(f"mobilenetv3 input_scale={input_scale} — use a factor > 0 (1: frames as they are)")
        if pretrained not in (None, "imagenet") and not str(pretrained).endswith(".pt"):
            raise SignlipError(f"unknown mobilenetv3 pretrained={pretrained!r} — use null, imagenet or the path of a "
                               f"signlip checkpoint (.pt) of a mobilenetv3")
        factory = torchvision.models.mobilenet_v3_large if variant == "large" else torchvision.models.mobilenet_v3_small
        net = factory(weights=None)
        if pretrained == "imagenet":
            path = cached_weights(_WEIGHT_URLS[variant], f"ImageNet MobileNetV3-{variant}")
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        elif pretrained is not None:
            net.features.load_state_dict(checkpoint_backbone(pretrained, variant))
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = bn_momentum
        self.num_classes = num_classes
        self.input_scale = float(input_scale)
        self.temporal_head = temporal_head
        self.output = output
        self.backbone = net.features  # the classifier of the ImageNet net is dropped
        self.feature_dim = net.classifier[0].in_features  # 960 (large) / 576 (small)
        d = self.feature_dim
        if temporal_head == "conv1d":
            self.head = nn.Sequential(
                nn.Conv1d(d, hidden, 3, padding=1, bias=False), nn.BatchNorm1d(hidden), nn.Hardswish(),
                nn.Conv1d(hidden, hidden, 3, padding=1, bias=False), nn.BatchNorm1d(hidden), nn.Hardswish())
            d = hidden
        elif temporal_head == "gru":
            self.head = nn.GRU(d, hidden, batch_first=True)
            d = hidden
        elif temporal_head == "bilstm":
            self.head = nn.LSTM(d, hidden, batch_first=True, bidirectional=True)
            d = 2 * hidden
        elif temporal_head == "tconv_bilstm":
            self.head = nn.Sequential(  # (conv → BN → act → pool) × 2, as conv1d's blocks; then the LSTM
                nn.Conv1d(d, hidden, 5, padding=2, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(), nn.MaxPool1d(2),
                nn.Conv1d(hidden, hidden, 5, padding=2, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(),
                nn.MaxPool1d(2))
            self.rnn = nn.LSTM(hidden, hidden, batch_first=True, bidirectional=True)
            d = 2 * hidden
        else:
            self.head = nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(d, num_classes)

    @property
    def temporal_stride(self) -> int:
        """Input frames per output step of the temporal head."""
        return 4 if self.temporal_head == "tconv_bilstm" else 1

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, T, H, W) → per-frame features (B, T, D)."""
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)  # (B·T, C, H, W)
        f = self.frame_vectors(frames)
        return f.view(b, t, -1)

    def frame_vectors(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) frames → (N, D): the backbone (after the input scaling) and a global average pool."""
        if self.input_scale != 1.0:
            frames = nn.functional.interpolate(frames, scale_factor=self.input_scale, mode="bilinear",
                                               align_corners=False)
        return self.backbone(frames).mean(dim=(2, 3))

    def classify_features(self, feats: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-frame features (B, T, D) [+ mask (B, T) bool, True = real frame] → logits (B, num_classes), or
        (B, T, num_classes) with output="sequence" (padded frames' outputs are the objective's to ignore)."""
        h, mask = self.temporal_features(feats, mask)
        if self.output == "sequence":
            return self.classifier(self.dropout(h))
        return self.classifier(self.dropout(_masked_mean(h, mask)))

    def temporal_features(self, feats: torch.Tensor, mask: torch.Tensor | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The temporal head over per-frame features: (B, T, D) [+ mask (B, T)] → (B, T', d) and the mask of its
        real steps (B, T'), before pooling and classifier; T' = T // temporal_stride."""
        if feats.shape[1] < self.temporal_stride:
            raise SignlipError(f"{feats.shape[1]} frame(s) for a temporal head that pools {self.temporal_stride} "
                               f"frames per step — give it at least {self.temporal_stride} frames")
        keep = mask.to(feats.dtype).unsqueeze(1) if mask is not None else None  # (B, 1, T)
        if keep is not None:
            feats = feats * keep.transpose(1, 2)  # padded frames must not leak into conv neighbours
        if self.temporal_head == "tconv_bilstm":
            h = feats.transpose(1, 2)  # (B, D, T)
            for start in range(0, len(self.head), 4):  # conv → BN → act → pool blocks
                h = self.head[start: start + 4](h)
                if keep is not None:  # a pooled step is real when both its steps are; re-zero the others (as conv1d)
                    keep = -nn.functional.max_pool1d(-keep, 2)
                    h = h * keep
            h = run_recurrent(self.rnn, h.transpose(1, 2))  # (B, T/4, 2·hidden)
        elif self.temporal_head == "conv1d":
            h = feats.transpose(1, 2)  # (B, D, T)
            for start in range(0, len(self.head), 3):  # conv → BN → act blocks; same keys as one Sequential
                h = self.head[start: start + 3](h)
                if keep is not None:
                    h = h * keep  # BN's shift makes padded steps non-zero; re-zero them before the next conv sees them
            h = h.transpose(1, 2)  # (B, T, hidden)
        elif self.temporal_head == "gru":
            h, _ = self.head(feats)  # causal, so padded tail frames do not change earlier outputs
        elif self.temporal_head == "bilstm":
            # Not packed (as landmark_gru): the backward direction runs in from the zeroed padded tail, a few steps
            # when batches are bucketed by length.
            h = run_recurrent(self.head, feats)
        else:
            h = feats
        return h, (keep.squeeze(1) > 0 if keep is not None else None)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, 3, T, H, W) normalised clip, mask (B, T) optional → logits (B, num_classes)."""
        return self.classify_features(self.frame_features(x), mask)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output steps for inputs of `lengths` frames: one per frame, or one per 4 (`tconv_bilstm`)."""
        return torch.div(lengths, self.temporal_stride, rounding_mode="floor")

    def stream(self, window: int = 16) -> StreamingClassifier:
        """A sliding-window recogniser over this model (put in eval mode); see `StreamingClassifier`."""
        return StreamingClassifier(self, window)


class StreamingClassifier:
    """Sliding-window inference with cached per-frame features: each `push` costs one backbone pass + the head.

    Exact: in eval mode the backbone treats frames independently, so the logits after pushing frames f1..fN equal
    `model(clip of the last `window` frames)`. Until `window` frames have arrived, the window is the frames so far.
    """

    def __init__(self, model: MobileNetV3Student, window: int = 16) -> None:
        self.model = model.eval()
        self.window = window
        self._feats: deque[torch.Tensor] = deque(maxlen=window)

    def reset(self) -> None:
        """Forget the cached frames (start of a new stream)."""
        self._feats.clear()

    @torch.inference_mode()
    def push(self, frame: torch.Tensor) -> torch.Tensor:
        """frame (3, H, W) or (B, 3, H, W) normalised → logits (B, num_classes) over the current window."""
        if frame.dim() == 3:
            frame = frame.unsqueeze(0)
        f = self.model.frame_vectors(frame)  # (B, D)
        self._feats.append(f)
        feats = list(self._feats)
        # A pooling head needs temporal_stride frames: until they have arrived, repeat the first one.
        feats = [feats[0]] * (self.model.temporal_stride - len(feats)) + feats
        return self.model.classify_features(torch.stack(feats, dim=1))  # (B, T≤window, D) → (B, C)
