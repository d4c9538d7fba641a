"""Reusable regularisers whose strength follows training progress.

Progress contract (the Trainer implements it generically, `signlip.callbacks.broadcast_progress`): before each
epoch and after each optimizer step the Trainer calls `module.set_progress(epoch=..., step=...)` on every submodule
of the model that has a `set_progress` method.
`epoch` is the 0-based index of the epoch being run, `step` the number of optimizer steps already taken. State is
a pure function of (epoch, step) — no hidden counters — so a resumed run behaves exactly like an uninterrupted one.
Before any call the state is that of (epoch 0, step 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AdaptiveDropout(nn.Module):
    """Dropout whose rate rises linearly from `p_start` to `p_end` over `warmup_epochs` epochs, then stays."""

    def __init__(self, p_start: float = 0.1, p_end: float = 0.6, warmup_epochs: int = 30) -> None:
        super().__init__()
        if not (0 <= p_start < 1 and 0 <= p_end < 1):
            raise ValueError(f"dropout rates must lie in [0, 1); got {p_start}, {p_end}")
        self.p_start, self.p_end, self.warmup_epochs = float(p_start), float(p_end), int(warmup_epochs)
        self.p = self.p_start

    def set_progress(self, epoch: int, step: int) -> None:
        frac = 1.0 if self.warmup_epochs <= 0 else min(max(epoch, 0) / self.warmup_epochs, 1.0)
        self.p = self.p_start + (self.p_end - self.p_start) * frac

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, self.training) if self.p > 0 else x

    def extra_repr(self) -> str:
        return f"p={self.p:.3f}, p_start={self.p_start}, p_end={self.p_end}, warmup_epochs={self.warmup_epochs}"


class LateDropout(nn.Module):
    """Identity until optimizer step `start_step`, dropout with rate `p` from then on (GISLR-winner style:
    let the network fit first, then regularise hard)."""

    def __init__(self, p: float = 0.8, start_step: int = 0) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout rate must lie in [0, 1); got {p}")
        self.p, self.start_step = float(p), int(start_step)
        self.active = self.start_step <= 0

    def set_progress(self, epoch: int, step: int) -> None:
        self.active = step >= self.start_step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, self.training) if self.active and self.p > 0 else x

    def extra_repr(self) -> str:
        return f"p={self.p}, start_step={self.start_step}, active={self.active}"


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a whole residual branch per sample with probability `drop_prob` and
    rescale the survivors by 1/(1 - drop_prob). `warmup_epochs` > 0 ramps the rate linearly from 0."""

    def __init__(self, drop_prob: float = 0.0, warmup_epochs: int = 0) -> None:
        super().__init__()
        if not 0 <= drop_prob < 1:
            raise ValueError(f"drop_prob must lie in [0, 1); got {drop_prob}")
        self.drop_prob, self.warmup_epochs = float(drop_prob), int(warmup_epochs)
        self.p = 0.0 if self.warmup_epochs > 0 else self.drop_prob

    def set_progress(self, epoch: int, step: int) -> None:
        frac = 1.0 if self.warmup_epochs <= 0 else min(max(epoch, 0) / self.warmup_epochs, 1.0)
        self.p = self.drop_prob * frac

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)  # one draw per sample
        return x * x.new_empty(shape).bernoulli_(keep).div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p:.3f}, drop_prob={self.drop_prob}, warmup_epochs={self.warmup_epochs}"

