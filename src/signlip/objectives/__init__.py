"""Objectives turn (model, batch) into a loss: `objective(model, batch) -> {"loss", "outputs", **scalars}`.

- "loss": a scalar tensor with grad (training) — the Trainer backpropagates it;
- "outputs": what the evaluator scores, e.g. logits (B, C) or per-frame log-probabilities (B, T', V);
- any other 0-dim tensor (e.g. "accuracy", "kd_loss"): averaged over the epoch and logged as train/<name>
  (and val/<name> unless the evaluator computes that name itself).

An objective may define `setup(trainer)`, called once before fitting (e.g. distillation caches teacher logits),
and a classmethod `resolve_kwargs(data, kwargs) -> kwargs` that turns data-dependent settings into plain values
before it is built (e.g. `class_weights=balanced` → one weight per class); the resolved kwargs are stored in the
checkpoint so that `evaluate` rebuilds the very same objective. One file per kind; each registers in
`signlip.registry.OBJECTIVES`.
"""
