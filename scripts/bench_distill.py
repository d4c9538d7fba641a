"""Teacher vs student on this CPU: parameters, MB, batch-1 latency per clip, streaming frames/s, and one
distillation epoch with cached teacher logits vs a teacher forward every step. Repetitions alternate between the
contenders so that load changes hit both alike; medians are printed as Markdown.

    python scripts/bench_distill.py [--reps 5] [--frames 16] [--size 112] [--clips 16] [--variant large,small]

`--variant` takes one or more comma-separated student variants; the distillation epoch uses the first.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from signlip.models.i3d import I3D
from signlip.models.mobilenetv3 import MobileNetV3Student
from signlip.objectives.distillation import DistillObjective


def size_mb(model: torch.nn.Module) -> float:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 2**20


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.inference_mode()
def latency(model: torch.nn.Module, x: torch.Tensor) -> float:
    t = time.perf_counter()
    model(x)
    return time.perf_counter() - t


def streaming_fps(student: MobileNetV3Student, frames: torch.Tensor, window: int, threads: int) -> float:
    """Frames/s of a sliding-window stream: 1 / median time per pushed frame (robust to load spikes)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        stream = student.stream(window)
        for f in frames[:window]:  # fill the window first (warm-up)
            stream.push(f)
        per_frame = []
        for f in frames[window:]:
            t = time.perf_counter()
            stream.push(f)
            per_frame.append(time.perf_counter() - t)
        return 1.0 / statistics.median(per_frame)
    finally:
        torch.set_num_threads(before)


def distill_epoch(objective: DistillObjective, student: torch.nn.Module, clips: torch.Tensor, labels: torch.Tensor,
                  batch_size: int) -> float:
    """One training epoch (forward, KD loss, backward, AdamW step) over `clips` (N, 3, T, H, W)."""
    optimizer = torch.optim.AdamW(student.parameters(), lr=5e-5)
    student.train()
    t = time.perf_counter()
    for start in range(0, len(clips), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(clips)))
        out = objective(student, {"x": clips[idx], "y": labels[idx], "index": idx})
        out["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--classes", type=int, default=6)
    ap.add_argument("--variant", default="large", help="student variant(s), comma-separated: large,small")
    ap.add_argument("--clips", type=int, default=16, help="clips in the distillation epoch (0: skip it)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t, s = args.frames, args.size
    variants = [v.strip() for v in args.variant.split(",") if v.strip()]
    teacher = I3D(args.classes).eval()
    students = {v: MobileNetV3Student(args.classes, variant=v).eval() for v in variants}
    models = {"teacher": teacher, **students}
    clip = torch.randn(1, 3, t, s, s)  # (B, C, T, H, W)
    for m in models.values():
        latency(m, clip)  # warm-up (oneDNN primitive creation)
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(args.reps):  # alternating repetitions
        for k, m in models.items():
            times[k].append(latency(m, clip))
    med = {k: statistics.median(v) for k, v in times.items()}
    # Streaming on the benchmark's threads and on 1 thread: batch-1 frames are small ops, where a second thread
    # often costs more than it gives (and a phone app would run the recogniser on one core).
    fps = {(v, n): [] for v in variants for n in (args.threads, 1)}
    for _ in range(max(1, args.reps // 2)):
        for v, n in fps:
            fps[(v, n)].append(streaming_fps(students[v], torch.randn(t + 48, 3, s, s), t, n))

    ep: dict[str, float] = {}
    precompute_s = 0.0
    if args.clips > 0:  # --clips 0 skips the distillation epochs
        clips = torch.randn(args.clips, 3, t, s, s)
        labels = torch.randint(0, args.classes, (args.clips,))
        epoch = {"cached": [], "uncached": []}
        cached = DistillObjective(teacher, cache_teacher=True)
        t0 = time.perf_counter()
        cached.precompute({"x": clips[i: i + args.batch], "index": torch.arange(i, min(i + args.batch, args.clips))}
                          for i in range(0, args.clips, args.batch))
        precompute_s = time.perf_counter() - t0
        uncached = DistillObjective(teacher, cache_teacher=False)
        train_student = MobileNetV3Student(args.classes, variant=variants[0])
        distill_epoch(uncached, train_student, clips[: args.batch], labels[: args.batch], args.batch)  # warm-up
        for _ in range(max(1, args.reps // 2)):
            epoch["uncached"].append(distill_epoch(uncached, train_student, clips, labels, args.batch))
            epoch["cached"].append(distill_epoch(cached, train_student, clips, labels, args.batch))
        ep = {k: statistics.median(v) for k, v in epoch.items()}

    print(f"\nclip (1, 3, {t}, {s}, {s}); {args.threads} threads; {args.reps} alternating repetitions, medians\n")
    print("| model | parameters | MB (fp32) | batch-1 latency per clip | clips/s | speed-up vs teacher | "
          f"streaming frames/s, window {t}: {args.threads} threads / 1 thread |")
    print("|---|---|---|---|---|---|---|")
    for key, m in models.items():
        name = "I3D teacher" if key == "teacher" else f"MobileNetV3-{key} student (conv1d head)"
        stream = (f"{statistics.median(fps[(key, args.threads)]):.0f} / {statistics.median(fps[(key, 1)]):.0f}"
                  if key in students else "—")
        print(f"| {name} | {params(m):,} | {size_mb(m):.1f} | {med[key] * 1e3:.0f} ms | {1 / med[key]:.2f} | "
              f"{med['teacher'] / med[key]:.1f}× | {stream} |")
    print("\nstreaming: sliding window, per-frame features cached, one backbone pass + the head per new frame; "
          "1 / median time per frame")
    if ep:
        print(f"\ndistillation epoch ({args.clips} clips, batch {args.batch}, student {variants[0]}): "
              f"teacher every step "
              f"{ep['uncached']:.1f} s, cached logits {ep['cached']:.1f} s ({ep['uncached'] / ep['cached']:.1f}×); "
              f"one-off teacher pass to fill the cache {precompute_s:.1f} s")


if __name__ == "__main__":
    main()
