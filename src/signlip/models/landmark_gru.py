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
    """

    def __init__(self, num_classes: int, input_size: int = 63, hidden_size: int = 128, num_layers: int = 2,
                 cell: str = "gru", bidirectional: bool = False, dropout: float = 0.3, dense_size: int = 256):
        super().__init__()
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.rnn = rnn(input_size, hidden_size, num_layers=num_layers, batch_first=True, bidirectional=bidirectional,
                       dropout=dropout if num_layers > 1 else 0.0)
        out = hidden_size * (2 if bidirectional else 1)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(out, dense_size), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(dense_size, num_classes))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, T, F) → out: (B, T, H·dirs)
        out = run_recurrent(self.rnn, x)
        if mask is None:
            last = out[:, -1]
        else:
            # Last real frame of each sequence (sequences are padded at the end).
            idx = (mask.sum(1).clamp(min=1) - 1).long()
            last = out[torch.arange(out.shape[0], device=out.device), idx]
        return self.head(last)  # (B, num_classes)
