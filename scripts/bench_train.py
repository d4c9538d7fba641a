"""Benchmark: signlip Trainer vs a minimal hand-written PyTorch loop (same model, data, recipe, one run),
and batch-1 inference latency of landmark_gru.

    python scripts/bench_train.py [--repeats 5] [--data-root data/synthetic/hands]

Both loops train the landmark_gru task's recipe, composed from conf/ as `signlip train task=landmark_gru` does
(model, optimizer, label smoothing, clipping, batch size), on the built-in synthetic hand data. Augmentation is off
in both (signlip.benchmarking.AUGMENT_OFF) so they do the same arithmetic. The bare loop trains a copy of the same
fresh model with an optimizer of the same class and settings, on exactly the batches the Trainer's loader hands out
in that epoch, already in memory. Repetitions alternate between the two loops so that machine noise hits both alike;
the ratio of medians is reported.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from signlip.benchmarking import bare_copy, bare_epoch, bare_settings, epoch_batches, latency_ms, task_run

TASK = "landmark_gru"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-root", default="data/synthetic/hands")
    args = parser.parse_args()
    torch.set_num_threads(2)

    from signlip.build import instantiate, make_trainer
    from signlip.registry import MODELS
    from signlip.run_logger import RunLogger

    config, settings, run = task_run(TASK, [f"data.synthetic.root={args.data_root}"], device="cpu", augment=False)
    bare_model, bare_opt = bare_copy(run)  # before training: the same fresh weights
    step = bare_settings(run)
    with tempfile.TemporaryDirectory() as tmp:
        log = config["logger"]
        trainer = make_trainer(run, tmp, RunLogger(Path(tmp), enabled=True, tensorboard=log["tensorboard"],
                                                   progress=log["progress"]))
        bare_epoch(bare_model, bare_opt, epoch_batches(run, 0), **step)  # warm-up both
        trainer.train_one_epoch()
        signlip_rates, bare_rates = [], []
        for r in range(args.repeats):
            trainer.epoch = r + 1  # the Trainer's own order for this epoch; the bare loop gets the same batches
            bare_rates.append(bare_epoch(bare_model, bare_opt, epoch_batches(run, r + 1), **step))
            signlip_rates.append(trainer.train_one_epoch()["train/samples_per_s"])
        trainer.logger.close()
    s, b = statistics.median(signlip_rates), statistics.median(bare_rates)
    n = len(run.data.splits["train"])
    print(f"training samples/s (median of {args.repeats} epochs, {n} samples each, batch "
          f"{run.loaders['train'].batch_size}, 2 threads)")
    print(f"  bare PyTorch loop : {b:8.0f}   {[round(v) for v in bare_rates]}")
    print(f"  signlip Trainer   : {s:8.0f}   {[round(v) for v in signlip_rates]}")
    print(f"  ratio signlip/bare: {s / b:.3f}  (target ≥ 0.95)")

    model = instantiate(MODELS, run.contract["model"])  # the recipe's model, fresh
    one = run.data.batch_transform(run.data.splits["val"].__getitems__([0]), training=False)["x"]  # (1, T, F)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        ms = latency_ms(model, one, 300, warmup=30)
        print(f"{TASK} batch-1 latency, {threads} thread(s), input {tuple(one.shape)}: {ms:.3f} ms (median of 300)")


if __name__ == "__main__":
    main()
