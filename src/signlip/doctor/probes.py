"""The doctor's training probes, stepped by the Trainer's own `train_step` — so they test the step training runs
(objective, autocast, backward, clipping, optimizer), not a copy of it:

- overfit one batch: a fresh model must drive the loss on one small batch (augmentation off) to ~0;
- a short real run must beat chance on val; with `doctor.shuffle_control=true` the same run on shuffled training
  labels must stay at chance. Memorising one batch works on shuffled labels too, so it is this real-vs-shuffled
  comparison that flags labels that do not belong to their inputs;
- chance bounds: the accuracy a run must pass to count as learning (binomial, and by class matching).

Each probe trains its own fresh model (seeded, so a probe gives the same figures on every run) with the task's
optimizer at a constant learning rate: a probe of a few hundred updates must not sit in a schedule's warmup.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from signlip.build import Run, instantiate, instantiate_with, make_trainer, spec
from signlip.doctor.check import Check
from signlip.errors import SignlipError
from signlip.optim import Schedule, build_optimizer
from signlip.registry import MODELS, OBJECTIVES
from signlip.run_logger import RunLogger
from signlip.trainer import NonFiniteLoss, Trainer, model_input, run_evaluation


def probe_trainer(run: Run, run_dir: str | Path, seed: int, lr: float | None = None, weight_decay: bool = True,
                  label_smoothing: bool = True) -> Trainer:
    """The Trainer over `run` with a fresh model initialised from `seed`, a fresh optimizer (the task's, at `lr` if
    given, without weight decay if asked) and a constant learning rate. `label_smoothing=False` zeroes the
    objective's smoothing, which keeps the loss above 0 by design."""
    torch.manual_seed(seed)
    model = instantiate(MODELS, run.contract["model"], hint="model.*")
    objective = run.objective
    if not label_smoothing and "label_smoothing" in run.contract["objective"]["kwargs"]:
        entry = copy.deepcopy(run.contract["objective"])
        entry["kwargs"]["label_smoothing"] = 0.0
        objective = instantiate(OBJECTIVES, entry, hint="objective.*")
    optim = spec(run.config["optim"])
    if lr is not None:
        optim["kwargs"]["lr"] = lr
    if not weight_decay:
        optim["kwargs"]["weight_decay"] = 0.0
    optimizer = instantiate_with(build_optimizer, "optim.*", model.parameters(), optim["name"], **optim["kwargs"])
    # torch.compile would compile each probe's fresh model anew, which costs more than the probe itself.
    settings = dataclasses.replace(run.settings, compile=False)
    schedule = Schedule(optimizer, "none", 1, 1, mode="max", warmup_steps=0)  # constant lr
    probe = dataclasses.replace(run, model=model, objective=objective, optimizer=optimizer, schedule=schedule,
                                settings=settings)
    return make_trainer(probe, run_dir, logger=RunLogger(run_dir, enabled=False))


def one_batch(run: Run, size: int, seed: int) -> list[int]:
    """Training rows for a class-diverse batch: round-robin over the classes, at random within each."""
    ds = run.data.splits["train"]
    rng = np.random.default_rng(seed)
    queues = [list(rng.permutation(np.flatnonzero(ds.labels == c))) for c in range(len(run.data.classes))]
    picks: list[int] = []
    while len(picks) < min(size, len(ds)) and any(queues):
        for q in queues:
            if q and len(picks) < size:
                picks.append(int(q.pop()))
    return picks


