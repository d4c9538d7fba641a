"""Lip-reading models on gray mouth clips `(B, 1, T, H, W)` in [0, 1] (reference systems 001 and 000).

- `lip_cnnlstm`: the reference recipe's lightweight 3D-CNN + LSTM (721,044 parameters for 4 classes).
- `lip_cnn3d`: the reference's deeper 3D-CNN baseline (5,215,237 parameters for 5 classes), for comparison.

Parameter layout of `lip_cnnlstm` (4 classes), derived from the reference's stated sizes:
Conv3d 1→16 (448) + BN (32), Conv3d 16→32 (13,856) + BN (64), Conv3d 32→48 (41,520) + BN (96), all 3×3×3;
adaptive pooling to 48 × 4 × 6 = 1152 features per frame; LSTM 1152→128 (656,384); Linear 128→64 (8,256) + BN (128);
Linear 64→4 (260). Total 721,044.

`word_boundary=True` (set by the data, `data.word_boundary=true`, LRW): the input's last channel is the word-boundary
plane (1 on the word's frames, constant over each frame, `ClipTransform`). `lip_cnnlstm` splits it off and appends
it to each frame's features before the LSTM, as the word-boundary variant of lip-reading toolkits does (e.g. mpc001's
Lipreading_using_Temporal_Convolutional_Networks: its backend input grows by one); `lip_cnn3d`, which has no
per-frame features, reads it as one more input channel of its first convolution.
"""

from __future__ import annotations

import torch
from torch import nn

from signlip.registry import MODELS


def _last_step(out: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(B, T, H) → (B, H): the last real time step (clips are padded at the end when a mask is given)."""
    if mask is None:
        return out[:, -1]
    idx = (mask.sum(1).clamp(min=1) - 1).long()
    return out[torch.arange(out.shape[0], device=out.device), idx]


def _split_boundary(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C + 1, T, H, W) → the clip (B, C, T, H, W) and its word-boundary vector (B, T)."""
    return x[:, :-1], x[:, -1, :, 0, 0]


def example_input(batch: int = 2) -> tuple[dict, torch.Tensor, torch.Tensor | None]:
    """(kwargs, x, mask) of a small valid call for both lip models: gray mouth clips (B, 1, 4, 16, 24)."""
    return {}, torch.rand(batch, 1, 4, 16, 24), None


@MODELS.register("lip_cnnlstm", example=example_input)
class LipCNNLSTM(nn.Module):
    """3D CNN front end (1→16→32→48, 3×3×3) keeping time, spatial pooling to 4×6, LSTM(1152→128), dense head.

    Each conv block: Conv3d(3×3×3, padding 1) → BatchNorm3d → ReLU → MaxPool(1, 2, 2) (halves H and W, keeps T).
    64×96 input → 8×12 after three blocks → adaptive average pooling to 4×6 → 48·4·6 = 1152 features per frame.

    `output="class"`: the head reads the LSTM's last real step → (B, num_classes). `output="sequence"` (phrases
    as word sequences, CTC): the same head on every step → (B, T, num_classes) with num_classes = words + blank, one
    output per frame (temporal stride 1, `output_lengths` the identity).
    """

    def __init__(self, num_classes: int, in_channels: int = 1, channels: tuple[int, ...] = (16, 32, 48),
                 pooled_size: tuple[int, int] = (4, 6), hidden_size: int = 128, dense_size: int = 64,
                 dropout: float = 0.3, output: str = "class", word_boundary: bool = False):
        super().__init__()
        if output not in ("class", "sequence"):
            raise ValueError(f"output must be class or sequence, got {output!r}")
        self.output, self.word_boundary = output, word_boundary
        blocks: list[nn.Module] = []
        c_in = in_channels
        for c_out in channels:
            blocks += [nn.Conv3d(c_in, c_out, kernel_size=3, padding=1), nn.BatchNorm3d(c_out), nn.ReLU(inplace=True),
                       nn.MaxPool3d(kernel_size=(1, 2, 2))]
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool3d((None, *pooled_size))  # keep T, pool space to 4×6
        self.lstm = nn.LSTM(c_in * pooled_size[0] * pooled_size[1] + int(word_boundary), hidden_size, num_layers=1,
                            batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden_size, dense_size), nn.BatchNorm1d(dense_size), nn.ReLU(inplace=True),
                                  nn.Dropout(dropout), nn.Linear(dense_size, num_classes))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, C, T, H, W) → features (B, 48, T, 8, 12) → pooled (B, 48, T, 4, 6)
        boundary = None
        if self.word_boundary:
            x, boundary = _split_boundary(x)
        f = self.pool(self.features(x))
        b, c, t, h, w = f.shape
        seq = f.permute(0, 2, 1, 3, 4).reshape(b, t, c * h * w)  # (B, T, 1152)
        if boundary is not None:
            seq = torch.cat([seq, boundary.unsqueeze(-1)], dim=-1)  # (B, T, 1153)
        out, _ = self.lstm(seq)  # (B, T, 128)
        if self.output == "sequence":  # every step through the head (BatchNorm1d over all B·T steps)
            return self.head(out.reshape(b * t, -1)).reshape(b, t, -1)  # (B, T, num_classes)
        return self.head(_last_step(out, mask))  # (B, num_classes)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output steps for inputs of `lengths` frames: one per frame (no temporal stride)."""
        return lengths


@MODELS.register("lip_cnn3d", example=example_input)
class LipCNN3D(nn.Module):
    """Deeper 3D CNN: 1→64→128→256→512 with 7, 5, 3, 3 spatial kernels (temporal 3), global average pooling,
    head 512→256→128→classes with dropout 0.4 / 0.2 / 0.12. The reference's input was (1, 32, 128, 128); any size
    works thanks to the global pooling. `word_boundary`: the boundary plane is one more input channel."""

    def __init__(self, num_classes: int, in_channels: int = 1, channels: tuple[int, ...] = (64, 128, 256, 512),
                 kernels: tuple[int, ...] = (7, 5, 3, 3), dropouts: tuple[float, ...] = (0.4, 0.2, 0.12),
                 word_boundary: bool = False):
        super().__init__()
        blocks: list[nn.Module] = []
        c_in = in_channels + int(word_boundary)
        for i, (c_out, k) in enumerate(zip(channels, kernels)):
            blocks += [nn.Conv3d(c_in, c_out, kernel_size=(3, k, k), padding=(1, k // 2, k // 2)),
                       nn.BatchNorm3d(c_out), nn.ReLU(inplace=True)]
            if i < len(channels) - 1:  # halve space (and time after the first block) between blocks
                blocks.append(nn.MaxPool3d(kernel_size=(1 if i == 0 else 2, 2, 2)))
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool3d(1)
        d1, d2, d3 = dropouts
        self.head = nn.Sequential(nn.Dropout(d1), nn.Linear(c_in, 256), nn.ReLU(inplace=True), nn.Dropout(d2),
                                  nn.Linear(256, 128), nn.ReLU(inplace=True), nn.Dropout(d3),
                                  nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, C, T, H, W) → (B, 512, T', H', W') → (B, 512)
        return self.head(self.pool(self.features(x)).flatten(1))  # (B, num_classes)
