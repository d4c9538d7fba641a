"""Benchmark: signlip Trainer vs a minimal hand-written PyTorch loop (same model, data, recipe, one run),
and batch-1 inference latency of landmark_gru.

    python scripts/bench_train.py [--epochs 3] [--repeats 5]

Both loops train landmark_gru (GRU 128×2) on the built-in synthetic hand data with the task's recipe (Adam,
label smoothing 0.1, clipping 1.0, batch 32). Augmentation is off in both so they do the same arithmetic.
Repetitions alternate between the two loops so that machine noise hits both alike; the ratio of medians is
reported.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from signlip.benchmarking import bare_step, latency_ms


def make_trainer(data, run_dir: Path):
    from signlip.config import TrainerSettings
    from signlip.data.loaders import make_loaders
    from signlip.objectives.classification import ClassifyObjective
    from signlip.optim import Schedule
    from signlip.registry import build_model
    from signlip.run_logger import RunLogger
    from signlip.trainer import Trainer

    torch.manual_seed(0)
    model = build_model("landmark_gru", num_classes=len(data.classes), input_size=63)
    loaders = make_loaders(data, batch_size=32, eval_batch_size=256)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    schedule = Schedule(opt, "plateau", len(loaders["train"]), 100)
    settings = TrainerSettings(device="cpu")
    contract = {"task": "bench", "model": {"name": "landmark_gru", "kwargs": {}}, "config": {}}
    return Trainer(model, ClassifyObjective(label_smoothing=0.1), opt, schedule, data, loaders, settings, run_dir,
                   contract, RunLogger(run_dir, enabled=True, tensorboard=True, progress=True))


def bare_epoch(model, opt, x, mask, y, batch_size=32, seed=0) -> float:
    """The minimal loop: shuffled slices of in-memory tensors, forward, loss, backward, clip, step."""
    model.train()
    n = len(y)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    t0 = time.perf_counter()
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        bare_step(model, opt, x[idx], y[idx], mask[idx], label_smoothing=0.1)
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-root", default="data/synthetic/hands")
    args = parser.parse_args()
    torch.set_num_threads(2)

    from signlip.registry import build_data, build_model

    data = build_data("landmarks", manifest=None, synthetic={"root": args.data_root}, augment={"p": 0.0})
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(data, Path(tmp))
        train = data.splits["train"]
        # The bare loop gets the same preprocessed inputs, already in memory.
        prepared = data.batch_transform(train.__getitems__(list(range(len(train)))), training=False)
        x, mask, y = prepared["x"], prepared["mask"], prepared["y"]
        torch.manual_seed(0)
        bare_model = build_model("landmark_gru", num_classes=len(data.classes), input_size=63)
        bare_opt = torch.optim.Adam(bare_model.parameters(), lr=1e-3, weight_decay=1e-4)
        bare_epoch(bare_model, bare_opt, x, mask, y)  # warm-up both
        trainer.train_one_epoch()
        signlip_rates, bare_rates = [], []
        for r in range(args.repeats):
            bare_rates.append(bare_epoch(bare_model, bare_opt, x, mask, y, seed=r))
            signlip_rates.append(trainer.train_one_epoch()["train/samples_per_s"])
        trainer.logger.close()
    s, b = statistics.median(signlip_rates), statistics.median(bare_rates)
    print(f"training samples/s (median of {args.repeats} epochs, {len(y)} samples each, 2 threads)")
    print(f"  bare PyTorch loop : {b:8.0f}   {[round(v) for v in bare_rates]}")
    print(f"  signlip Trainer   : {s:8.0f}   {[round(v) for v in signlip_rates]}")
    print(f"  ratio signlip/bare: {s / b:.3f}  (target ≥ 0.95)")

    model = build_model("landmark_gru", num_classes=26, input_size=63)
    one = torch.randn(1, 30, 63)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        ms = latency_ms(model, one, 300, warmup=30)
        print(f"landmark_gru batch-1 latency, {threads} thread(s): {ms:.3f} ms (median of 300)")


if __name__ == "__main__":
    main()
