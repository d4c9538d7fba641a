"""Running recurrent layers under autocast.

On CPU, oneDNN has no bfloat16 LSTM primitive for some shapes (seen: `landmark_gru_light`, LSTM 63 → 64, with
`trainer.precision=bf16` → "could not create a primitive descriptor for the LSTM forward propagation primitive").
Models whose recurrent input size comes from the user's data run it through here: on CPU in float32 with autocast
off (the GRU is per-op overhead bound there, bf16 buys nothing); on CUDA autocast applies as usual.
"""

from __future__ import annotations

import torch
from torch import nn


def run_recurrent(rnn: nn.RNNBase, x: torch.Tensor) -> torch.Tensor:
    """`rnn(x)[0]` — the (B, T, H·dirs) outputs of a batch-first GRU/LSTM — in float32 on CPU."""
    if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            return rnn(x.float())[0]
    return rnn(x)[0]
