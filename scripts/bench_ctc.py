"""Benchmark: signlip Trainer vs a minimal hand-written PyTorch CTC loop (same model, data, recipe, one run), and
the streaming rate of the cslr_landmarks model over whole sentences.

    OMP_WAIT_POLICY=PASSIVE python scripts/bench_ctc.py [--repeats 5] [--data-root data/synthetic/sentences]

Both loops train the cslr_landmarks task's recipe, composed from conf/ as `signlip train task=cslr_landmarks` does,
on the built-in synthetic sentences with augmentation off, on exactly the batches the Trainer's (length-bucketed)
loader hands out in that epoch, already in memory. The bare loop is forward, log-softmax, `F.ctc_loss` over the
output lengths, backward, clip, step — what the CTC objective adds is its per-batch length check and the blanked
padding of its outputs. Repetitions alternate; the ratio of medians is reported.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from signlip.benchmarking import bare_copy, bare_settings, epoch_batches, task_run

TASK = "cslr_landmarks"


def bare_ctc_epoch(model, opt, batches, clip: float, transform=None) -> float:
    """Sentences/s of the bare loop; with `transform`, `batches` are raw loader batches it transforms itself."""
    model.train()
    n = sum(int(b["y"].shape[0]) for b in batches)
    t0 = time.perf_counter()
    for b in batches:
        if transform is not None:
            with torch.no_grad():
                b = transform(b, training=False)
        log_probs = model(b["x"], b["mask"]).float().log_softmax(-1)
        lengths = model.output_lengths(b["mask"].sum(1))
        targets = torch.cat([row[:k] for row, k in zip(b["y"], b["y_lengths"])])
        loss = F.ctc_loss(log_probs.transpose(0, 1), targets, lengths, b["y_lengths"], blank=0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-root", default="data/synthetic/sentences")
    args = parser.parse_args()
    torch.set_num_threads(2)

    from signlip.build import make_trainer
    from signlip.run_logger import RunLogger

    config, settings, run = task_run(TASK, [f"data.synthetic.root={args.data_root}"], device="cpu", augment=False)
    bare_model, bare_opt = bare_copy(run)
    clip = bare_settings(run)["clip"]
    with tempfile.TemporaryDirectory() as tmp:
        log = config["logger"]
        trainer = make_trainer(run, tmp, RunLogger(Path(tmp), enabled=True, tensorboard=log["tensorboard"],
                                                   progress=log["progress"]))
        bare_ctc_epoch(bare_model, bare_opt, epoch_batches(run, 0), clip)  # warm-up both
        trainer.train_one_epoch()
        signlip_rates, bare_rates, bare_transform_rates = [], [], []
        for r in range(args.repeats):
            trainer.epoch = r + 1
            bare_rates.append(bare_ctc_epoch(bare_model, bare_opt, epoch_batches(run, r + 1), clip))
            loader = run.loaders["train"]
            loader.batch_sampler.set_epoch(r + 1)
            raw = list(loader)  # the same batches, before the data's batch transform
            bare_transform_rates.append(bare_ctc_epoch(bare_model, bare_opt, raw, clip, run.data.batch_transform))
            signlip_rates.append(trainer.train_one_epoch()["train/samples_per_s"])
        trainer.logger.close()
    s, b = statistics.median(signlip_rates), statistics.median(bare_rates)
    print(f"CTC training sentences/s (median of {args.repeats} epochs, {len(run.data.splits['train'])} sentences, "
          f"batch {run.loaders['train'].batch_sampler.batch_size}, 2 threads)")
    print(f"  bare PyTorch loop : {b:8.1f}   {[round(v, 1) for v in bare_rates]}")
    print(f"  signlip Trainer   : {s:8.1f}   {[round(v, 1) for v in signlip_rates]}")
    bt = statistics.median(bare_transform_rates)
    print(f"  bare loop + the batch transform (motion features): {bt:8.1f}   "
          f"{[round(v, 1) for v in bare_transform_rates]}")
    print(f"  ratio signlip/bare: {s / b:.3f}  (target ≥ 0.95); signlip/(bare + transform): {s / bt:.3f}")

    # Streaming: one whole sentence at a time (batch 1, eval mode), frames per second of input handled.
    model = run.model.eval()
    val = run.data.splits["val"]
    for threads in (1, 2):
        torch.set_num_threads(threads)
        frames, seconds = 0, 0.0
        with torch.inference_mode():
            for i in range(len(val)):
                batch = run.data.batch_transform(val.__getitems__([i]), training=False)
                t0 = time.perf_counter()
                model(batch["x"], batch["mask"])
                seconds += time.perf_counter() - t0
                frames += int(batch["mask"].sum())
        print(f"{TASK} streaming, {threads} thread(s): {frames / seconds:,.0f} frames/s over {len(val)} whole "
              f"sentences ({frames} frames; the model alone, features computed beforehand)")


if __name__ == "__main__":
    main()
