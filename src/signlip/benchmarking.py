"""Measuring helpers shared by the benchmark scripts under scripts/: a task's run composed from conf/, the bare
PyTorch step the Trainer is measured against, and the batches both loops are fed.

A benchmark never copies recipe values: `task_run("lip_cnnlstm")` composes `train.yaml` with `task=lip_cnnlstm`
(plus overrides) exactly as `signlip train` does and builds it with `signlip.build.build_run`, so the model, the
optimizer, the schedule, the objective, the evaluator and the loaders are the recipe's. The bare loop gets a copy of
the same fresh model and an optimizer of the same class and settings (`bare_copy`), and the very batches the
Trainer's loader hands out (`epoch_batches`).
"""

from __future__ import annotations

import copy
import inspect
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from signlip.errors import SignlipError

# Data group option → the overrides that switch its training augmentation off, so that the Trainer and the bare loop
# do the same arithmetic. The one place that names augmentation keys: when a data group renames them, change this
# table (a stale key fails at composition; `check_augmentation_off` catches an override that no longer works).
AUGMENT_OFF: dict[str, tuple[str, ...]] = {
    # null (no augmentation settings at all) rather than zeroed probabilities: it survives renamed keys. Hydra would
    # merge `data.augment={}` into the group's dict, a no-op.
    "landmarks": ("data.augment=null",),
    "holistic": ("data.augment.enabled=false",),
    "clips_lip": ("data.augment=null",),
    "clips_rgb": ("data.augment=null",),
}

# Data group option → overrides for a tiny built-in synthetic set under a scratch folder `{root}` (CPU checks in
# seconds: `bench_gpu.py --quick`). Shapes shrink too; figures measured on it say nothing about the recipe's speed.
TINY_DATA: dict[str, tuple[str, ...]] = {
    "landmarks": ("data.synthetic.root={root}/hands", "data.synthetic.n_people=[4,1,1]",
                  "data.synthetic.per_class_per_person=2"),
    "holistic": ("data.synthetic.root={root}/holistic", "data.synthetic.n_people=[2,1,1]",
                 "data.synthetic.per_class_per_person=1", "data.max_len=64", "data.cache_dir={root}/cache_holistic",
                 "data.manifests_dir={root}/manifests"),
    "clips_lip": ("data.synthetic.root={root}/lip", "data.synthetic.n_people=[4,1,1]",
                  "data.synthetic.per_class_per_person=2", "data.synthetic.n_frames=12",
                  "data.synthetic.frame_size=[32,48]", "data.prepare.n_frames=8", "data.prepare.size=[32,48]",
                  "data.cache_dir={root}/cache_lip", "data.manifests_dir={root}/manifests"),
    "clips_rgb": ("data.synthetic.root={root}/rgb", "data.synthetic.n_classes=3", "data.synthetic.n_people=[2,1,1]",
                  "data.synthetic.per_class_per_person=2", "data.synthetic.n_frames=8",
                  "data.synthetic.frame_size=[32,32]", "data.prepare.n_frames=4", "data.prepare.size=[32,32]",
                  "data.cache_dir={root}/cache_rgb", "data.manifests_dir={root}/manifests", "data.workers=1"),
    # Signed sentences (continuous recognition): keyed by data group / synthetic set.
    "holistic/sentences": ("data.synthetic.root={root}/sentences", "data.synthetic.n_people=[2,1,1]",
                           "data.synthetic.sentences_per_person=3", "data.synthetic.n_signs=4",
                           "data.synthetic.signs_per_sentence=[2,3]", "data.cache_dir={root}/cache_sentences",
                           "data.manifests_dir={root}/manifests"),
    "clips_lip/lip_sentences": ("data.synthetic.root={root}/lip_sentences", "data.synthetic.n_people=[2,1,1]",
                                "data.synthetic.sentences_per_person=3", "data.synthetic.frame_size=[32,48]",
                                "data.synthetic.frames_per_word=12", "data.cache_dir={root}/cache_lip_sentences",
                                "data.manifests_dir={root}/manifests"),
    "clips_rgb/rgb_sentences": ("data.synthetic.root={root}/rgb_sentences", "data.synthetic.n_people=[2,1,1]",
                                "data.synthetic.sentences_per_person=3", "data.synthetic.frame_size=[32,32]",
                                "data.prepare.size=[32,32]", "data.cache_dir={root}/cache_rgb_sentences",
                                "data.manifests_dir={root}/manifests", "data.workers=1"),
}


