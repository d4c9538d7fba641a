"""Benchmark continuous signing on CPU: the MobileNetV3 student vs the I3D teacher (tasks cslr_rgb / cslr_rgb_teacher,
models as their configs build them) — per-frame latency over a whole sentence, and frames/s when streaming.

    OMP_WAIT_POLICY=PASSIVE python scripts/bench_sentence_latency.py [--frames 64] [--sizes 64 112]
                                                                     [--window 50] [--repeats 5]

Offline: one eval-mode forward pass over a sentence of `--frames` RGB frames (batch 1), divided by the frames.
Streaming, one frame arriving at a time, recognising over the last `--window` frames (2 s at 25 fps):
- student: its backbone runs once per new frame (features are cached; frames are independent until the temporal
  head), then the BiLSTM head and classifier over the window's cached features — the cost of one new frame;
- teacher: I3D mixes frames from its first layer on, so nothing can be cached: it reruns over the window, and since
  it emits one output per 8 frames, once per 8 new frames — the cost per frame is a window pass / 8.
Frames/s = 1000 / (ms per frame); the reference's real-time bar is 30. Models have random weights (speed does not
depend on them); every repetition times all of them in one process, medians reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import deque

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads must not spin on a shared machine

import torch  # noqa: E402

from signlip.benchmarking import compose_task  # noqa: E402
from signlip.registry import MODELS, load_all  # noqa: E402

N_OUTPUTS = 7  # the synthetic sentences' 6 glosses + blank


def build(task: str) -> torch.nn.Module:
    config = compose_task(task)[0]
    kwargs = {k: v for k, v in config["model"].items() if k != "name"}
    load_all()
    return MODELS.get(config["model"]["name"])(num_classes=N_OUTPUTS, **kwargs).eval()


def timed(fn, runs: int) -> float:
    """Median ms of `fn()` over `runs` calls after 2 warm-up calls."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def student_stream_ms(student: torch.nn.Module, size: int, window: int, frames: int = 40) -> float:
    """ms per new frame: backbone on it + the head over the window's cached features (after the window filled)."""
    features: deque[torch.Tensor] = deque(maxlen=window)
    for _ in range(window):
        features.append(student.frame_features(torch.randn(1, 3, 1, size, size))[0, 0])
    times = []
    for _ in range(frames):
        frame = torch.randn(1, 3, 1, size, size)
        start = time.perf_counter()
        features.append(student.frame_features(frame)[0, 0])
        student.classify_features(torch.stack(list(features))[None]).argmax(-1)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=64, help="frames of the offline sentence")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 112], help="frame sides (the tasks use 64)")
    parser.add_argument("--window", type=int, default=50, help="frames a stream recognises over")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    student, teacher = build("cslr_rgb"), build("cslr_rgb_teacher")
    params = {n: sum(p.numel() for p in m.parameters()) for n, m in (("student", student), ("teacher", teacher))}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; student {params['student']:,} parameters, "
          f"teacher {params['teacher']:,}; sentence {args.frames} frames, stream window {args.window}")
    with torch.inference_mode():
        for size in args.sizes:
            rows: dict[str, list[float]] = {k: [] for k in ("s_off", "t_off", "s_stream", "t_stream")}
            sentence = torch.randn(1, 3, args.frames, size, size)
            window = torch.randn(1, 3, args.window, size, size)
            for _ in range(args.repeats):
                rows["s_off"].append(timed(lambda x=sentence: student(x), 1) / args.frames)
                rows["t_off"].append(timed(lambda x=sentence: teacher(x), 1) / args.frames)
                rows["s_stream"].append(student_stream_ms(student, size, args.window))
                rows["t_stream"].append(timed(lambda x=window: teacher(x), 1) / 8)  # one window pass per 8 frames
            m = {k: statistics.median(v) for k, v in rows.items()}
            print(f"{size}×{size}: per-frame offline  student {m['s_off']:.2f} ms, teacher {m['t_off']:.2f} ms "
                  f"(teacher/student {m['t_off'] / m['s_off']:.1f}×)")
            print(f"{size}×{size}: streaming          student {1000 / m['s_stream']:.0f} frames/s "
                  f"({m['s_stream']:.1f} ms/frame), teacher {1000 / m['t_stream']:.0f} frames/s "
                  f"({m['t_stream']:.1f} ms/frame; a {args.window}-frame pass every 8 frames)")


if __name__ == "__main__":
    main()
