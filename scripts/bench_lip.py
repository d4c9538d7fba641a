"""Benchmark the lip-reading path, all in one run (repetitions alternate so machine noise hits both sides alike):

    python scripts/bench_lip.py [--repeats 3] [--clips 96] [--train-clips 96]

(a) clips/s served to the model: the prepared uint8 cache (ClipDataset + DataLoader + ClipTransform with the recipe's
    augmentation) vs decoding every video with OpenCV each epoch as the reference system did (read, resample to
    25 fps, gray, resize to 64×96, sample 32 frames, to a float tensor, same augmentation). Target ≥ 20×.
(b) training clips/s of the signlip loop (Trainer.train_one_epoch: loader, device transform, objective, clipping,
    AdamW, schedule, logging) vs a bare PyTorch step on in-memory float tensors; same model, recipe (AdamW 1e-4,
    wd 1e-4, label smoothing 0.05, batch 8, clip 1.0); augmentation off in both so they do the same arithmetic.
    Target ≥ 0.9×.
(c) batch-1 inference latency of lip_cnnlstm on (1, 1, 32, 64, 96), 1 and 2 threads: eager PyTorch, and the CPU
    inference form `signlip.inference.for_cpu_inference` (what `signlip evaluate` runs on CPU) in float32 and, where
    the CPU has native bfloat16, with bfloat16 convolutions. Target ≤ 15 ms.

Uses the built-in synthetic lip videos and their cache (made on first use, as `signlip train task=lip_cnnlstm`).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from signlip.benchmarking import bare_step, latency_ms

RECIPE_AUGMENT = {"hflip": 0.5, "brightness": 0.15, "brightness_p": 0.7, "contrast": (0.9, 1.1), "contrast_p": 0.5}


def data_config() -> dict:
    """The `clips_lip` data config as plain kwargs of the clips data module (loader keys removed)."""
    from omegaconf import OmegaConf

    from signlip.cli import conf_dir

    cfg = OmegaConf.to_container(OmegaConf.load(conf_dir() / "data" / "clips_lip.yaml"))
    for key in ("name", "batch_size", "eval_batch_size", "num_workers", "stratified"):
        cfg.pop(key, None)
    return cfg


def serve_cache(data, n: int, batch_size: int = 8, transform: bool = True) -> float:
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


def serve_decode(paths: list[str], labels: list[int], batch_size: int = 8) -> float:
    """Clips/s when every clip is decoded from its video each epoch (the reference system's data path)."""
    from signlip.data.clips.augment import augment_clips
    from signlip.data.clips.video import read_clip

    t0 = time.perf_counter()
    for start in range(0, len(paths), batch_size):
        clips = [torch.from_numpy(read_clip(p, fps=25, n_frames=32, size=(64, 96), gray=True))
                 for p in paths[start:start + batch_size]]
        x = torch.stack(clips).unsqueeze(1).float().div_(255.0)  # (B, 1, T, H, W)
        augment_clips(x, **RECIPE_AUGMENT, inplace=True)  # as ClipTransform does
        torch.as_tensor(labels[start:start + batch_size])
    return len(paths) / (time.perf_counter() - t0)


def make_trainer(data, run_dir: Path, n_batches: int):
    from signlip.config import TrainerSettings
    from signlip.data.loaders import make_loaders
    from signlip.objectives.classification import ClassifyObjective
    from signlip.optim import Schedule
    from signlip.registry import build_model
    from signlip.run_logger import RunLogger
    from signlip.trainer import Trainer

    torch.manual_seed(0)
    model = build_model("lip_cnnlstm", num_classes=len(data.classes))
    loaders = make_loaders(data, batch_size=8, eval_batch_size=32)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)
    schedule = Schedule(opt, "plateau", n_batches, 45)
    settings = TrainerSettings(device="cpu", limit_train_batches=n_batches, channels_last=True)  # as the task
    contract = {"task": "bench", "model": {"name": "lip_cnnlstm", "kwargs": {}}, "config": {}}
    return Trainer(model, ClassifyObjective(label_smoothing=0.05), opt, schedule, data, loaders, settings, run_dir,
                   contract, RunLogger(run_dir, enabled=True, tensorboard=True, progress=True))


def bare_epoch(model, opt, x, y, batch_size=8, seed=0) -> float:
    """The minimal loop: shuffled slices of in-memory float tensors, forward, loss, backward, clip, step."""
    model.train()
    x = x.contiguous(memory_format=torch.channels_last_3d)  # the task's trainer.channels_last=true
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    t0 = time.perf_counter()
    for start in range(0, len(y), batch_size):
        idx = order[start:start + batch_size]
        bare_step(model, opt, x[idx], y[idx], label_smoothing=0.05)
    return len(y) / (time.perf_counter() - t0)


def fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.1f}" for v in values) + "]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clips", type=int, default=96, help="clips per data-serving repetition")
    parser.add_argument("--train-clips", type=int, default=96, help="clips per training epoch (multiple of 8)")
    parser.add_argument("--latency-runs", type=int, default=50)
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: a,b,c")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    torch.set_num_threads(2)

    from signlip.registry import build_data, build_model

    data = build_data("clips", **{**data_config(), "augment": RECIPE_AUGMENT})
    train = data.splits["train"]
    n = min(args.clips, len(train))
    if "a" not in skip:
        # The prepared manifest keeps each clip's video in its `source` column (train rows in dataset order).
        import csv

        with open(data.preprocessing["manifest"], newline="") as fh:
            videos = [r["source"] for r in csv.DictReader(fh) if r["split"] == "train"][:n]
        labels = train.labels[:n].tolist()
        serve_cache(data, n)
        serve_decode(videos[:8], labels[:8])  # warm-up both
        cache_rates, decode_rates, load_rates = [], [], []
        for _ in range(args.repeats):
            decode_rates.append(serve_decode(videos, labels))
            cache_rates.append(serve_cache(data, n))
            load_rates.append(serve_cache(data, n, transform=False))
        c, d = statistics.median(cache_rates), statistics.median(decode_rates)
        print(f"(a) clips/s served to the model, {n} clips × {args.repeats} alternating repetitions, batch 8")
        print(f"    decode videos with OpenCV each epoch: {d:9.1f}  {fmt(decode_rates)}")
        print(f"    prepared uint8 cache (+ transform):   {c:9.1f}  {fmt(cache_rates)}")
        print(f"    ratio cache/decode: {c / d:.1f}×  (target ≥ 20×)")
        print(f"    cache → uint8 batches only (no float conversion / augmentation): "
              f"{statistics.median(load_rates):.1f}  {fmt(load_rates)}", flush=True)

    if "b" not in skip:
        n_batches = max(1, min(args.train_clips, len(train)) // 8)
        data.batch_transform.augment = {}  # same arithmetic in both loops
        with tempfile.TemporaryDirectory() as tmp:
            trainer = make_trainer(data, Path(tmp), n_batches)
            prepared = data.batch_transform(train.__getitems__(list(range(n_batches * 8))), training=False)
            x, y = prepared["x"], prepared["y"]  # (N, 1, 32, 64, 96) float, (N,)
            torch.manual_seed(0)
            bare_model = build_model("lip_cnnlstm", num_classes=len(data.classes))
            bare_model.to(memory_format=torch.channels_last_3d)
            bare_opt = torch.optim.AdamW(bare_model.parameters(), lr=1e-4, weight_decay=1e-4)
            bare_epoch(bare_model, bare_opt, x[:16], y[:16])  # warm-up both
            trainer.settings.limit_train_batches = 2
            trainer.train_one_epoch()
            trainer.settings.limit_train_batches = n_batches
            signlip_rates, bare_rates = [], []
            for r in range(args.repeats):
                bare_rates.append(bare_epoch(bare_model, bare_opt, x, y, seed=r))
                signlip_rates.append(trainer.train_one_epoch()["train/samples_per_s"])
            trainer.logger.close()
        s, b = statistics.median(signlip_rates), statistics.median(bare_rates)
        print(f"(b) training clips/s, {len(y)} clips × {args.repeats} alternating epochs, batch 8, 2 threads")
        print(f"    bare PyTorch step on tensors: {b:8.2f}  {fmt(bare_rates)}")
        print(f"    signlip Trainer epoch:        {s:8.2f}  {fmt(signlip_rates)}")
        print(f"    ratio signlip/bare: {s / b:.3f}  (target ≥ 0.9)", flush=True)

    if "c" not in skip:
        from signlip.inference import bfloat16_supported, for_cpu_inference

        torch.manual_seed(0)
        model = build_model("lip_cnnlstm", num_classes=4).eval()
        forms = {"eager PyTorch": model, "for_cpu_inference (oneDNN, BN folded)": for_cpu_inference(model)}
        if bfloat16_supported():
            forms["for_cpu_inference, bfloat16 convs"] = for_cpu_inference(model, torch.bfloat16)
        one = torch.rand(1, 1, 32, 64, 96)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for name, form in forms.items():
                ms = latency_ms(form, one, args.latency_runs)
                print(f"(c) lip_cnnlstm batch-1 latency, {threads} thread(s), {name}: {ms:.2f} ms "
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
