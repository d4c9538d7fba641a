"""GPU benchmark: for every task, the Trainer's training throughput vs a bare PyTorch loop on the same model and
the same batches, across precision, memory layout and torch.compile; and the DataLoader's delivery rate vs the
model's consumption rate.

    python scripts/bench_gpu.py [--tasks landmark_gru,lip_cnnlstm] [--device cuda] [--batches 50] [--repeats 3]
                                [--json bench_gpu.json] [--full-grid] [--override data.batch_size=64 ...]
    python scripts/bench_gpu.py --quick --device cpu --tasks landmark_gru      (tiny synthetic data: a CPU check)

Each task's recipe is composed from conf/ (`signlip.benchmarking.task_run`, as `signlip train task=<task>` does),
augmentation off (`signlip.benchmarking.AUGMENT_OFF`) so both loops do the same arithmetic. Per setting a fresh run
is built; the bare loop trains a copy of the same fresh model with an optimizer of the same class and settings.

Training rows: samples/s of `Trainer.train_one_epoch` over the first `--batches` full batches of its epoch order
(loader, host→device copy, batch transform, objective, autocast, GradScaler, clipping, optimizer, schedule, per-step
finiteness check) vs `signlip.benchmarking.bare_step` over those very batches, already transformed and on the device
(forward, loss, backward, clip, step). Both are timed with the device synchronised at either end. Settings: precision
32 / bf16 / 16 (float16 + GradScaler; CUDA only) in the recipe's layout, eager; then at `--base-precision` the other
memory layout (conv models only) and torch.compile (a failure is recorded, not raised). `--full-grid` measures every
combination instead. Every setting gets one warm-up pass of both loops (compilation, cuDNN autotuning, allocator),
then `--repeats` timed passes that alternate which loop goes first so that noise hits both alike; the ratio of
medians is reported.

DataLoader rows: batches/s of the recipe's train loader alone (the task's augmentation as configured, no model) with
num_workers 0 / 2 and pin_memory off / on (on: CUDA only), against the model's consumption rate — bare training
steps/s on in-memory batches at the base precision, eager. A ratio above 1 means the loader keeps up.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from signlip.benchmarking import (
    bare_copy,
    bare_epoch,
    bare_settings,
    compose_task,
    epoch_batches,
    synchronize,
    task_run,
    tiny_data_overrides,
)

PRECISIONS = ("32", "bf16", "16")


def all_tasks() -> list[str]:
    from signlip.cli import conf_dir

    return sorted(p.stem for p in (conf_dir() / "task").glob("*.yaml"))


def reason(exc: BaseException, limit: int = 240) -> str:
    """`Type: first non-empty line` of an exception, short enough for a table cell."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0] if lines else ''}"
    return text if len(text) <= limit else text[:limit - 1] + "…"


def has_conv(model: torch.nn.Module) -> bool:
    """Conv weights are the 4D/5D parameters: the ones a channels-last layout changes."""
    return any(p.ndim in (4, 5) for p in model.parameters())


def settings_grid(conv: bool, recipe_layout: bool, base: str, full: bool,
                  precisions: tuple[str, ...] = PRECISIONS) -> list[dict[str, Any]]:
    """The (precision, channels_last, compile) settings to measure: one axis at a time around the recipe's layout
    (precision rows eager; layout and compile rows at `base` precision), or every combination with `full`."""
    layouts = (False, True) if conv else (recipe_layout,)
    if full:
        return [{"precision": p, "channels_last": cl, "compile": c}
                for p, cl, c in itertools.product(precisions, layouts, (False, True))]
    rows = [{"precision": p, "channels_last": recipe_layout, "compile": False} for p in precisions]
    if conv:
        rows.append({"precision": base, "channels_last": not recipe_layout, "compile": False})
    rows.append({"precision": base, "channels_last": recipe_layout, "compile": True})
    return rows


def unsupported(precision: str, device: torch.device) -> str | None:
    if precision == "16" and device.type != "cuda":
        return "skipped: needs CUDA"
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "skipped: this GPU has no bfloat16"
    return None