def overfit_one_batch(run: Run, run_dir: str | Path, cfg: dict[str, Any], seed: int) -> Check:
    """Train a fresh model on one small batch (augmentation off, no smoothing, no weight decay) for up to
    `cfg["steps"]` steps, until its training-mode loss is ~0 and every sample is right.

    Judged on the training-mode loss and accuracy of the steps themselves: a BatchNorm model's eval-mode loss lags
    behind (its running statistics trail the batch's), so it can stay high on a batch the model has memorised.
    `cfg["max_seconds"]` only caps a slow machine: running out of time is a warning ("raise it"), never a fail."""
    if cfg["steps"] <= 0:
        return Check("training", "overfit one batch", "skip", "doctor.overfit.steps=0")
    picks = one_batch(run, cfg["batch_size"], seed)
    raw = run.data.splits["train"].__getitems__(picks)
    trainer = probe_trainer(run, run_dir, seed, lr=cfg["lr"], weight_decay=False, label_smoothing=False)
    batch = model_input(raw, trainer.transform, trainer.device, trainer.settings.channels_last, training=False)
    model = trainer.forward_model
    window = 5  # dropout makes single training-mode steps noisy: judge the last few

    def memorised(losses: list[float], accs: list[float | None]) -> bool:
        if not losses:
            return False
        last, acc = losses[-window:], [a for a in accs[-window:] if a is not None]
        return float(np.mean(last)) < cfg["target_loss"] and all(a == 1.0 for a in acc)

    start = time.perf_counter()
    steps, nonfinite, timed_out = 0, "", False
    losses: list[float] = []
    accs: list[float | None] = []
    model.train()
    for _ in range(cfg["steps"]):
        try:
            out = trainer.train_step(batch)
        except NonFiniteLoss as exc:
            nonfinite = _reason(exc)
            break
        steps += 1
        if out is not None:  # the loss and accuracy of this step, in training mode, before its update
            losses.append(float(out["loss"].detach()))
            accs.append(_batch_score(run, out, batch))
        if memorised(losses, accs):
            break
        if time.perf_counter() - start > cfg["max_seconds"]:
            timed_out = steps < cfg["steps"]
            break
    seconds = time.perf_counter() - start
    first = losses[0] if losses else float("nan")
    loss = float("nan") if nonfinite or not losses else float(np.mean(losses[-window:]))
    acc = None if nonfinite or not accs or accs[-1] is None else float(np.min(accs[-window:]))
    eval_loss = float("nan") if nonfinite else _eval_loss(trainer, model, batch)
    info = {"initial_loss": first, "final_loss": loss, "accuracy": acc, "steps": steps, "batch": len(picks),
            "seconds": seconds, "eval_mode_loss": eval_loss, "timed_out": timed_out}
    score = "WER" if run.data.target == "glosses" else "accuracy"  # sentences: 1 − WER is the score judged
    shown = (1 - acc if score == "WER" else acc) if acc is not None else None
    detail = (f"{len(picks)} samples, {steps} steps ({seconds:.0f} s): training loss {first:.3f} → {loss:.4f}"
              + (f", {score} {shown:.0%}" if shown is not None else "") + (f" ({nonfinite})" if nonfinite else "")
              + (f"; eval-mode loss {eval_loss:.3f}" if math.isfinite(eval_loss) else ""))
    if memorised(losses, accs) and not nonfinite:
        return Check("training", "overfit one batch", "pass", detail, info)
    if timed_out:  # a busy machine is no evidence against the pipeline: say what is known, and how to decide
        return Check("training", "overfit one batch", "warn", detail + f" — ran out of time after {steps} steps "
                     f"(doctor.overfit.max_seconds={cfg['max_seconds']}) before the loss reached ~0; raise it to "
                     f"decide", info)
    if not math.isfinite(loss) or loss > 0.7 * first:
        return Check("training", "overfit one batch", "fail", detail + " — the model cannot even memorise one batch: "
                     "the pipeline or model is broken (inputs all zero/constant after the transform, labels not "
                     "reaching the loss, a frozen or disconnected model, or a learning rate far off: "
                     "doctor.overfit.lr)", info)
    return Check("training", "overfit one batch", "warn", detail + " — the loss fell but did not reach ~0: check the "
                 "model's capacity, dropout and doctor.overfit.lr (or raise doctor.overfit.steps)", info)


