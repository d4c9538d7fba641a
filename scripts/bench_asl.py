"""Benchmark asl_tcn_transformer on CPU: batch-1 latency for a 384-frame sequence, and training samples/s of the
full signlip loop (Trainer.train_one_epoch) vs a bare model step on in-memory tensors (same model, same batches).

    python scripts/bench_asl.py [--repeats 5] [--threads 2] [--runs 100]

Training: the built-in synthetic holistic set (data/synthetic/holistic, generated on first use), the task's recipe
(AdamW 4e-4, wd 0.005, cosine warm restarts, label smoothing 0.05, clipping 1.0, batch 32), augmentation off so that
both loops do the same arithmetic. The bare loop gets, already in memory, exactly the batches the Trainer sees in
that epoch (same order, same per-batch padding, features already computed) and times only forward, loss,
backward, clip and step; the Trainer's figure includes fetching batches, the feature transform on each batch,
metrics and progress. Repetitions alternate between the two loops so that machine noise hits both alike; the
ratio of medians is reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from signlip.benchmarking import bare_step, latency_ms


def build(data_root: str):
    from signlip.registry import build_data

    return build_data("holistic", manifest=None, synthetic={"root": data_root}, augment={"enabled": False})


def make_model(num_classes: int):
    from signlip.registry import build_model

    torch.manual_seed(0)
    return build_model("asl_tcn_transformer", num_classes=num_classes, input_dim=744, late_dropout_step=600)


def make_trainer(data, run_dir: Path):
    from signlip.config import TrainerSettings
    from signlip.data.loaders import make_loaders
    from signlip.objectives.classification import ClassifyObjective
    from signlip.optim import Schedule
    from signlip.run_logger import RunLogger
    from signlip.trainer import Trainer

    model = make_model(len(data.classes))
    loaders = make_loaders(data, batch_size=32, eval_batch_size=64)
    opt = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.005, betas=(0.9, 0.999))
    schedule = Schedule(opt, "cosine_warm_restarts", len(loaders["train"]), 300, T_0_epochs=50, T_mult=2,
                        min_lr_ratio=0.01)
    settings = TrainerSettings(device="cpu")
    contract = {"task": "bench", "model": {"name": "asl_tcn_transformer", "kwargs": {}}, "config": {}}
    return Trainer(model, ClassifyObjective(label_smoothing=0.05), opt, schedule, data, loaders, settings, run_dir,
                   contract, RunLogger(run_dir, enabled=True, tensorboard=True, progress=True))


def epoch_batches(data, epoch: int, seed: int = 0, batch_size: int = 32) -> list[dict[str, torch.Tensor]]:
    """The Trainer's batches of one epoch (EpochShuffleSampler order), transformed, in memory."""
    train = data.splits["train"]
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist()
    return [data.batch_transform(train.__getitems__(order[i:i + batch_size]), training=False)
            for i in range(0, len(order), batch_size)]


def bare_epoch(model, opt, batches) -> float:
    """The minimal loop on in-memory tensors: forward, loss, backward, clip, step."""
    model.train()
    n = sum(len(b["y"]) for b in batches)
    t0 = time.perf_counter()
    for b in batches:
        bare_step(model, opt, b["x"], b["y"], b["mask"], label_smoothing=0.05)
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=100, help="latency: timed forward passes per setting")
    parser.add_argument("--data-root", default="data/synthetic/holistic")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} CPU(s), load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")

    model = make_model(25)
    print(f"asl_tcn_transformer: {sum(p.numel() for p in model.parameters()):,} parameters")
    one = torch.randn(1, 384, 744)
    for threads in sorted({1, args.threads}):
        torch.set_num_threads(threads)
        print(f"batch-1 latency, 384 frames, {threads} thread(s): {latency_ms(model, one, args.runs):.2f} ms "
              f"(median of {args.runs})")
    torch.set_num_threads(args.threads)

    data = build(args.data_root)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(data, Path(tmp))
        bare_model = make_model(len(data.classes))
        bare_opt = torch.optim.AdamW(bare_model.parameters(), lr=4e-4, weight_decay=0.005, betas=(0.9, 0.999))
        bare_epoch(bare_model, bare_opt, epoch_batches(data, 0))  # warm-up both
        trainer.train_one_epoch()
        signlip_rates, bare_rates = [], []
        for r in range(args.repeats):
            trainer.epoch = r + 1  # the Trainer's own order for this epoch; the bare loop gets the same batches
            bare_rates.append(bare_epoch(bare_model, bare_opt, epoch_batches(data, r + 1)))
            signlip_rates.append(trainer.train_one_epoch()["train/samples_per_s"])
        trainer.logger.close()
    s, b = statistics.median(signlip_rates), statistics.median(bare_rates)
    n = len(data.splits["train"])
    print(f"training samples/s (median of {args.repeats} epochs, {n} samples each, batch 32, {args.threads} threads)")
    print(f"  bare model step   : {b:8.1f}   {[round(v, 1) for v in bare_rates]}")
    print(f"  signlip Trainer   : {s:8.1f}   {[round(v, 1) for v in signlip_rates]}")
    print(f"  ratio signlip/bare: {s / b:.3f}  (target ≥ 0.9)")


if __name__ == "__main__":
    main()
