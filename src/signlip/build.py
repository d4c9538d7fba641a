"""The one builder: a resolved config → a run; a checkpoint → model + preprocessing + data contract.

Every command and benchmark assembles through here, so a recipe means the same thing everywhere:

    run = build_run(config, settings)                # data, model, objective, evaluator, optimizer, schedule, loaders
    trainer = make_trainer(run, run_dir, logger)     # the one Trainer over them
    back = rebuild("best.pt", splits=("test",))      # model + data (with the checkpoint's preprocessing) + evaluator

`config` is the plain dict of a composed Hydra config (`OmegaConf.to_container(cfg, resolve=True)`); Hydra itself
never reaches this module. Specs are `{"name": ..., "kwargs": {...}}` dicts of plain data — the form they take in
every checkpoint.
"""

from __future__ import annotations

import inspect
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from signlip.config import TrainerSettings, check_config
from signlip.data.base import SPLITS, DataBundle
from signlip.errors import SignlipError
from signlip.registry import DATASETS, EVALUATORS, MODELS, OBJECTIVES, Registry, load_all

# Keys of the `data` group that configure the DataLoaders, not the data module.
LOADER_KEYS = ("batch_size", "eval_batch_size", "num_workers", "stratified", "pin_memory")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def spec(group: dict[str, Any]) -> dict[str, Any]:
    """A config group `{name, **kwargs}` → the spec `{"name", "kwargs"}`."""
    kwargs = dict(group)
    return {"name": kwargs.pop("name"), "kwargs": kwargs}


def instantiate(registry: Registry, entry: dict[str, Any], *args: Any, hint: str = "") -> Any:
    """Build a registered entry from its spec; a constructor rejecting its settings is a bad setting, not a crash."""
    load_all()
    factory = registry.get(entry["name"])
    try:
        return factory(*args, **entry["kwargs"])
    except SignlipError:
        raise
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        reason = (str(exc).strip().splitlines() or [""])[0]
        raise SignlipError(f"{registry.kind} {entry['name']} rejected its settings ({type(exc).__name__}: {reason}) — "
                           f"fix the {hint or registry.kind + '.*'} overrides (`signlip train --cfg job` shows them)") \
            from exc


