"""Live (sliding-window) recognition on this CPU, end to end, in one run:

    OMP_WAIT_POLICY=PASSIVE python scripts/bench_live.py [--frames 150] [--repeats 3]

Each pipeline is `signlip.deploy.stream.run_stream` — what `signlip predict input=… stream=true` runs: decode
frame by frame (resampled to the task's fps), the reader's per-frame tracker, a window every hop through the
prepare functions, the model — measured in frames/s of video consumed, against its MediaPipe part alone on the same
decoded frames (the bar a live path can at best approach).

- lip: lip_cnnlstm at its recipe shapes (32 frames of 64×96), window 32, hop 8, on a 720×528 video of a real face
  (scikit-image's astronaut photo, shifted a little every frame). The checkpoint is one training step of the recipe
  on the built-in synthetic mouths, with its fingerprint switched to roi=mediapipe (the stock face model's sha256),
  so the face landmarker + mouth crop run on every frame as for a real checkpoint — its weights do not change the
  cost. Target ≥ 30 frames/s (ref 004's real-time bar).
- rgb: the MobileNetV3 student (mobilenetv3 recipe: 16 frames of 112×112, roi none), window 16, hop 4, same video.
- holistic: asl_tcn_transformer (recipe preset, 62 points), face + hands + pose landmarkers on a 720×528 video of a
  real hand (handSrc.jpg); window 60, hop 15. Plus two speed-ups measured for their effect on the landmarks: the
  frames downscaled to 360 px on the long side before detection, and the face landmarker skipped (face=false).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"


def face_video(path: Path, n: int) -> Path:
    import cv2
    from skimage.data import astronaut

    from signlip.data.clips.video import write_video

    face = cv2.resize(astronaut(), (528, 528))
    canvas = np.full((528, 720, 3), 90, np.uint8)
    frames = []
    for i in range(n):
        f = canvas.copy()
        x = 96 + int(12 * np.sin(i / 9))
        f[:, x:x + 528] = face
        frames.append(f)
    return write_video(path, np.stack(frames), fps=25)


def hand_video(path: Path, n: int) -> Path:
    import cv2

    from signlip.data.clips.video import write_video

    hand = cv2.cvtColor(cv2.imread(str(MODELS / "handSrc.jpg")), cv2.COLOR_BGR2RGB)
    hand = cv2.resize(hand, (720, 528))
    return write_video(path, np.stack([np.roll(hand, int(8 * np.sin(i / 7)), axis=1) for i in range(n)]), fps=25)


def checkpoint(task: str, root: Path, overrides: list[str]) -> Path:
    """One training step of the task's recipe on a few synthetic samples (shapes as the recipe's)."""
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import train_in_process

    result = train_in_process(root / task, [f"task={task}", *overrides, "trainer.max_epochs=1",
                                            "trainer.limit_train_batches=1", "trainer.evaluate_test=false",
                                            "trainer.device=cpu"])
    return Path(result["checkpoint_dir"]) / "best.pt"


def tracker_alone(make, frames: list[np.ndarray]) -> float:
    """Frames/s of a per-frame tracker over decoded frames."""
    with make() as tracker:
        t0 = time.perf_counter()
        for i, f in enumerate(frames):
            tracker(f, round(i * 40.0))
        return len(frames) / (time.perf_counter() - t0)


def stream_fps(rec, video: Path, window: int, hop: int) -> float:
    from signlip.deploy.stream import run_stream

    return run_stream(rec, str(video), window=window, hop=hop).fps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import torch

    from signlip.checkpoint import load_checkpoint
    from signlip.data.clips.roi import ALIGNMENT, FaceTracker, model_sha256
    from signlip.data.clips.video import read_frames
    from signlip.data.holistic.extract import HolisticTracker
    from signlip.deploy.predict import Recogniser

    torch.set_num_threads(2)
    tmp = Path(tempfile.mkdtemp(prefix="bench_live_"))
    fv, hv = face_video(tmp / "face.mp4", args.frames), hand_video(tmp / "hand.mp4", args.frames)
    small = ["data.synthetic.n_people=[2,1,1]", "data.synthetic.per_class_per_person=1"]
    lip = load_checkpoint(checkpoint("lip_cnnlstm", tmp, [*small, f"data.synthetic.root={tmp}/lip",
                                                          f"data.cache_dir={tmp}/c", f"data.manifests_dir={tmp}/m"]))
    lip["preprocessing"]["fingerprint"].update(roi="mediapipe", roi_alignment=ALIGNMENT,
                                               face_model_sha256=model_sha256(MODELS / "face_landmarker.task"))
    lip["config"]["data"]["prepare"]["models_dir"] = str(MODELS)
    rgb = checkpoint("mobilenetv3", tmp, [*small, f"data.synthetic.root={tmp}/rgb", f"data.cache_dir={tmp}/c2",
                                          f"data.manifests_dir={tmp}/m2", "data.synthetic.n_classes=2"])
    hol = checkpoint("asl_tcn_transformer", tmp, [*small, f"data.synthetic.root={tmp}/hol"])
    recs = {"lip": Recogniser.load(lip, device="cpu"), "rgb": Recogniser.load(rgb, device="cpu"),
            "holistic": Recogniser.load(hol, device="cpu", models_dir=str(MODELS))}
    face_frames = list(read_frames(fv, fps=25, max_side=640))
    hand_frames = list(read_frames(hv))
    small_hand = [np.ascontiguousarray(f[::2, ::2]) for f in hand_frames]  # 360 px on the long side
    face_model = MODELS / "face_landmarker.task"
    rows: dict[str, list[float]] = {}
    for _ in range(args.repeats):  # alternate, so machine noise hits every row alike
        for name, value in (
            ("lip: face landmarker alone", tracker_alone(lambda: FaceTracker(face_model), face_frames)),
            ("lip: stream end to end", stream_fps(recs["lip"], fv, 32, 8)),
            ("rgb: stream end to end (MobileNetV3)", stream_fps(recs["rgb"], fv, 16, 4)),
            ("holistic: landmarkers alone", tracker_alone(lambda: HolisticTracker(MODELS), hand_frames)),
            ("holistic: stream end to end", stream_fps(recs["holistic"], hv, 60, 15)),
            ("holistic: landmarkers alone, 360 px", tracker_alone(lambda: HolisticTracker(MODELS), small_hand)),
            ("holistic: landmarkers alone, face=false",
             tracker_alone(lambda: HolisticTracker(MODELS, face=False), hand_frames)),
        ):
            rows.setdefault(name, []).append(value)
    # Effect of the downscale on the landmarks (normalised image coordinates, so comparable across sizes).
    with HolisticTracker(MODELS) as a, HolisticTracker(MODELS) as b:
        full = np.stack([a(f, i * 40) for i, f in enumerate(hand_frames)])
        half = np.stack([b(f, i * 40) for i, f in enumerate(small_hand)])
    both = ~np.isnan(full[..., 0]) & ~np.isnan(half[..., 0])
    shift = np.abs(full[..., :2] - half[..., :2])[both]
    print(f"frames: {args.frames} at 25 fps, 720×528; medians of {args.repeats} alternating runs, 2 threads")
    print(f"{'pipeline':<44} {'frames/s':>9}")
    for name, values in rows.items():
        print(f"{name:<44} {statistics.median(values):9.1f}")
    median = {name: statistics.median(values) for name, values in rows.items()}
    lip_ratio = median["lip: stream end to end"] / median["lip: face landmarker alone"]
    print(f"lip stream / face landmarker alone: {lip_ratio:.2f}")
    detected_full = int((~np.isnan(full[:, 468:489, 0])).all(1).sum() + (~np.isnan(full[:, 522:543, 0])).all(1).sum())
    detected_half = int((~np.isnan(half[:, 468:489, 0])).all(1).sum() + (~np.isnan(half[:, 522:543, 0])).all(1).sum())
    print(f"360 px vs full frames: hands found in {detected_half} vs {detected_full} frame-slots; where both found a "
          f"point, |Δxy| median {np.median(shift):.4f}, p95 {np.percentile(shift, 95):.4f} (image widths)")


if __name__ == "__main__":
    main()
