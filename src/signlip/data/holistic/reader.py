"""New signing videos or `(T, 543, 3)` landmark files for `signlip predict`: extracted by the preparer `signlip
prepare` runs (`HolisticVideoPreparer`) and normalised by the data module's own `select_normalize`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from signlip.data.cache import Item
from signlip.data.clips.reader import VIDEO_SUFFIXES
from signlip.data.holistic.augment import HolisticBatchTransform
from signlip.data.holistic.datamodule import HolisticVideoPreparer, _video_fingerprint, load_holistic
from signlip.data.holistic.features import select_normalize
from signlip.errors import SignlipError
from signlip.registry import READERS


@READERS.register("holistic")
class HolisticReader:
    """A video → MediaPipe face + hands + pose `(T, 543, 3)` (with the training config's extraction settings and
    models checked against the checkpoint's); a `.npy` → the same layout as it is. Then the checkpoint's preset,
    length and hand-less-frame settings, and its `HolisticBatchTransform` (no augmentation)."""

    suffixes = (*VIDEO_SUFFIXES, ".npy")

    def __init__(self, preprocessing: dict[str, Any], data_config: dict[str, Any], models_dir: str | None = None):
        self.settings = {k: preprocessing[k] for k in ("preset", "max_len", "drop_handless", "long_mode")}
        self.transform = HolisticBatchTransform(preprocessing["preset"], augment=None,
                                                max_len=int(preprocessing["max_len"]))
        self.source = dict(preprocessing.get("source_fingerprint") or {})
        extraction = dict(data_config.get("prepare") or {})
        if models_dir:
            extraction["models_dir"] = models_dir
        self.extraction = extraction
        self._preparer: HolisticVideoPreparer | None = None
        # Streaming: frames at the video's own rate (as prepare extracts them), 2 s windows.
        self.stream_fps, self.max_side, self.default_window = None, None, 60

    def preparer(self) -> HolisticVideoPreparer:
        """The MediaPipe extraction, built on the first video (a `.npy`-only run needs no models); refused when the
        models at hand differ from those the training landmarks were extracted with."""
        if self._preparer is None:
            preparer = HolisticVideoPreparer(**self.extraction)
            at_hand = _video_fingerprint(preparer)  # also: SignlipError naming a missing model file
            if self.source.get("source") == "mediapipe_tasks":
                changed = sorted(k for k in set(at_hand) | set(self.source) if at_hand.get(k) != self.source.get(k))
                if changed:
                    raise SignlipError(f"the MediaPipe models/settings at hand differ from those this checkpoint's "
                                       f"landmarks were extracted with ({', '.join(changed)}) — put the original "
                                       f".task files in models_dir=…, or retrain on landmarks extracted with these")
            elif self.source.get("source") == "gislr_parquet":
                from signlip.run_logger import console

                console.print("[yellow]note:[/yellow] this checkpoint learned from GISLR parquet landmarks "
                              "(MediaPipe's "
                              "legacy Holistic); videos are extracted with the MediaPipe Tasks landmarkers — the same "
                              "layout, not the same extractor", soft_wrap=True)
            self._preparer = preparer
        return self._preparer

    @staticmethod
    def input_steps(prep: dict[str, Any]) -> dict[str, Any]:
        """How an app without signlip turns one sample into the model input (the ONNX sidecar's `input_steps`)."""
        return {"numpy_reproducible": False,
                "steps": [f"(T, 543, 3) MediaPipe holistic landmarks → the '{prep.get('preset')}' points, normalised "
                          f"({prep.get('normalisation')}), resampled to ≤ {prep.get('max_len')} frames",
                          f"→ motion features ({', '.join(prep.get('features', []))}): x (1, T, "
                          f"{prep.get('feature_dim')}) float32, mask (1, T) bool"],
                "note": "the feature pipeline is signlip's own code (not restated here): run it with "
                        "signlip.data.holistic.features.select_normalize + motion_features_torch",
                "function": "signlip.data.holistic.features.select_normalize, "
                            "signlip.data.holistic.augment.HolisticBatchTransform"}

    def check(self, paths: list[str]) -> None:
        """Before any input is read: inputs that need MediaPipe need its models (SignlipError, once, not per file)."""
        if any(Path(p).suffix.lower() != ".npy" for p in paths):
            self.preparer()

    def read(self, path: str) -> dict[str, torch.Tensor]:
        if Path(path).suffix.lower() == ".npy":
            arr = load_holistic(path)
        else:
            arr = self.preparer()(Item(str(path), "", "", ""))  # "no hand found …" for a video without a hand
        return self.sample(arr, str(path))

    def sample(self, arr: np.ndarray, source: str) -> dict[str, torch.Tensor]:
        """`(T, 543, 3)` landmarks → the normalised preset points the dataset holds, as a batch of one."""
        pts, info = select_normalize(arr, **self.settings, source=source)
        if info["n_frames"] == 0:
            raise SignlipError(f"no hand found in any of its {info['n_frames_in']} frames")
        return {"x": torch.from_numpy(np.ascontiguousarray(pts))[None],
                "mask": torch.ones((1, len(pts)), dtype=torch.bool)}

    def tracker(self):
        """Per-frame work of a stream: the face + hand + pose landmarkers, tracking across windows."""
        from signlip.data.holistic.extract import HolisticTracker

        p = self.preparer()  # checks the models against the checkpoint's
        return HolisticTracker(p.models_dir, p.mirrored_input, p.face, p.pose, p.min_confidence)

    def window(self, frames: list[np.ndarray], tracked: list[np.ndarray] | None) -> dict[str, torch.Tensor]:
        """A stream window's per-frame landmarks `(543, 3)` (from the tracker, or rows of a `.npy`) → a sample."""
        return self.sample(np.stack(tracked if tracked is not None else frames), "this window")
