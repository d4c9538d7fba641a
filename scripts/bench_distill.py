"""Teacher vs student on this CPU: parameters, MB, batch-1 latency per clip, streaming frames/s, and one
distillation epoch with cached teacher logits vs a teacher forward every step. Repetitions alternate between the
contenders so that load changes hit both alike; medians are printed as Markdown.

    python scripts/bench_distill.py [--reps 5] [--clips 16] [--variant large,small] [--frames T] [--size S]

The recipe is `signlip distill`'s, composed from conf/ (conf/distill.yaml over the student's task, the teacher's
task named by its `teacher` group): student and teacher models, data (the built-in synthetic RGB sign clips,
prepared on first use), batch size, optimizer, schedule, KD temperature and α. The teacher has random weights (its
speed does not depend on them). The distillation epoch is the Trainer's own (`Trainer.train_one_epoch` over the
first `--clips` clips of its epoch order), once with `distill.cache_teacher=false` and once with the cache filled
for those clips.
`--variant` takes one or more comma-separated student variants; the distillation epoch uses the first. `--frames`,
`--size`, `--classes` and `--batch` override the recipe (data.prepare.n_frames, data.prepare.size,
data.synthetic.n_classes, data.batch_size); a new clip size prepares the synthetic clips again.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from signlip.benchmarking import compose_task, epoch_batches, task_run

STUDENT = "mobilenetv3"


def size_mb(model: torch.nn.Module) -> float:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 2**20


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.inference_mode()
def latency(model: torch.nn.Module, x: torch.Tensor) -> float:
    t = time.perf_counter()
    model(x)
    return time.perf_counter() - t


def streaming_fps(student, frames: torch.Tensor, window: int, threads: int) -> float:
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


def timed_epoch(trainer) -> float:
    """Seconds of one `Trainer.train_one_epoch` (capped at trainer.limit_train_batches)."""
    t = time.perf_counter()
    trainer.train_one_epoch()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--frames", type=int, default=None, help="clip length T (default: the recipe's)")
    ap.add_argument("--size", type=int, default=None, help="clip height = width (default: the recipe's)")
    ap.add_argument("--classes", type=int, default=None, help="synthetic classes (default: the recipe's)")
    ap.add_argument("--variant", default="large", help="student variant(s), comma-separated: large,small")
    ap.add_argument("--clips", type=int, default=16, help="clips in the distillation epoch (0: skip it)")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: the distillation recipe's)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-root", default=None, help="synthetic RGB clips folder (default: the recipe's)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from signlip.build import instantiate, make_trainer, model_spec
    from signlip.objectives.distillation import DistillObjective, freeze
    from signlip.registry import MODELS
    from signlip.run_logger import RunLogger

    variants = [v.strip() for v in args.variant.split(",") if v.strip()]
    overrides = [f"model.variant={variants[0]}"]
    for flag, key in ((args.frames, "data.prepare.n_frames"), (args.classes, "data.synthetic.n_classes"),
                      (args.batch, "data.batch_size"), (args.data_root, "data.synthetic.root")):
        if flag is not None:
            overrides.append(f"{key}={flag}")
    if args.size is not None:
        overrides.append(f"data.prepare.size=[{args.size},{args.size}]")
    base, _, _ = compose_task(STUDENT, overrides, "distill")
    batch = int(base["data"]["batch_size"])
    if args.clips > 0:
        overrides.append(f"trainer.limit_train_batches={max(1, args.clips // batch)}")
    teacher_config = compose_task(base["teacher"]["task"])[0]  # only its model group is used, on the student's data
    kd = base["distill"]

    def distill(data, student):
        # The teacher task's model on the student's data (same clips, same classes), random weights.
        teacher = freeze(instantiate(MODELS, model_spec(teacher_config, data)))
        return DistillObjective(teacher, temperature=kd["temperature"], alpha=kd["alpha"], cache_teacher=False,
                                label_smoothing=base["objective"]["label_smoothing"])

    config, settings, run = task_run(STUDENT, overrides, device="cpu", config_name="distill", objective=distill)
    teacher = run.objective.teacher
    students = {variants[0]: run.model}
    for v in variants[1:]:
        other = compose_task(STUDENT, [*overrides, f"model.variant={v}"], "distill")[0]
        students[v] = instantiate(MODELS, model_spec(other, run.data))
    for m in students.values():
        m.eval()
    models = {"teacher": teacher, **students}
    clip = run.data.batch_transform(run.data.splits["val"].__getitems__([0]), training=False)["x"]  # (1, C, T, H, W)
    _, channels, t, h, w = clip.shape
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
            fps[(v, n)].append(streaming_fps(students[v], torch.randn(t + 48, channels, h, w), t, n))

    ep: dict[str, float] = {}
    precompute_s, cached_n, epoch_clips = 0.0, 0, 0
    if args.clips > 0:  # --clips 0 skips the distillation epochs
        uncached = run.objective
        cached = DistillObjective(teacher, temperature=kd["temperature"], alpha=kd["alpha"], cache_teacher=True,
                                  label_smoothing=uncached.label_smoothing)
        with tempfile.TemporaryDirectory() as tmp:
            log = config["logger"]
            trainer = make_trainer(run, tmp, RunLogger(Path(tmp), enabled=True, tensorboard=log["tensorboard"],
                                                       progress=log["progress"]))
            limit = trainer.settings.limit_train_batches
            # Trainer.fit fills the cache for the whole train split (`cached.setup`); the timed epochs see only the
            # first `limit` batches of epoch 0's order, so only those clips are run through the teacher here.
            t0 = time.perf_counter()
            cached.precompute(epoch_batches(run, 0, limit, trainer.device), device=trainer.device)
            precompute_s, cached_n = time.perf_counter() - t0, cached.cached
            epoch_clips = min(limit * batch, len(run.data.splits["train"]))
            trainer.settings.limit_train_batches = 1
            timed_epoch(trainer)  # warm-up
            trainer.settings.limit_train_batches = limit
            epoch = {"cached": [], "uncached": []}
            for _ in range(max(1, args.reps // 2)):  # epoch 0's order each time: the same clips for both
                trainer.objective = uncached
                epoch["uncached"].append(timed_epoch(trainer))
                trainer.objective = cached
                epoch["cached"].append(timed_epoch(trainer))
            trainer.logger.close()
        ep = {k: statistics.median(v) for k, v in epoch.items()}

    print(f"\nclip (1, {channels}, {t}, {h}, {w}); {args.threads} threads; {args.reps} alternating repetitions, "
          f"medians\n")
    print("| model | parameters | MB (fp32) | batch-1 latency per clip | clips/s | speed-up vs teacher | "
          f"streaming frames/s, window {t}: {args.threads} threads / 1 thread |")
    print("|---|---|---|---|---|---|---|")
    head = config["model"].get("temporal_head")
    for key, m in models.items():
        name = (f"{teacher_config['model']['name']} teacher" if key == "teacher"
                else f"{config['model']['name']}-{key} student ({head} head)")
        stream = (f"{statistics.median(fps[(key, args.threads)]):.0f} / {statistics.median(fps[(key, 1)]):.0f}"
                  if key in students else "—")
        print(f"| {name} | {params(m):,} | {size_mb(m):.1f} | {med[key] * 1e3:.0f} ms | {1 / med[key]:.2f} | "
              f"{med['teacher'] / med[key]:.1f}× | {stream} |")
    print("\nstreaming: sliding window, per-frame features cached, one backbone pass + the head per new frame; "
          "1 / median time per frame")
    if ep:
        print(f"\ndistillation epoch ({epoch_clips} clips, batch {batch}, student {variants[0]}, "
              f"Trainer.train_one_epoch): teacher every step {ep['uncached']:.1f} s, "
              f"cached logits {ep['cached']:.1f} s ({ep['uncached'] / ep['cached']:.1f}×); "
              f"one-off teacher pass to fill the cache ({cached_n} clips) {precompute_s:.1f} s")


if __name__ == "__main__":
    main()