# --- a task's run, composed from conf/ ---------------------------------------------------------------------------
def compose_task(task: str, overrides: Sequence[str] = (), config_name: str = "train"
                 ) -> tuple[dict[str, Any], Any, dict[str, str]]:
    """(plain resolved config, TrainerSettings, group choices such as {"data": "clips_lip"}) of `config_name` with
    `task=<task>` and `overrides` — what `signlip train task=<task> <overrides>` composes."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf, open_dict

    from signlip.cli import conf_dir
    from signlip.config import register_schemas

    register_schemas()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=[f"task={task}", *overrides], return_hydra_config=True)
    choices = {k: v for k, v in OmegaConf.to_container(cfg.hydra.runtime.choices).items() if v is not None}
    with open_dict(cfg):
        del cfg["hydra"]  # the run folder interpolations (${now:...}) mean nothing outside a Hydra app
    return OmegaConf.to_container(cfg, resolve=True), OmegaConf.to_object(cfg.trainer), choices


def augment_off_overrides(data_group: str) -> tuple[str, ...]:
    if data_group not in AUGMENT_OFF:
        raise SignlipError(f"no augmentation-off overrides for data group {data_group!r} — add it to "
                           f"signlip.benchmarking.AUGMENT_OFF (known: {', '.join(AUGMENT_OFF)})")
    return AUGMENT_OFF[data_group]


def tiny_data_overrides(task: str, root: str | Path, config_name: str = "train") -> list[str]:
    """The TINY_DATA overrides of the task's data group (or of its group / synthetic set), under `root`."""
    choices = compose_task(task, config_name=config_name)[2]
    group = f"{choices['data']}/{choices.get('data/synthetic')}"
    group = group if group in TINY_DATA else choices["data"]
    if group not in TINY_DATA:
        raise SignlipError(f"no tiny-data overrides for data group {group!r} — add it to "
                           f"signlip.benchmarking.TINY_DATA")
    return [o.format(root=root) for o in TINY_DATA[group]]


def task_run(task: str, overrides: Sequence[str] = (), device: str | None = "cpu", augment: bool = True,
             config_name: str = "train", objective: Callable[[Any, torch.nn.Module], Any] | None = None,
             seed: int | None = None) -> tuple[dict[str, Any], Any, Any]:
    """(config, TrainerSettings, `signlip.build.Run`) of a task's recipe, built as `signlip train` builds it.

    `device`: "cpu", "cuda", … (None: the config's trainer.device). `augment=False` adds the data group's
    AUGMENT_OFF overrides and checks that training batches then equal evaluation batches. `objective`: a factory
    `(data, model) -> objective`, as in `build_run` (distillation). The global RNGs are seeded from the config's seed
    (or `seed`) first, so two calls with the same arguments build identical models."""
    from signlip.build import build_run, seed_everything

    # A benchmark measures the recipe's own batch, also on the tiny sets of TINY_DATA, where `signlip train` would
    # cap it for a small split (trainer.small_data); a caller's override comes later and wins.
    overrides = ["trainer.small_data.enabled=false", *overrides]
    if device is not None:
        overrides.append(f"trainer.device={device}")
    if seed is not None:
        overrides.append(f"seed={seed}")
    config, settings, choices = compose_task(task, overrides, config_name)
    if not augment:
        config, settings, choices = compose_task(task, [*overrides, *augment_off_overrides(choices["data"])],
                                                 config_name)
    seed_everything(int(config.get("seed", 0)))
    run = build_run(config, settings, objective=objective)
    if not augment:
        check_augmentation_off(run, choices["data"])
    return config, settings, run


def check_augmentation_off(run: Any, data_group: str = "") -> None:
    """Raise when the data's batch transform still changes training batches (an AUGMENT_OFF entry gone stale)."""
    train = run.data.splits["train"]
    batch = train.__getitems__(list(range(min(4, len(train)))))
    transform = run.data.batch_transform
    state = torch.get_rng_state()
    try:
        a, b = transform(dict(batch), training=True), transform(dict(batch), training=False)
    finally:
        torch.set_rng_state(state)  # the check must not shift the run's random stream
    same = a.keys() == b.keys() and all(not torch.is_tensor(a[k]) or (a[k].shape == b[k].shape and torch.equal(
        torch.nan_to_num(a[k]) if a[k].is_floating_point() else a[k],
        torch.nan_to_num(b[k]) if b[k].is_floating_point() else b[k])) for k in a)
    if not same:
        overrides = " ".join(AUGMENT_OFF.get(data_group, ()))
        raise SignlipError(f"training batches of data group {data_group or '?'} still differ from evaluation batches "
                           f"with {overrides} — update signlip.benchmarking.AUGMENT_OFF to the group's current "
                           f"augmentation keys")


