"""Benchmark the lip-reading path, all in one run (repetitions alternate so machine noise hits both sides alike):

    python scripts/bench_lip.py [--repeats 3] [--clips 96] [--train-clips 96] [--skip a,b,c]

Everything comes from the lip_cnnlstm task's recipe, composed from conf/ as `signlip train task=lip_cnnlstm` does
(model, optimizer, schedule, label smoothing, clipping, batch size, channels-last, preprocessing, augmentation).

(a) clips/s served to the model: the prepared uint8 cache (ClipDataset + DataLoader + ClipTransform with the recipe's
    augmentation) vs decoding every video with OpenCV each epoch as the reference system did (read, resample to the
    recipe's fps, gray, resize, sample its frames, to a float tensor, same augmentation). Target ≥ 20×.
(b) training clips/s of the signlip loop (Trainer.train_one_epoch: loader, device transform, objective, clipping,
    AdamW, schedule, logging) vs a bare PyTorch step on in-memory float tensors: a copy of the same fresh model, an
    optimizer of the same class and settings, the very batches the Trainer's loader hands out; augmentation off in
    both (signlip.benchmarking.AUGMENT_OFF) so they do the same arithmetic. Target ≥ 0.9×.
(c) batch-1 inference latency of lip_cnnlstm on one prepared clip (1, 1, T, H, W), 1 and 2 threads: eager PyTorch,
    and the CPU inference form `signlip.inference.for_cpu_inference` (what `signlip evaluate` runs on CPU) in float32
    and, where the CPU has native bfloat16, with bfloat16 convolutions. Target ≤ 15 ms.

Uses the built-in synthetic lip videos and their cache (made on first use, as `signlip train task=lip_cnnlstm`).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from signlip.benchmarking import bare_copy, bare_epoch, bare_settings, epoch_batches, latency_ms, task_run

TASK = "lip_cnnlstm"


def serve_cache(data, n: int, batch_size: int, transform: bool = True) -> float:
    """Clips/s from the cache through the DataLoader (and the training-time device transform unless told not)."""
    from torch.utils.data import DataLoader

    from signlip.data.base import collate_batch

    ds = data.splits["train"]
    loader = DataLoader(ds, batch_size=batch_size, sampler=range(n), collate_fn=collate_batch)
    t0 = time.perf_counter()
    seen = 0
    for batch in loader:
        out = data.batch_transform(batch, training=True) if transform else batch
        seen += out["x"].shape[0]
    return seen / (time.perf_counter() - t0)


def serve_decode(paths: list[str], labels: list[int], prepare: dict[str, Any], augment: dict[str, Any],
                 batch_size: int) -> float:
    """Clips/s when every clip is decoded from its video each epoch (the reference system's data path), with the
    recipe's preprocessing settings and augmentation."""
    from signlip.data.clips.augment import augment_clips
    from signlip.data.clips.video import read_clip

    t0 = time.perf_counter()
    for start in range(0, len(paths), batch_size):
        clips = [torch.from_numpy(read_clip(p, fps=prepare["fps"], n_frames=prepare["n_frames"],
                                            size=tuple(prepare["size"]), gray=prepare["gray"]))
                 for p in paths[start:start + batch_size]]
        x = torch.stack(clips).unsqueeze(1).float().div_(255.0)  # (B, 1, T, H, W)
        augment_clips(x, **augment, inplace=True)  # as ClipTransform does
        torch.as_tensor(labels[start:start + batch_size])
    return len(paths) / (time.perf_counter() - t0)


def fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.1f}" for v in values) + "]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clips", type=int, default=96, help="clips per data-serving repetition")
    parser.add_argument("--train-clips", type=int, default=96,
                        help="clips per training epoch (a multiple of the recipe's batch size)")
    parser.add_argument("--latency-runs", type=int, default=50)
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: a,b,c")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    torch.set_num_threads(2)

    from signlip.build import instantiate, make_trainer
    from signlip.registry import MODELS
    from signlip.run_logger import RunLogger
    from signlip.trainer import to_channels_last

    # The recipe as trained: augmentation on (what (a) serves), the prepared cache made on first use.
    config, settings, run = task_run(TASK, device="cpu")
    data, train = run.data, run.data.splits["train"]
    batch_size = run.loaders["train"].batch_size
    n = min(args.clips, len(train))
    if "a" not in skip:
        # The prepared manifest keeps each clip's video in its `source` column (train rows in dataset order).
        with open(data.preprocessing["manifest"], newline="") as fh:
            videos = [r["source"] for r in csv.DictReader(fh) if r["split"] == "train"][:n]
        labels = train.labels[:n].tolist()
        prepare, augment = config["data"]["prepare"], config["data"]["augment"] or {}
        serve_cache(data, n, batch_size)
        serve_decode(videos[:batch_size], labels[:batch_size], prepare, augment, batch_size)  # warm-up both
        cache_rates, decode_rates, load_rates = [], [], []
        for _ in range(args.repeats):
            decode_rates.append(serve_decode(videos, labels, prepare, augment, batch_size))
            cache_rates.append(serve_cache(data, n, batch_size))
            load_rates.append(serve_cache(data, n, batch_size, transform=False))
        c, d = statistics.median(cache_rates), statistics.median(decode_rates)
        print(f"(a) clips/s served to the model, {n} clips × {args.repeats} alternating repetitions, "
              f"batch {batch_size}")
        print(f"    decode videos with OpenCV each epoch: {d:9.1f}  {fmt(decode_rates)}")
        print(f"    prepared uint8 cache (+ transform):   {c:9.1f}  {fmt(cache_rates)}")
        print(f"    ratio cache/decode: {c / d:.1f}×  (target ≥ 20×)")
        print(f"    cache → uint8 batches only (no float conversion / augmentation): "
              f"{statistics.median(load_rates):.1f}  {fmt(load_rates)}", flush=True)

    if "b" not in skip:
        n_batches = max(1, min(args.train_clips, len(train)) // batch_size)
        _, b_settings, b_run = task_run(TASK, [f"trainer.limit_train_batches={n_batches}"], device="cpu",
                                        augment=False)
        bare_model, bare_opt = bare_copy(b_run)  # before training: the same fresh weights
        if b_settings.channels_last:
            to_channels_last(bare_model)  # the recipe's layout, converted as the Trainer converts it
        step = bare_settings(b_run)
        layout = b_settings.channels_last
        with tempfile.TemporaryDirectory() as tmp:
            log = config["logger"]
            trainer = make_trainer(b_run, tmp, RunLogger(Path(tmp), enabled=True, tensorboard=log["tensorboard"],
                                                         progress=log["progress"]))
            bare_epoch(bare_model, bare_opt, epoch_batches(b_run, 0, 2, channels_last=layout), **step)  # warm-up
            trainer.settings.limit_train_batches = 2
            trainer.train_one_epoch()
            trainer.settings.limit_train_batches = n_batches
            signlip_rates, bare_rates = [], []
            for r in range(args.repeats):
                trainer.epoch = r + 1  # the Trainer's own order for this epoch; the bare loop gets the same batches
                batches = epoch_batches(b_run, r + 1, n_batches, channels_last=layout)
                bare_rates.append(bare_epoch(bare_model, bare_opt, batches, **step))
                signlip_rates.append(trainer.train_one_epoch()["train/samples_per_s"])
            trainer.logger.close()
        s, b = statistics.median(signlip_rates), statistics.median(bare_rates)
        print(f"(b) training clips/s, {n_batches * batch_size} clips × {args.repeats} alternating epochs, batch "
              f"{batch_size}, 2 threads")
        print(f"    bare PyTorch step on tensors: {b:8.2f}  {fmt(bare_rates)}")
        print(f"    signlip Trainer epoch:        {s:8.2f}  {fmt(signlip_rates)}")
        print(f"    ratio signlip/bare: {s / b:.3f}  (target ≥ 0.9)", flush=True)

    if "c" not in skip:
        from signlip.inference import bfloat16_supported, for_cpu_inference

        torch.manual_seed(0)
        model = instantiate(MODELS, run.contract["model"]).eval()  # the recipe's model, fresh
        forms = {"eager PyTorch": model, "for_cpu_inference (oneDNN, BN folded)": for_cpu_inference(model)}
        if bfloat16_supported():
            forms["for_cpu_inference, bfloat16 convs"] = for_cpu_inference(model, torch.bfloat16)
        one = data.batch_transform(run.data.splits["val"].__getitems__([0]), training=False)["x"]  # (1, 1, T, H, W)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for name, form in forms.items():
                ms = latency_ms(form, one, args.latency_runs)
                print(f"(c) {TASK} batch-1 latency {tuple(one.shape)}, {threads} thread(s), {name}: {ms:.2f} ms "
                      f"(median of {args.latency_runs}; target ≤ 15 ms)", flush=True)
        with torch.inference_mode():
            clips = data.batch_transform(train.__getitems__(list(range(min(64, len(train))))), training=False)["x"]
            ref = model(clips)
            for name, form in list(forms.items())[1:]:
                out = form(clips)
                agree = (out.argmax(1) == ref.argmax(1)).float().mean().item()
                print(f"    {name}: max |Δlogit| vs eager {(out - ref).abs().max().item():.1e}, "
                      f"top-1 agreement {agree:.3f} on {len(clips)} cached clips")


if __name__ == "__main__":
    main()