def _batch_score(run: Run, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> float | None:
    """The step's share right: the objective's accuracy, or for sentences 1 − the batch's greedy WER (memorised
    means every gloss of every sentence decoded)."""
    if "accuracy" in out:
        return float(out["accuracy"])
    if run.data.target != "glosses":
        return None
    from signlip.data.glosses import greedy_decode
    from signlip.evaluators.wer import sentence_counts, wer_of

    hyps = [" ".join(map(str, h)) for h in greedy_decode(out["outputs"].detach())]
    refs = [" ".join(map(str, row[:n].tolist())) for row, n in zip(batch["y"].cpu(), batch["y_lengths"].cpu())]
    return max(0.0, 1.0 - wer_of(sentence_counts(refs, hyps)))


def _eval_loss(trainer: Trainer, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> float:
    """The batch's loss in eval mode (reported beside the training-mode loss, not judged: see overfit_one_batch)."""
    model.eval()
    try:
        with torch.no_grad(), trainer.autocast():
            return float(trainer.objective(model, batch)["loss"])
    finally:
        model.train()


def _reason(exc: NonFiniteLoss) -> str:
    """The Trainer's message without its advice about checkpoints (a probe keeps none)."""
    return str(exc).split(" — ", 1)[0]


def short_run(trainer: Trainer, cfg: dict[str, Any], seed: int, shuffle_labels: bool) -> dict[str, Any]:
    """Train the trainer's fresh model briefly (task optimizer, augmentation on); val accuracy + the late training
    loss. `shuffle_labels`: the training labels are permuted (the control run)."""
    data, loader = trainer.data, trainer.loaders["train"]
    labels = torch.as_tensor(data.splits["train"].labels)
    relabel = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed + 1))] \
        if shuffle_labels else labels
    relabel = relabel.to(trainer.device)
    start = time.perf_counter()
    updates, losses = 0, []
    trainer.forward_model.train()
    try:
        for epoch in range(cfg["epochs"]):
            for sampler in (loader.sampler, loader.batch_sampler):
                if hasattr(sampler, "set_epoch"):
                    sampler.set_epoch(epoch)
            for raw in loader:
                batch = model_input(raw, trainer.transform, trainer.device, trainer.settings.channels_last,
                                    training=True)
                batch["y"] = relabel[batch["index"]]
                out = trainer.train_step(batch)
                if out is not None:  # None: a non-finite batch that trainer.nan_policy=skip dropped
                    losses.append(float(out["loss"].detach()))
                updates += 1
                if updates >= cfg["max_updates"] or time.perf_counter() - start > cfg["max_seconds"]:
                    break
            else:
                continue
            break
    except NonFiniteLoss as exc:
        raise SignlipError(f"short {'shuffled-label ' if shuffle_labels else ''}run: {_reason(exc)} — lower optim.lr, "
                           f"or fix the inputs the NaN / inf check names") from None
    metrics = run_evaluation(trainer.forward_model, trainer.objective, trainer.evaluator, trainer.loaders["val"],
                             trainer.transform, trainer.device, trainer.amp_dtype, trainer.settings.channels_last)
    pred, y = trainer.evaluator.predictions()
    head = max(1, len(losses) // 5)
    return {"val_accuracy": float(metrics["accuracy"]), "n_val": len(y), "updates": updates,
            "class_matching_bound": class_matching_bound(pred, y, len(data.classes), seed),
            "train_loss_first": float(np.mean(losses[:head])) if losses else float("nan"),
            "train_loss_last": float(np.mean(losses[-head:])) if losses else float("nan"),
            "seconds": time.perf_counter() - start,
            "val_predicted_share": float(np.bincount(pred).max() / max(len(y), 1))}


def class_matching_bound(pred: np.ndarray, y: np.ndarray, n_classes: int, seed: int, q: float = 0.995,
                         draws: int = 4000) -> float:
    """The accuracy a model reaches by luck when its predictions cluster by input class but carry no label
    information: the q-quantile of the accuracy over random matchings of predicted to true class names.

    Samples of one class look alike, so an untrained or shuffled-label model tends to give a whole class one
    prediction; then chance varies per class, not per sample, and the binomial bound (per sample) is far too tight
    (one lucky class adds 1/classes). With fewer than 6 classes matchings are too few to judge; 0 then."""
    if n_classes < 6:
        return 0.0
    cm = np.zeros((n_classes, n_classes))
    np.add.at(cm, (y, pred), 1)
    perms = np.argsort(np.random.default_rng(seed).random((draws, n_classes)), axis=1)
    accs = cm[np.arange(n_classes)[None, :], perms].sum(1) / max(len(y), 1)
    return float(np.quantile(accs, q))


def chance_bound(data) -> tuple[float, float]:
    """Chance on val (the best constant guess: the majority share, at least 1/classes) and the accuracy above which
    a run beats it (chance + 3 binomial standard errors, and at least +0.02)."""
    y = data.splits["val"].labels
    chance = max(1.0 / len(data.classes), float(np.bincount(y).max() / len(y)))
    return chance, chance + max(0.02, 3 * math.sqrt(chance * (1 - chance) / len(y)))


def samples_to_beat(chance: float) -> int:
    """The fewest val samples on which a perfect score beats `chance_bound` (chance + 3 standard errors < 1)."""
    if chance >= 1:
        return 0  # never: one class only
    return math.floor(9 * chance / (1 - chance)) + 1


def learning_checks(run: Run, run_dir: str | Path, cfg: dict[str, Any], seed: int) -> list[Check]:
    """The short real run against chance; with `cfg["shuffle_control"]` also the shuffled-label control.

    Both are "inconclusive" (never a fail) when the val split cannot tell learning from luck: a luck bound of 1
    or more can never be beaten, so not beating it says nothing about the labels."""
    name = "label-shuffle control" if cfg["shuffle_control"] else "short real run beats chance"
    if not callable(getattr(run.evaluator, "predictions", None)):
        return [Check("training", "short run beats chance", "skip", f"the {type(run.evaluator).__name__} gives no "
                      f"class predictions, so chance does not apply")]
    val_labels = np.asarray(run.data.splits["val"].labels)
    present = np.unique(val_labels)
    if len(present) == 1:  # the split's fault, not the labels': any model that names that class scores 100%
        only = run.data.classes[int(present[0])]
        return [Check("training", name, "inconclusive", f"val has only class {only} — the split cannot measure "
                      f"accuracy ({len(val_labels)} samples, any model naming that class scores 100%); put samples "
                      f"of every class in val (the manifest's split column, or drop it to let signlip split)",
                      {"val_classes": [only]})]
    chance, binomial = chance_bound(run.data)
    if binomial >= 1:
        need = samples_to_beat(chance)
        return [Check("training", name, "inconclusive", f"too little data to judge: {len(val_labels)} val samples, "
                      f"chance {chance:.3f}, luck bound {binomial:.3f} — above 1, so no run can beat it; need ≈ "
                      f"{need} val samples for even a perfect score to count (more to judge a partly-trained run)",
                      {"n_val": len(val_labels), "chance": chance, "bound": binomial, "samples_needed": need})]
    real = short_run(probe_trainer(run, run_dir, seed), cfg["short_run"], seed, shuffle_labels=False)
    bound = max(binomial, real["class_matching_bound"])
    beats = real["val_accuracy"] > bound
    head = (f"{real['updates']} updates ({real['seconds']:.0f} s): val accuracy {real['val_accuracy']:.3f} vs chance "
            f"{chance:.3f} (beats it above {bound:.3f}); train loss {real['train_loss_first']:.3f} → "
            f"{real['train_loss_last']:.3f}")
    if bound >= 1:  # by class matching: too few val samples per class
        return [Check("training", name, "inconclusive", head + f" — too little data to judge: the luck bound is 1 "
                      f"on {real['n_val']} val samples; add val samples of every class", real)]
    checks = []
    if not cfg["shuffle_control"]:
        if beats:
            checks.append(Check("training", "short real run beats chance", "pass", head, real))
        else:
            checks.append(Check("training", "short real run beats chance", "warn", head + " — no learning signal "
                                "yet: labels may not belong to their inputs (mis-joined/shuffled manifest) or the "
                                "run is too short; run again with doctor.shuffle_control=true", real))
        return checks
    shuffled = short_run(probe_trainer(run, run_dir, seed), cfg["short_run"], seed, shuffle_labels=True)
    shuffled_bound = max(binomial, shuffled["class_matching_bound"])
    info = {"real": real, "shuffled": shuffled, "chance": chance, "bound": bound, "shuffled_bound": shuffled_bound}
    # Real labels carry structure that generalises across training samples, so their loss falls faster than the
    # loss on shuffled labels (which can only be memorised). Equal losses mean the real labels look shuffled.
    loss_gap = (shuffled["train_loss_last"] - real["train_loss_last"]) / max(shuffled["train_loss_last"], 1e-6)
    info["loss_gap"] = loss_gap
    vs = (f"real: val {real['val_accuracy']:.3f}, train loss {real['train_loss_last']:.3f}; shuffled labels: val "
          f"{shuffled['val_accuracy']:.3f}, train loss {shuffled['train_loss_last']:.3f}; chance {chance:.3f} "
          f"(luck bounds {bound:.3f} / {shuffled_bound:.3f}), {real['updates']} updates each")
    if beats and shuffled["val_accuracy"] <= shuffled_bound:
        checks.append(Check("training", "label-shuffle control", "pass", vs + " — the real labels are learnable and "
                            "the shuffled control stays at chance", info))
    elif not beats:
        why = ("the real run learns no faster than on shuffled labels: the labels do not belong to their inputs "
               "(shuffled or mis-joined manifest, wrong label column, a sort that broke the file↔label pairing)"
               if loss_gap < 0.1 else
               "the real run fits train faster than shuffled labels but does not transfer to val: val differs from "
               "train (new people, another recording setup) or the run is too short (doctor.short_run.*)")
        checks.append(Check("training", "label-shuffle control", "fail", vs + " — " + why, info))
    else:
        checks.append(Check("training", "label-shuffle control", "fail", vs + " — a model trained on shuffled labels "
                            "beats chance on val: labels leak through something other than the inputs (sample "
                            "order, duplicates, class-dependent padding or file properties)", info))
    return checks