def timed_trainer_epoch(trainer, device: torch.device) -> float:
    """Seconds of one `Trainer.train_one_epoch`, the device synchronised at either end (its own samples/s figure
    stops the clock before the last step's queued GPU work is done)."""
    synchronize(device)
    t0 = time.perf_counter()
    trainer.train_one_epoch()
    synchronize(device)
    return time.perf_counter() - t0


def measure_setting(task: str, overrides: list[str], device: torch.device, setting: dict[str, Any], n_batches: int,
                    repeats: int, workdir: Path) -> dict[str, Any]:
    """One training row: Trainer vs bare samples/s at one (precision, channels_last, compile) setting."""
    row: dict[str, Any] = dict(setting)
    skip = unsupported(setting["precision"], device)
    if skip:
        row["skipped"] = skip
        return row
    if setting["compile"] and "torch._dynamo" in sys.modules:
        # Each setting compiles afresh: earlier models must not use up the recompile budget. (Nothing compiled yet
        # when dynamo is not even imported: no reset, and no import of it just for that.)
        torch._dynamo.reset()
    try:
        row.update(training_rates(task, overrides, device, setting, n_batches, repeats, workdir))
    except Exception as exc:  # one setting failing (a compiler, memory) must not lose the other figures
        row["error"] = ("compile failed: " if setting["compile"] else "failed: ") + reason(exc)
    gc.collect()  # the setting's models, optimizers and batches are garbage now
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def training_rates(task: str, overrides: list[str], device: torch.device, setting: dict[str, Any], n_batches: int,
                   repeats: int, workdir: Path) -> dict[str, Any]:
    from signlip.build import make_trainer
    from signlip.run_logger import RunLogger
    from signlip.trainer import autocast_dtype, to_channels_last

    config, settings, run = task_run(task, [*overrides, f"trainer.precision={setting['precision']}",
                                            f"trainer.channels_last={str(setting['channels_last']).lower()}",
                                            f"trainer.compile={str(setting['compile']).lower()}",
                                            f"trainer.limit_train_batches={n_batches}"],
                                     device=str(device), augment=False)
    bare_model, bare_opt = bare_copy(run)  # before training: the same fresh weights
    run_dir = Path(tempfile.mkdtemp(dir=workdir))
    log = config["logger"]
    trainer = make_trainer(run, run_dir, RunLogger(run_dir, enabled=True, tensorboard=log["tensorboard"],
                                                   progress=log["progress"]))
    bare_model.to(device)
    if settings.channels_last:
        to_channels_last(bare_model)  # as the Trainer converts its model
    forward = torch.compile(bare_model) if settings.compile else bare_model
    batches = epoch_batches(run, 0, n_batches, device, settings.channels_last)  # the Trainer's epoch-0 batches
    samples = sum(int(b["y"].shape[0]) for b in batches)
    step = {**bare_settings(run), "amp_dtype": autocast_dtype(settings.precision),
            "scaler": torch.amp.GradScaler(device.type, enabled=settings.precision == "16")}

    def trainer_rate() -> float:
        trainer.epoch = 0  # epoch 0's order every time: the same batches the bare loop trains on
        return samples / timed_trainer_epoch(trainer, device)

    def bare_rate() -> float:
        return bare_epoch(forward, bare_opt, batches, **step)

    try:
        trainer_rate(), bare_rate()  # warm-up both
        rates: dict[str, list[float]] = {"trainer": [], "bare": []}
        for r in range(repeats):
            order = (("trainer", trainer_rate), ("bare", bare_rate))
            for name, measure in order if r % 2 == 0 else order[::-1]:
                rates[name].append(measure())
    finally:
        trainer.logger.close()
    t, b = statistics.median(rates["trainer"]), statistics.median(rates["bare"])
    return {"trainer_samples_per_s": rates["trainer"], "bare_samples_per_s": rates["bare"], "trainer": t,
            "bare": b, "ratio": t / b, "samples": samples}


def loader_rate(loader, n_batches: int) -> float:
    """Batches/s the loader delivers, cycling epochs; the clock starts after the first batch (worker start-up)."""
    def batches():
        epoch = 0
        while True:
            for sampler in (loader.sampler, loader.batch_sampler):
                if hasattr(sampler, "set_epoch"):
                    sampler.set_epoch(epoch)
            yield from loader
            epoch += 1

    stream = batches()
    next(stream)
    t0 = time.perf_counter()
    for _ in range(n_batches):
        next(stream)
    return n_batches / (time.perf_counter() - t0)


