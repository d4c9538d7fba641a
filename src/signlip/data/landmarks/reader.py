"""New landmark files for `signlip predict`: one `.npy` → the padded, normalised sequence the dataset holds."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from signlip.data.landmarks.datamodule import LandmarkTransform, fit_length, load_sequence, normalise_sequence
from signlip.registry import READERS


@READERS.register("landmarks")
class LandmarkReader:
    """`(T, K, 3)` points or `(T, F)` features, loaded, padded / truncated and normalised exactly as `load_split`
    does, standardised with the train-split statistics stored in the checkpoint."""

    suffixes = (".npy",)

    def __init__(self, preprocessing: dict[str, Any], data_config: dict[str, Any], models_dir: str | None = None):
        del data_config, models_dir  # landmark files need no extraction models
        self.sequence_length = int(preprocessing["sequence_length"])
        self.feature_shape = tuple(preprocessing["feature_shape"])
        self.normalise = preprocessing.get("normalise", "none")
        self.transform = LandmarkTransform(np.asarray(preprocessing["mean"]), np.asarray(preprocessing["std"]), None)
        # Streaming runs over the frames (rows) of a long `.npy`, windows as long as a training sequence.
        self.stream_fps, self.max_side, self.default_window = None, None, self.sequence_length

    @staticmethod
    def input_steps(prep: dict[str, Any]) -> dict[str, Any]:
        """How an app without signlip turns one sample into the model input (the ONNX sidecar's `input_steps`)."""
        length = prep["sequence_length"]
        steps = [f"load one sample: float32 landmarks (T, {', '.join(map(str, prep['feature_shape']))}) per frame "
                 f"(NaN = a point not detected)",
                 f"pad to sequence_length={length} frames by repeating the last frame, or keep the first {length}; "
                 f"mask[t] = t < min(T, {length})"]
        if prep.get("normalise") == "sequence" and len(prep["feature_shape"]) == 2:
            steps.append("normalise == 'sequence' (over all sequence_length frames, padding included): centre = "
                         "nanmean "
                         "of every point of every frame (a 3-vector); spread = nanmean over frames and points of the "
                         "Euclidean distance from each point to the nanmean point of its frame; if spread is finite "
                         "and "
                         "≥ 1e-6: points = (points − centre) / spread")
        steps += ["flatten each frame to F values; x = (x − mean) / std with the per-feature mean and std below; "
                  "NaN → 0; "
                  "x = x · mask (padded frames become 0)",
                  f"add the batch axis: x (1, {length}, F) float32, mask (1, {length}) bool"]
        return {"numpy_reproducible": True, "steps": steps,
                "function": "signlip.data.landmarks.datamodule: load_sequence, normalise_sequence, LandmarkTransform"}

    def read(self, path: str) -> dict[str, torch.Tensor]:
        return self.sample(*load_sequence(path, self.sequence_length, self.feature_shape))

    def tracker(self) -> None:
        return None  # no extraction: the rows of the file are the frames

    def window(self, frames: list[np.ndarray], tracked: None) -> dict[str, torch.Tensor]:
        """A stream window's rows → the padded, normalised sample `load_sequence` + `load_split` would make."""
        del tracked
        return self.sample(*fit_length(np.stack(frames).astype(np.float32, copy=False), self.sequence_length))

    def sample(self, arr: np.ndarray, real: int) -> dict[str, torch.Tensor]:
        if self.normalise == "sequence" and arr.ndim == 3:
            arr = normalise_sequence(arr)
        mask = torch.arange(self.sequence_length)[None, :] < real
        return {"x": torch.from_numpy(np.ascontiguousarray(arr))[None], "mask": mask}
