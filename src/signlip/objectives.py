"""Objectives own the loss: `objective(model, batch) -> {"loss", "logits", ...}`.

Extra scalar tensors in the returned dict (e.g. "kd_loss") are averaged per epoch and logged by the Trainer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from signlip.registry import OBJECTIVES


@OBJECTIVES.register("classify")
class ClassifyObjective:
    """Cross-entropy with optional label smoothing, class weights and focal modulation (gamma > 0)."""

    def __init__(self, label_smoothing: float = 0.0, focal_gamma: float = 0.0,
                 class_weights: Sequence[float] | None = None):
        self.label_smoothing = label_smoothing
        self.focal_gamma = focal_gamma
        self.class_weights = torch.as_tensor(class_weights, dtype=torch.float32) if class_weights else None

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = model(batch["x"], batch.get("mask"))
        return {"loss": self.loss(logits, batch["y"]), "logits": logits}

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = self.class_weights.to(logits.device) if self.class_weights is not None else None
        logits = logits.float()
        if self.focal_gamma <= 0:
            return F.cross_entropy(logits, target, weight=weight, label_smoothing=self.label_smoothing)
        per_sample = F.cross_entropy(logits, target, weight=weight, label_smoothing=self.label_smoothing,
                                     reduction="none")
        p_true = logits.softmax(-1).gather(1, target[:, None]).squeeze(1)
        return ((1 - p_true) ** self.focal_gamma * per_sample).mean()