def measure_loaders(run, device: torch.device, n_batches: int, consumption: float | None) -> list[dict[str, Any]]:
    """DataLoader rows: the recipe's train loader at num_workers 0/2 × pin_memory off/on, batches/s."""
    from signlip.build import data_settings
    from signlip.data.loaders import make_loaders

    _, loader_kwargs = data_settings(run.config["data"])
    rows = []
    for workers, pin in itertools.product((0, 2), (False, True)):
        row: dict[str, Any] = {"num_workers": workers, "pin_memory": pin}
        if pin and device.type != "cuda":
            row["skipped"] = "skipped: needs CUDA"
            rows.append(row)
            continue
        try:
            loader = make_loaders(run.data, batch_size=run.loaders["train"].batch_size, num_workers=workers,
                                  seed=run.seed, stratified=bool(loader_kwargs.get("stratified", False)),
                                  pin_memory=pin)["train"]
            rate = loader_rate(loader, n_batches)
            row["batches_per_s"] = rate
            if consumption:
                row["vs_consumption"] = rate / consumption
            del loader  # stops its persistent workers
        except Exception as exc:
            row["error"] = "failed: " + reason(exc)
        rows.append(row)
    return rows


def measure_task(task: str, args: argparse.Namespace, device: torch.device, workdir: Path) -> dict[str, Any]:
    overrides = list(args.override)
    if args.quick:
        overrides += tiny_data_overrides(task, workdir / "data")
    # The recipe as configured (augmentation on): its model, layout and loader; the DataLoader rows use it.
    config, settings, probe = task_run(task, overrides, device=str(device))
    train, batch_size = probe.data.splits["train"], probe.loaders["train"].batch_size
    n_batches = max(1, min(args.batches, len(train) // batch_size))  # full batches only: one shape for compile
    conv = has_conv(probe.model)
    result: dict[str, Any] = {
        "model": probe.contract["model"]["name"], "parameters": probe.parameters, "batch_size": batch_size,
        "batches": n_batches, "repeats": args.repeats, "train_samples": len(train), "conv": conv,
        "recipe": {"precision": settings.precision, "channels_last": settings.channels_last,
                   "compile": settings.compile}, "training": []}
    for setting in settings_grid(conv, settings.channels_last, args.base_precision, args.full_grid,
                                 args.precisions):
        if setting["compile"] and args.no_compile:
            result["training"].append({**setting, "skipped": "skipped: --no-compile"})
            continue
        row = measure_setting(task, overrides, device, setting, n_batches, args.repeats, workdir)
        result["training"].append(row)
        print(f"  {task}: {label(row):<32} {cells(row)}", file=sys.stderr, flush=True)
    eager = [r for r in result["training"]
             if "bare" in r and r["channels_last"] == settings.channels_last and not r["compile"]]
    base = next((r for r in eager if r["precision"] == args.base_precision), eager[0] if eager else None)
    consumption = base["bare"] / batch_size if base else None  # training steps/s on in-memory batches
    result["consumption_steps_per_s"] = consumption
    result["consumption_setting"] = label(base) if base else None
    result["dataloader"] = measure_loaders(probe, device, max(n_batches, 10), consumption)
    del probe
    gc.collect()
    return result


def label(row: dict[str, Any]) -> str:
    return (f"{row['precision']} · {'channels-last' if row['channels_last'] else 'contiguous'} · "
            f"{'compiled' if row['compile'] else 'eager'}")


def cells(row: dict[str, Any]) -> str:
    if "skipped" in row or "error" in row:
        return row.get("skipped") or row["error"]
    return f"{row['trainer']:>12.1f} {row['bare']:>12.1f} {row['ratio']:>8.3f}"


def print_task(task: str, r: dict[str, Any], device: torch.device) -> None:
    if "error" in r:
        print(f"\n{task}: {r['error']}")
        return
    recipe = r["recipe"]
    print(f"\n{task} — {r['model']} ({r['parameters']:,} parameters), batch {r['batch_size']}, {r['batches']} "
          f"batches × {r['repeats']} alternating repetitions on {device}; recipe: precision {recipe['precision']}, "
          f"channels_last {recipe['channels_last']}, compile {recipe['compile']}")
    print(f"  {'precision · layout · compile':<32} {'Trainer/s':>12} {'bare/s':>12} {'ratio':>8}   (samples/s)")
    for row in r["training"]:
        print(f"  {label(row):<32} {cells(row)}")
    c = r["consumption_steps_per_s"]
    against = f"{c:.1f} training steps/s, bare, {r['consumption_setting']}" if c else "not measured"
    print(f"  DataLoader delivery (batches/s) vs consumption ({against})")
    for row in r["dataloader"]:
        name = f"num_workers {row['num_workers']}, pin_memory {'on' if row['pin_memory'] else 'off'}"
        if "batches_per_s" in row:
            ratio = f"{row['vs_consumption']:>8.2f}× consumption" if "vs_consumption" in row else ""
            print(f"  {name:<32} {row['batches_per_s']:>12.1f} {ratio}")
        else:
            print(f"  {name:<32} {row.get('skipped') or row['error']}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="all", help="comma-separated task names (conf/task/*.yaml), or all")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batches", type=int, default=None, help="batches per timed pass (default 50; --quick 3)")
    ap.add_argument("--repeats", type=int, default=None, help="timed passes per loop (default 3; --quick 2)")
    ap.add_argument("--json", default=None, help="write every figure to this JSON file")
    ap.add_argument("--quick", action="store_true", help="tiny synthetic data in a scratch folder, few batches")
    ap.add_argument("--full-grid", action="store_true", help="every precision × layout × compile combination")
    ap.add_argument("--base-precision", choices=PRECISIONS, default=None,
                    help="precision of the layout and compile rows (default bf16 on a GPU that has it, else the first "
                         "of --precisions)")
    ap.add_argument("--precisions", default=",".join(PRECISIONS),
                    help="comma-separated precision rows, of 32,bf16,16 (bf16 convolutions crawl on CPUs without it)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                    help="a Hydra override for every task's recipe (repeatable), e.g. data.batch_size=64")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    args = ap.parse_args(argv)
    args.precisions = tuple(p.strip() for p in args.precisions.split(",") if p.strip())
    if not args.precisions or set(args.precisions) - set(PRECISIONS):
        ap.error(f"--precisions takes a comma-separated subset of {','.join(PRECISIONS)}")
    args.batches = args.batches or (3 if args.quick else 50)
    args.repeats = args.repeats or (2 if args.quick else 3)
    cuda = args.device.startswith("cuda")
    if args.base_precision is None:
        bf16 = cuda and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        args.base_precision = "bf16" if bf16 and "bf16" in args.precisions else args.precisions[0]
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from signlip.errors import SignlipError
    from signlip.run_logger import environment_info

    if args.threads:
        torch.set_num_threads(args.threads)
    known = all_tasks()
    tasks = known if args.tasks == "all" else [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in known]
    if unknown:
        raise SystemExit(f"bench_gpu: unknown task(s) {', '.join(unknown)} — choose from {', '.join(known)}")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_gpu: --device cuda but no CUDA device is visible — pass --device cpu")
    for task in tasks:  # a bad --override stops here, before any measuring
        try:
            compose_task(task, args.override)
        except Exception as exc:
            raise SystemExit(f"bench_gpu: {task}: {reason(exc)}") from None
    report: dict[str, Any] = {
        "environment": environment_info(), "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch_threads": torch.get_num_threads(), "args": vars(args), "tasks": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for task in tasks:
            print(f"measuring {task} …", file=sys.stderr, flush=True)
            try:
                result = measure_task(task, args, device, Path(tmp))
            except (SignlipError, RuntimeError, OSError) as exc:  # e.g. data that cannot be prepared here
                result = {"error": "failed: " + reason(exc)}
            report["tasks"][task] = result
            print_task(task, result, device)
            if args.json:  # after every task: a run cut short keeps what it measured
                Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return report


if __name__ == "__main__":
    main()
