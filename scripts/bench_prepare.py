"""Prepare speed on real video against MediaPipe's landmarkers alone on the same frames, 1 worker, in one run:

    OMP_WAIT_POLICY=PASSIVE python scripts/bench_prepare.py [--repeats 5] [--lip-frames 281] [--hand-frames 100]

Videos (720×528, 25 fps, mp4v, written once into a temp folder): a real face (scikit-image's astronaut, swaying a
little every frame; 281 frames = an 11 s talk) and a real hand (Debian's handSrc.jpg in models/, shifted every frame;
100 frames = a 4 s sign), as scripts/bench_live.py makes them.

Rows, each timed over the whole video (wall and process CPU time, so MediaPipe's own threads count):

- lip, landmarker alone: the Face Landmarker (VIDEO mode, as `FaceTracker` creates it) over the frames the tracker
  sees in prepare — decoded beforehand, outside the timing; `detect_for_video` + `mp.Image` per frame only.
- lip, prepare per item: `VideoClipPreparer.prepare` (decode, track, crop, 32 frames of 64×96 gray), landmarker
  creation included (one per video, as prepare does).
- lip, old path: what `prepare` ran before this benchmark's changes — `read_frames` (every frame shrunk to 640 px
  with INTER_AREA, stacked), `track_face`, a crop of every frame, then the temporal sampling.
- lip, `prepare_clips` run: a fresh `python` process running `prepare_clips` (workers=1) on a one-video manifest:
  interpreter start, imports, fingerprint (model sha256), the item, the report. Imports alone are timed as well.
- holistic: the same with the face, hand and pose landmarkers alone vs `HolisticVideoPreparer` (its per-video
  `extract_holistic`) vs `prepare_holistic` in a fresh process.

Ratio = landmarkers-alone time / row time for the same frames (1.0 = prepare costs nothing beyond MediaPipe). Rows
alternate inside each repeat, so machine noise hits them alike; medians are printed with the load (uptime).

Then the peak memory of one lip prepare per item in a fresh process (max RSS growth over the item), as prepare runs
and as it runs for a container that declares no frame count (every source frame held while it fits the budget).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from bench_live import MODELS, face_video, hand_video  # noqa: E402  (the same real-media videos as the live bench)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn) -> tuple[float, float]:
    """(wall s, CPU s) of one call."""
    c, t = _cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - t, _cpu() - c


def landmarkers_alone(runners: list, frames: list[np.ndarray]) -> None:
    import mediapipe as mp

    for i, f in enumerate(frames):
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=f)
        for r in runners:
            r.detect_for_video(image, round(i * 40.0))


def face_alone(frames: list[np.ndarray]) -> tuple[float, float]:
    from signlip.data.clips.roi import FaceTracker

    with FaceTracker(MODELS / "face_landmarker.task") as tracker:
        return timed(lambda: landmarkers_alone([tracker.landmarker], frames))


def holistic_alone(frames: list[np.ndarray]) -> tuple[float, float]:
    from signlip.data.holistic.extract import HolisticTracker

    with HolisticTracker(MODELS) as tracker:
        runners = [tracker.runners[k] for k in ("face", "pose", "hand")]
        return timed(lambda: landmarkers_alone(runners, frames))


def old_lip_path(preparer, path: Path) -> np.ndarray:
    from signlip.data.clips.roi import extract_roi, track_face
    from signlip.data.clips.video import read_frames, temporal_sample

    frames = read_frames(path, fps=preparer.fps, max_side=preparer.max_side)
    landmarks = track_face(frames, preparer.face_model, fps=preparer.fps)
    clip = extract_roi(frames, "mediapipe", model_path=preparer.face_model, size=preparer.size, fps=preparer.fps,
                       margin=preparer.margin, smoothing=preparer.smoothing, landmarks=landmarks)
    return temporal_sample(clip, preparer.n_frames)


def fresh_process(code: str) -> tuple[float, float]:
    """Wall and CPU (user + sys of the child) of `python -c code`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - t, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def peak_memory_mb(video: Path, without_count: bool) -> float:
    """Max RSS growth (MB) of one lip prepare per item in a fresh process; `without_count`: as for a container that
    declares no frame count."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the (large) parent into a forked-and-exec'd child.
    code = (f"from signlip.data.cache import Item\nfrom signlip.data.clips import video\n"
            f"from signlip.data.clips.datamodule import VideoClipPreparer\n"
            f"{'video._expected_length = lambda stats, fps: 0' if without_count else ''}\n"
            f"def hwm(): return int(next(x for x in open('/proc/self/status') if x.startswith('VmHWM')).split()[1])\n"
            f"lip = VideoClipPreparer(25.0, 32, (64, 96), True, 'mediapipe', 0.35, 0.6, "
            f"'{MODELS / 'face_landmarker.task'}')\n"
            f"before = hwm()\n"
            f"lip.prepare(Item('{video}', 'a', 'train', ''))\n"
            f"print((hwm() - before) / 1024)\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--lip-frames", type=int, default=281)
    ap.add_argument("--hand-frames", type=int, default=100)
    args = ap.parse_args()

    from signlip.data.cache import Item
    from signlip.data.clips.datamodule import VideoClipPreparer
    from signlip.data.clips.video import iter_frames
    from signlip.data.holistic.datamodule import HolisticVideoPreparer
    from signlip.data.holistic.extract import read_video_rgb

    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench_prepare_"))
    fv, hv = face_video(tmp / "face.mp4", args.lip_frames), hand_video(tmp / "hand.mp4", args.hand_frames)
    for name, video in (("lip", fv), ("hol", hv)):
        (tmp / f"{name}.csv").write_text(f"path,label,split\n{video},a,train\n")
    lip = VideoClipPreparer(25.0, 32, (64, 96), True, "mediapipe", 0.35, 0.6, str(MODELS / "face_landmarker.task"))
    hol = HolisticVideoPreparer(str(MODELS), False, 0.5, True, True)
    # What each tracker sees in prepare: lip — the frames at 25 fps, source size; holistic — every decoded frame.
    lip_frames = list(iter_frames(fv, fps=lip.fps))
    hol_frames = list(read_video_rgb(hv)[0])
    lip_run = (f"from signlip.data.clips.datamodule import prepare_clips; prepare_clips(raw_manifest='{tmp}/lip.csv', "
               f"cache_dir='{tmp}/cl', manifests_dir='{tmp}/m', workers=1, overwrite=True, prepare=dict(fps=25, "
               f"n_frames=32, size=[64, 96], gray=True, roi='mediapipe', models_dir='{MODELS}'))")
    hol_run = (f"from signlip.data.holistic.datamodule import prepare_holistic; prepare_holistic(format='videos', "
               f"raw_manifest='{tmp}/hol.csv', cache_dir='{tmp}/ch', manifests_dir='{tmp}/m', workers=1, "
               f"overwrite=True, prepare=dict(models_dir='{MODELS}', mirrored_input=False, min_confidence=0.5, "
               f"face=True, pose=True))")
    imports = ("import signlip.data.clips.datamodule, signlip.data.holistic.datamodule, signlip.data.cache, cv2; "
               "from mediapipe.tasks.python import vision")
    rows = {
        "lip: face landmarker alone": lambda: face_alone(lip_frames),
        "lip: prepare per item (VideoClipPreparer.prepare)": lambda: timed(lambda: lip.prepare(Item(str(fv), "a",
                                                                                                     "train", ""))),
        "lip: old path (shrink + stack every frame, crop all)": lambda: timed(lambda: old_lip_path(lip, fv)),
        "lip: prepare_clips run, fresh process": lambda: fresh_process(lip_run),
        "holistic: face + hand + pose landmarkers alone": lambda: holistic_alone(hol_frames),
        "holistic: prepare per item (HolisticVideoPreparer)": lambda: timed(lambda: hol(Item(str(hv), "a", "train",
                                                                                             ""))),
        "holistic: prepare_holistic run, fresh process": lambda: fresh_process(hol_run),
        "imports alone, fresh process": lambda: fresh_process(imports),
    }
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in rows}
    for _ in range(args.repeats):
        for name, fn in rows.items():
            results[name].append(fn())
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in results.items()}
    print(f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, after "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs); medians of {args.repeats}; "
          f"lip {len(lip_frames)} frames 720×528, holistic {len(hol_frames)} frames 720×528")
    print(f"{'row':56s} {'wall s':>7s} {'frames/s':>9s} {'ratio':>6s} {'CPU s':>7s} {'CPU ratio':>9s}")
    for name, (wall, cpu) in med.items():
        base = "lip: face landmarker alone" if name.startswith("lip") else \
            "holistic: face + hand + pose landmarkers alone"
        n = len(lip_frames) if name.startswith("lip") else len(hol_frames)
        if name.startswith("imports"):
            print(f"{name:56s} {wall:7.2f} {'':>9s} {'':>6s} {cpu:7.2f}")
            continue
        print(f"{name:56s} {wall:7.2f} {n / wall:9.1f} {med[base][0] / wall:6.2f} {cpu:7.2f} "
              f"{med[base][1] / cpu:9.2f}")
    for label, without_count in (("as prepare runs", False), ("container without a frame count", True)):
        print(f"lip: prepare per item, peak memory growth, {label:31s} {peak_memory_mb(fv, without_count):7.0f} MB")


if __name__ == "__main__":
    main()
