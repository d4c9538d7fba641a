"""Benchmark asl_tcn_transformer on CPU: batch-1 latency for a max_len-frame sequence, and training samples/s of the
full signlip loop (Trainer.train_one_epoch) vs a bare model step on in-memory tensors (same model, same batches).

    python scripts/bench_asl.py [--repeats 5] [--threads 2] [--runs 100] [--data-root data/synthetic/holistic]

Training: the built-in synthetic holistic set (generated on first use) and the task's recipe, composed from conf/ as
`signlip train task=asl_tcn_transformer` does (optimizer, schedule, label smoothing, clipping, batch size),
augmentation off (signlip.benchmarking.AUGMENT_OFF) so that both loops do the same arithmetic. The bare loop trains
a copy of the same fresh model with an optimizer of the same class and settings and gets, already in memory,
exactly the batches the Trainer sees in that epoch (same order, same per-batch padding, features already computed);
it times only forward, loss, backward, clip and step. The Trainer's figure includes fetching batches, the feature
transform on each batch, metrics and progress. Repetitions alternate between the two loops so that machine noise
hits both alike; the ratio of medians is reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import torch

from signlip.benchmarking import bare_copy, bare_epoch, bare_settings, epoch_batches, latency_ms, task_run

TASK = "asl_tcn_transformer"


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

    from signlip.build import instantiate, make_trainer
    from signlip.registry import MODELS
    from signlip.run_logger import RunLogger

    config, settings, run = task_run(TASK, [f"data.synthetic.root={args.data_root}"], device="cpu", augment=False)
    bare_model, bare_opt = bare_copy(run)  # before training: the same fresh weights
    step = bare_settings(run)

    model = instantiate(MODELS, run.contract["model"])  # the recipe's model, fresh
    print(f"{TASK}: {sum(p.numel() for p in model.parameters()):,} parameters")
    frames, features = int(config["data"]["max_len"]), int(run.contract["model"]["kwargs"]["input_dim"])
    one = torch.randn(1, frames, features)  # (B, T, F): the longest sequence the data module lets through
    for threads in sorted({1, args.threads}):
        torch.set_num_threads(threads)
        print(f"batch-1 latency, {frames} frames, {threads} thread(s): {latency_ms(model, one, args.runs):.2f} ms "
              f"(median of {args.runs})")
    torch.set_num_threads(args.threads)

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
          f"{run.loaders['train'].batch_size}, {args.threads} threads)")
    print(f"  bare model step   : {b:8.1f}   {[round(v, 1) for v in bare_rates]}")
    print(f"  signlip Trainer   : {s:8.1f}   {[round(v, 1) for v in signlip_rates]}")
    print(f"  ratio signlip/bare: {s / b:.3f}  (target ≥ 0.9)")


if __name__ == "__main__":
    main()
