"""Recurrent classifier over landmark sequences (the ASL-alphabet recipe): GRU/LSTM → dense → classes."""

from __future__ import annotations

import torch
from torch import nn

from signlip.models.recurrent import run_recurrent
from signlip.registry import MODELS


def example_input(batch: int = 2) -> tuple[dict, torch.Tensor, torch.Tensor | None]:
    """(kwargs, x, mask) of a small valid call: 63 hand features (21 points × 3) over 30 frames, all real."""
    return {"input_size": 63}, torch.randn(batch, 30, 63), torch.ones(batch, 30, dtype=torch.bool)


@MODELS.register("landmark_gru", example=example_input)
class LandmarkGRU(nn.Module):
    """GRU or LSTM stack over (B, T, F) features; the last real time step feeds a dense head.

    Standard = GRU 128 × 2, dropout 0.3, dense 256; light = 64 × 1; deep = 256 × 3 (see conf/model/).
    `output="sequence"` (continuous recognition, CTC): the head runs on every recurrent step → (B, T', num_classes)
    with T' = ⌈T / frame_stack⌉ (`output_lengths`); use it bidirectional (conf/model/landmark_gru_ctc.yaml).
    """

    def __init__(self, num_classes: int, input_size: int = 63, hidden_size: int = 128, num_layers: int = 2,
                 cell: str = "gru", bidirectional: bool = False, dropout: float = 0.3, dense_size: int = 256,
                 output: str = "class", input_dim: int | None = None, frame_stack: int = 1):
        super().__init__()
        input_size = input_dim or input_size  # holistic data names its feature count input_dim
        if output not in ("class", "sequence"):
            raise ValueError(f"output must be class or sequence, got {output!r}")
        self.output = output
        # frame_stack s > 1: every s frames are stacked and projected before the RNN (temporal stride s, as speech
        # recognisers stack frames): s× fewer recurrent steps; the outputs are then per s frames (`output_lengths`).
        self.frame_stack = int(frame_stack)
        self.stack = None
        if self.frame_stack > 1:
            self.stack = nn.Sequential(nn.Linear(input_size * self.frame_stack, hidden_size), nn.ReLU())
            input_size = hidden_size
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.rnn = rnn(input_size, hidden_size, num_layers=num_layers, batch_first=True, bidirectional=bidirectional,
                       dropout=dropout if num_layers > 1 else 0.0)
        out = hidden_size * (2 if bidirectional else 1)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(out, dense_size), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(dense_size, num_classes))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, T, F) → out: (B, T, H·dirs)
        if self.stack is not None:
            x, mask = self._stack_frames(x, mask)
        if self.output == "sequence":
            return self.head(self._per_frame(x, mask))  # (B, T, num_classes); padded frames: the objective's to ignore
        out = run_recurrent(self.rnn, x)
        if mask is None:
            last = out[:, -1]
        else:
            # Last real frame of each sequence (sequences are padded at the end).
            idx = (mask.sum(1).clamp(min=1) - 1).long()
            last = out[torch.arange(out.shape[0], device=out.device), idx]
        return self.head(last)  # (B, num_classes)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output steps for inputs of `lengths` frames (ceil(T / frame_stack))."""
        return (lengths + self.frame_stack - 1) // self.frame_stack

    def _stack_frames(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, t, f = x.shape
        s = self.frame_stack
        pad = (-t) % s
        # Always concatenated (zero frames when nothing is missing): a branch on the length would be frozen into a
        # traced ONNX graph, which then fails at lengths whose padding differs from the traced one.
        x = torch.cat([x, x.new_zeros(b, pad, f)], 1)
        if mask is not None:
            mask = torch.cat([mask, mask.new_zeros(b, pad)], 1)
        x = self.stack(x.reshape(b, (t + pad) // s, s * f))
        return x, (mask.reshape(b, -1, s).any(-1) if mask is not None else None)

    def _per_frame(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """(B, T, H·dirs) outputs over the padded batch. Not packed: packing made a bidirectional GRU 5× slower on
        CPU; the loaders batch sentences of similar length (`LengthBucketSampler`), so the backward direction runs
        in from a few padded steps at most, and padded outputs are masked out of the loss."""
        return run_recurrent(self.rnn, x)
