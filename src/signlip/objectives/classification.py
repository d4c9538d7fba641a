"""Classification: cross-entropy with optional label smoothing, class weights and focal modulation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from signlip.errors import SignlipError
from signlip.registry import OBJECTIVES


@OBJECTIVES.register("classify")
class ClassifyObjective:
    """Cross-entropy on logits (B, C) and int64 labels batch["y"] (B,); focal loss when focal_gamma > 0.

    Returns {"loss", "outputs": logits, "accuracy": share of the batch predicted right}."""

    def __init__(self, label_smoothing: float = 0.0, focal_gamma: float = 0.0,
                 class_weights: Sequence[float] | None = None):
        self.label_smoothing = label_smoothing
        self.focal_gamma = focal_gamma
        self.class_weights = torch.as_tensor(class_weights, dtype=torch.float32) if class_weights else None

    @classmethod
    def resolve_kwargs(cls, data: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        """`class_weights=balanced` → inverse-frequency weights of the train split; a list must match the classes."""
        kwargs = dict(kwargs)
        weights, n = kwargs.get("class_weights"), len(data.classes)
        if weights == "balanced":
            counts = np.bincount(data.splits["train"].labels, minlength=n).astype(float)
            kwargs["class_weights"] = (counts.sum() / (n * np.maximum(counts, 1))).tolist()
        elif isinstance(weights, list) and len(weights) != n:
            raise SignlipError(f"objective.class_weights has {len(weights)} weights for {n} classes "
                               f"({', '.join(data.classes)}) — give one per class, or class_weights=balanced")
        return kwargs

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = model(batch["x"], batch.get("mask"))  # (B, C)
        with torch.no_grad():
            accuracy = (logits.argmax(1) == batch["y"]).float().mean()
        return {"loss": self.loss(logits, batch["y"]), "outputs": logits, "accuracy": accuracy}

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = self.class_weights.to(logits.device) if self.class_weights is not None else None
        logits = logits.float()
        if self.focal_gamma <= 0:
            return F.cross_entropy(logits, target, weight=weight, label_smoothing=self.label_smoothing)
        per_sample = F.cross_entropy(logits, target, weight=weight, label_smoothing=self.label_smoothing,
                                     reduction="none")
        p_true = logits.softmax(-1).gather(1, target[:, None]).squeeze(1)
        return ((1 - p_true) ** self.focal_gamma * per_sample).mean()