# --- the parts ---------------------------------------------------------------------------------------------------
def data_settings(data_config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(data module spec, DataLoader kwargs) from the `data` config group."""
    cfg = dict(data_config)
    loader = {k: cfg.pop(k) for k in LOADER_KEYS if k in cfg}
    return spec(cfg), loader


def build_data(config: dict[str, Any], seed: int | None = None, preprocessing: dict[str, Any] | None = None,
               splits: tuple[str, ...] = SPLITS, manifest: str | None = None) -> DataBundle:
    """The data module of `config["data"]`; with `preprocessing` (a checkpoint's) its classes and statistics are
    reused and data prepared differently is refused. `manifest` replaces the configured data."""
    entry, _ = data_settings(config["data"])
    if manifest is not None:
        entry["kwargs"]["manifest"] = manifest
    entry["kwargs"].update(seed=int(config.get("seed", 0)) if seed is None else seed, splits=tuple(splits))
    if preprocessing is not None:
        entry["kwargs"]["preprocessing"] = preprocessing
    from signlip import distributed as dist

    with dist.main_process_first():  # under torchrun rank 0 prepares; the others then read what it wrote
        return instantiate(DATASETS, entry, hint="data.*")


def model_spec(config: dict[str, Any], data: DataBundle) -> dict[str, Any]:
    entry = spec(config["model"])
    load_all()
    accepted = inspect.signature(MODELS.get(entry["name"])).parameters
    if "word_boundary" in data.model_kwargs and "word_boundary" not in accepted:
        readers = ", ".join(n for n in MODELS.names() if "word_boundary" in inspect.signature(MODELS.get(n)).parameters)
        raise SignlipError(f"model {entry['name']} does not read word boundaries (data.word_boundary=true) — use "
                           f"{readers}, or set data.word_boundary=false")
    entry["kwargs"].update(data.model_kwargs)  # facts about the data (input size, output size) win over config
    return entry


def objective_spec(config: dict[str, Any], data: DataBundle) -> dict[str, Any]:
    """The objective's spec with data-dependent settings resolved to plain values (stored in checkpoints)."""
    entry = spec(config["objective"])
    load_all()
    resolve = getattr(OBJECTIVES.get(entry["name"]), "resolve_kwargs", None)
    if resolve is not None:
        entry["kwargs"] = resolve(data, entry["kwargs"])
    return entry


def model_from_checkpoint(ckpt: dict[str, Any]) -> torch.nn.Module:
    """The checkpoint's model with its weights (eval mode is the caller's choice)."""
    kwargs = dict(ckpt["model"].get("kwargs") or {})
    # The weights are the checkpoint's own: the pretrained ones it started from need not be on this machine.
    kwargs.pop("pretrained", None)
    model = instantiate(MODELS, {"name": ckpt["model"]["name"], "kwargs": kwargs})
    model.load_state_dict(ckpt["model_state"])
    return model


def reader_from_checkpoint(ckpt: dict[str, Any], models_dir: str | None = None) -> Any:
    """The reader of new inputs prepared as the checkpoint's data was (`signlip.data.base.SampleReader`);
    `models_dir` replaces the training config's folder of MediaPipe models."""
    from signlip.registry import READERS

    load_all()
    prep = ckpt["preprocessing"]
    return READERS.get(prep["kind"])(prep, ckpt["config"]["data"], models_dir=models_dir)


SEQUENCE_OBJECTIVES = ("ctc", "sequence_distill")  # objectives of gloss sentences (DataBundle.target "glosses")


def check_targets_fit(data: DataBundle, model: torch.nn.Module, objective: str, evaluator: str) -> None:
    """Sentences (a glosses column) need a sequence objective, the WER evaluator and a model with per-frame outputs;
    classes need the others — one line naming the mismatch, not a shape error deep in the first step."""
    sentences = data.target == "glosses"
    if sentences and objective not in SEQUENCE_OBJECTIVES:
        raise SignlipError(f"the data holds gloss sentences (a glosses column) but objective={objective} scores one "
                           f"class per sample — train them with task=cslr_landmarks (objective=ctc evaluator=wer)")
    if not sentences and objective in SEQUENCE_OBJECTIVES:
        raise SignlipError(f"objective={objective} needs gloss sentences (a manifest with a glosses column), but the "
                           f"data has one label per sample — use objective=classify evaluator=classification")
    if sentences != (evaluator == "wer"):
        want = "evaluator=wer" if sentences else "evaluator=classification"
        raise SignlipError(f"evaluator={evaluator} does not score this data's targets ({data.target}) — use {want}")
    if sentences and getattr(model, "output", "sequence") != "sequence":
        raise SignlipError(f"objective={objective} needs per-frame outputs but the model gives one per sample — set "
                           f"model.output=sequence (e.g. model=landmark_gru_ctc)")


def mode_for(monitor: str, evaluator: Any) -> str:
    """The direction of a metric: the evaluator's for its own monitor, min for a *loss, else max."""
    if monitor == f"val/{evaluator.monitor}":
        return evaluator.mode
    return "min" if monitor.endswith("loss") else "max"


def resolve_monitor(settings: TrainerSettings, evaluator: Any) -> None:
    """Fill `trainer.monitor` / `trainer.mode` from the evaluator when the config leaves them null."""
    if settings.monitor is None:
        settings.monitor = f"val/{evaluator.monitor}"
    if settings.mode is None:
        settings.mode = mode_for(settings.monitor, evaluator)


# --- a training run ----------------------------------------------------------------------------------------------
@dataclass
class Run:
    """Everything `signlip train` trains, built from one config."""

    config: dict[str, Any]
    settings: TrainerSettings
    task: str
    seed: int
    data: DataBundle
    model: torch.nn.Module
    objective: Any
    evaluator: Any
    optimizer: torch.optim.Optimizer
    schedule: Any
    loaders: dict[str, Any]
    contract: dict[str, Any]  # what every checkpoint of this run carries besides the training state
    adapted: str | None = None  # what a small train split changed (`adapt_to_small_data`), as printed

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def build_run(config: dict[str, Any], settings: TrainerSettings, device: torch.device | None = None,
              objective: Any = None, report=print) -> Run:
    """Data, model, objective, evaluator, optimizer, schedule and loaders from a resolved config.

    `objective`: None → built from `config["objective"]`; or a factory `(data, model) -> objective` called once both
    are built (distillation: load the teacher and check it against the data). The checkpoint contract records the
    configured objective either way — what the model is scored and rebuilt with. `report` prints choices made on
    the way (the batch size finder's)."""
    from signlip.data.loaders import make_loaders
    from signlip.optim import Schedule, build_optimizer
    from signlip.trainer import autocast_dtype, select_device

    device = device or select_device(settings.device)
    check_config(config, settings, device)
    seed = int(config.get("seed", 0))
    data = build_data(config, seed)
    model_entry = model_spec(config, data)
    model = instantiate(MODELS, model_entry, hint="model.*")
    objective_entry = objective_spec(config, data)
    objective = instantiate(OBJECTIVES, objective_entry, hint="objective.*") if objective is None \
        else objective(data, model)
    check_targets_fit(data, model, objective_entry["name"], config["evaluator"]["name"])
    evaluator_entry = spec(config["evaluator"])
    evaluator = instantiate(EVALUATORS, evaluator_entry, data, hint="evaluator.*")
    resolve_monitor(settings, evaluator)
    _, loader_kwargs = data_settings(config["data"])
    if loader_kwargs.get("batch_size") == "auto":
        from signlip.batch_size import auto_batch_size

        loader_kwargs["batch_size"] = auto_batch_size(model, objective, data, device,
                                                      autocast_dtype(settings.precision), report=report)
    configured_batch = loader_kwargs.get("batch_size", 1)
    loader_kwargs["batch_size"] = small_data_batch(len(data.splits["train"]), configured_batch, settings)
    loaders = make_loaders(data, seed=seed, pin_memory=device.type == "cuda", **loader_kwargs)
    optim_entry = spec(config["optim"])
    optimizer = instantiate_with(build_optimizer, "optim.*", model.parameters(), optim_entry["name"],
                                 **optim_entry["kwargs"])
    sched_entry = spec(config["sched"])
    sched_monitor = sched_entry["kwargs"].pop("monitor", None)  # plateau may step on its own metric (e.g. val/loss)
    steps_per_epoch = -(-min(len(loaders["train"]), settings.limit_train_batches or 10**12)
                        // settings.grad_accum_steps)
    hold = settings.small_data.min_updates if settings.small_data.enabled else 0
    schedule = instantiate_with(Schedule, "sched.*", optimizer, sched_entry["name"], steps_per_epoch,
                                settings.max_epochs, mode=mode_for(sched_monitor, evaluator) if sched_monitor
                                else settings.mode, monitor=sched_monitor, hold_updates=hold, **sched_entry["kwargs"])
    adapted = small_data_note(len(data.splits["train"]), configured_batch, loader_kwargs["batch_size"],
                              steps_per_epoch, settings, sched_entry)  # the caller prints it (after its header)
    task = config.get("task_name", "custom")
    contract = {"task": task, "model": model_entry, "objective": objective_entry, "evaluator": evaluator_entry,
                "classes": list(data.classes), "preprocessing": data.preprocessing, "config": config}
    return Run(config, settings, task, seed, data, model, objective, evaluator, optimizer, schedule, loaders,
               contract, adapted)


# --- small train splits ------------------------------------------------------------------------------------------
def small_data_batch(n_train: int, batch_size: int, settings: TrainerSettings) -> int:
    """The train batch for a split of `n_train` samples: the configured one, unless an epoch would then make fewer
    than `trainer.small_data.min_updates_per_epoch` updates — then the batch that makes that many, never below
    `min_batch_size` (tiny batches make BatchNorm statistics and gradients noisy) nor above the configured one.

    Normal-size data keeps the recipe's batch (a recipe's 32 needs ≥ 256 train samples per rank to be kept)."""
    from signlip import distributed as dist

    small = settings.small_data
    per_rank = math.ceil(n_train / dist.world_size())
    accum = settings.grad_accum_steps
    updates = math.ceil(math.ceil(per_rank / batch_size) / accum)
    if not small.enabled or updates >= small.min_updates_per_epoch:
        return batch_size
    return min(batch_size, max(small.min_batch_size, per_rank // (small.min_updates_per_epoch * accum)))


def small_data_note(n_train: int, configured: int, batch: int, per_epoch: int, settings: TrainerSettings,
                    sched: dict[str, Any]) -> str | None:
    """One line saying what a small train split changed, or None when nothing was."""
    small = settings.small_data
    if not small.enabled:
        return None
    parts = [f"batch {configured} → {batch} so an epoch makes {per_epoch} update{'s' * (per_epoch != 1)}"] \
        if batch != configured else []
    # The hold changes something only where patience, counted in epochs, could act before min_updates.
    waiting = []
    if settings.early_stopping.enabled and (settings.early_stopping.patience + 1) * per_epoch < small.min_updates:
        waiting.append("early stopping")
    if sched["name"] == "plateau" and (int(sched["kwargs"].get("patience", 0)) + 1) * per_epoch < small.min_updates:
        waiting.append("the plateau schedule")
    if waiting:
        epochs = -(-small.min_updates // max(per_epoch, 1))
        parts.append(f"{' and '.join(waiting)} wait{'s' * (len(waiting) == 1)} ≥ {small.min_updates} updates "
                     f"({epochs} epochs)")
    if not parts:
        return None
    return (f"train split has {n_train} samples: {'; '.join(parts)} — trainer.small_data.enabled=false keeps the "
            f"configured values")


def instantiate_with(factory, hint: str, *args: Any, **kwargs: Any) -> Any:
    """`factory(*args, **kwargs)` for parts built by function rather than registry (optimizer, schedule)."""
    try:
        return factory(*args, **kwargs)
    except SignlipError:
        raise
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        reason = (str(exc).strip().splitlines() or [""])[0]
        raise SignlipError(f"{hint[:-2]} rejected its settings ({type(exc).__name__}: {reason}) — fix the {hint} "
                           f"overrides (`signlip train --cfg job` shows them)") from exc


def make_trainer(run: Run, run_dir: str | Path, logger=None):
    """The Trainer over a built run."""
    from signlip.trainer import Trainer

    return Trainer(run.model, run.objective, run.evaluator, run.optimizer, run.schedule, run.data, run.loaders,
                   run.settings, run_dir, run.contract, logger, run.seed)


# --- back from a checkpoint --------------------------------------------------------------------------------------
@dataclass
class Rebuilt:
    """A checkpoint's model, its data (only the asked splits, with the checkpoint's preprocessing), objective and
    evaluator — what evaluate, predict, export and benchmark start from."""

    checkpoint: dict[str, Any]
    model: torch.nn.Module
    data: DataBundle
    objective: Any
    evaluator: Any

    def loader(self, split: str, batch_size: int | None = None):
        """A sequential DataLoader over one split, batched as the run evaluated."""
        from signlip.data.loaders import make_loaders

        _, loader_kwargs = data_settings(self.checkpoint["config"]["data"])
        bs = batch_size or loader_kwargs.get("eval_batch_size") or loader_kwargs.get("batch_size")
        bs = bs if isinstance(bs, int) else 32  # batch_size=auto
        return make_loaders(self.data, batch_size=bs, eval_batch_size=bs,
                            num_workers=loader_kwargs.get("num_workers", 0))[split]


def rebuild(checkpoint: str | Path | dict[str, Any], splits: tuple[str, ...] = ("test",),
            manifest: str | None = None, evaluator: dict[str, Any] | None = None) -> Rebuilt:
    """Model + data + objective + evaluator from a checkpoint alone. The data is the checkpoint's own (its
    manifest, if still on disk) unless `manifest` points elsewhere; either way it is preprocessed exactly as the
    checkpoint was trained, and refused if it was prepared differently. `evaluator`: settings replacing the stored
    evaluator's (a CTC checkpoint scored with beam search)."""
    from signlip.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint) if not isinstance(checkpoint, dict) else checkpoint
    config, prep = ckpt["config"], ckpt["preprocessing"]
    if manifest is None:
        if prep.get("manifest") and Path(prep["manifest"]).is_file():
            manifest = prep["manifest"]
        elif config["data"].get("manifest") is not None:
            raise SignlipError(f"the data this checkpoint was trained on ({prep.get('manifest')}) is not here — pass "
                               f"data.manifest=<manifest with a {'/'.join(splits)} split>")
    data = build_data(config, preprocessing=prep, splits=splits, manifest=manifest)
    model = model_from_checkpoint(ckpt)
    objective = instantiate(OBJECTIVES, ckpt["objective"])
    entry = {**ckpt["evaluator"], "kwargs": {**ckpt["evaluator"]["kwargs"], **(evaluator or {})}}
    return Rebuilt(ckpt, model, data, objective, instantiate(EVALUATORS, entry, data, hint="evaluator.*"))