# --- the bare loop -----------------------------------------------------------------------------------------------
def bare_copy(run: Any) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """A copy of the run's model (take it before training) and an optimizer of the same class with the same
    parameter groups and settings, for the bare loop. The recipe's base learning rate is used (`initial_lr` where a
    schedule or warmup already scaled it): the bare loop has no schedule."""
    model = copy.deepcopy(run.model)
    position = {id(p): i for i, p in enumerate(run.model.parameters())}
    params = list(model.parameters())
    groups = []
    for group in run.optimizer.param_groups:
        settings = {k: v for k, v in group.items() if k not in ("params", "initial_lr")}
        settings["lr"] = group.get("initial_lr", group["lr"])
        groups.append({**settings, "params": [params[position[id(p)]] for p in group["params"]]})
    # Each group carries every setting; the constructor's own keywords are passed only where it takes them (AdamW's
    # defaults hold keys such as decoupled_weight_decay that its __init__ does not accept).
    accepted = inspect.signature(type(run.optimizer).__init__).parameters
    defaults = {k: v for k, v in run.optimizer.defaults.items() if k in accepted}
    return model, type(run.optimizer)(groups, **defaults)


def bare_settings(run: Any) -> dict[str, Any]:
    """The recipe values the bare step needs: the objective's label smoothing and the trainer's clipping norm."""
    return {"label_smoothing": float(getattr(run.objective, "label_smoothing", 0.0)),
            "clip": float(run.settings.grad_clip_norm)}


def bare_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
              mask: torch.Tensor | None = None, label_smoothing: float = 0.0, clip: float = 1.0,
              amp_dtype: torch.dtype | None = None, scaler: torch.amp.GradScaler | None = None) -> None:
    """The minimal training step the Trainer is measured against: forward (autocast to `amp_dtype` if given), loss,
    backward (through `scaler` for float16), clip (`clip` ≤ 0: off), optimizer step."""
    with torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        loss = F.cross_entropy(model(x, mask).float(), y, label_smoothing=label_smoothing)
    opt.zero_grad(set_to_none=True)
    if scaler is not None and scaler.is_enabled():
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        scaler.step(opt)
        scaler.update()
        return
    loss.backward()
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()


def synchronize(device: torch.device | str) -> None:
    """Wait for queued GPU work, so a timer reads finished work (a no-op on CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def bare_epoch(model: torch.nn.Module, opt: torch.optim.Optimizer, batches: Sequence[dict[str, torch.Tensor]],
               label_smoothing: float = 0.0, clip: float = 1.0, amp_dtype: torch.dtype | None = None,
               scaler: torch.amp.GradScaler | None = None) -> float:
    """Samples/s of `bare_step` over in-memory batches (already on the model's device, already transformed)."""
    model.train()
    device = batches[0]["x"].device
    n = sum(int(b["y"].shape[0]) for b in batches)
    synchronize(device)
    t0 = time.perf_counter()
    for b in batches:
        bare_step(model, opt, b["x"], b["y"], b.get("mask"), label_smoothing, clip, amp_dtype, scaler)
    synchronize(device)
    return n / (time.perf_counter() - t0)


def epoch_batches(run: Any, epoch: int = 0, limit: int | None = None, device: torch.device | str = "cpu",
                  channels_last: bool = False) -> list[dict[str, torch.Tensor]]:
    """The batches the run's train loader hands out in `epoch` (the Trainer's order for that epoch), the first
    `limit` of them, moved to `device` and through the data's batch transform (evaluation mode: with augmentation
    off that is what training sees), in the model's memory layout — what the bare loop trains on."""
    from signlip.trainer import model_input

    loader = run.loaders["train"]
    for sampler in (loader.sampler, loader.batch_sampler):
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
    transform = run.data.batch_transform.to(device)
    out = []
    with torch.no_grad():
        for i, batch in enumerate(loader):
            if limit is not None and i >= limit:
                break
            out.append(model_input(batch, transform, torch.device(device), channels_last, training=False))
    return out


def ratio_of_medians(a: Sequence[float], b: Sequence[float]) -> float:
    return statistics.median(a) / statistics.median(b)


def latency_ms(model: torch.nn.Module, x: torch.Tensor, runs: int = 100, warmup: int = 10) -> float:
    """Median wall time of one eval-mode forward pass, in milliseconds."""
    model.eval()
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        for _ in range(runs):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)
