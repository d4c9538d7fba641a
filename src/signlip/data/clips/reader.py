"""New videos (or prepared clips) for `signlip predict`: decoded, resampled, cropped and sampled by the preparer
that `signlip prepare` runs — `VideoClipPreparer`, built from the checkpoint's fingerprint — never a copy of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from signlip.data.cache import Item
from signlip.data.clips.datamodule import ClipTransform, VideoClipPreparer
from signlip.errors import SignlipError
from signlip.registry import READERS

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def face_model_at_hand(fingerprint: dict[str, Any], data_config: dict[str, Any], models_dir: str | None) -> str | None:
    """The face landmarker the checkpoint's mouth crops were made with, found under `models_dir` (default: the
    training config's) and checked by content; None when the checkpoint needs no face model (roi none / box)."""
    if fingerprint.get("roi") != "mediapipe":
        return None
    from signlip.data.clips.roi import model_sha256

    settings = data_config.get("prepare") or {}
    folder = models_dir or settings.get("models_dir", "models")
    path = Path(folder) / settings.get("face_model", "face_landmarker.task")
    if not path.is_file():
        raise SignlipError(f"this checkpoint crops mouths with MediaPipe's face landmarker, but {path} is not here — "
                           f"run `python scripts/fetch_models.py`, or pass models_dir=<folder with "
                           f"{path.name}>")
    if model_sha256(path) != fingerprint.get("face_model_sha256"):
        raise SignlipError(f"{path} is not the face model this checkpoint's data was prepared with (sha256 "
                           f"{model_sha256(path)[:12]}… vs {str(fingerprint.get('face_model_sha256'))[:12]}…) — put "
                           f"the original face_landmarker.task in models_dir, or retrain with this one")
    return str(path)


@READERS.register("clips")
class ClipReader:
    """A video → the uint8 clip `(T, H, W[, 3])` prepare would cache; a `.npy` → a clip prepare already made.
    Batches of one go through the checkpoint's `ClipTransform` (no augmentation)."""

    suffixes = (*VIDEO_SUFFIXES, ".npy")

    def __init__(self, preprocessing: dict[str, Any], data_config: dict[str, Any], models_dir: str | None = None):
        fp = preprocessing["fingerprint"]
        if fp.get("kind") != "video_clips":
            raise SignlipError(f"this checkpoint's clips were not prepared from videos ({fp.get('kind')!r}) — predict "
                               f"on prepared .npy clips")
        self.roi = fp["roi"]
        if self.roi == "mediapipe":
            from signlip.data.clips.roi import ALIGNMENT

            if fp.get("roi_alignment") != ALIGNMENT:
                raise SignlipError(f"this checkpoint's mouth crops were made by an older signlip ("
                                   f"{fp.get('roi_alignment') or 'axis-aligned boxes'}; this one crops along the "
                                   f"mouth's axis, {ALIGNMENT}) — predicting with it would feed crops unlike its "
                                   f"training data: prepare the data again and retrain")
        self.preparer = VideoClipPreparer(fp["fps"], fp["n_frames"], fp["size"], fp["gray"], fp["roi"],
                                          fp.get("margin", 0.35), fp.get("smoothing", 0.6),
                                          face_model_at_hand(fp, data_config, models_dir))
        # Whole sentences (n_frames None, continuous recognition) have any length; their frames a fixed shape.
        self.frame_shape = (*map(int, fp["size"]), *(() if fp["gray"] else (3,)))
        self.clip_shape = (int(fp["n_frames"]), *self.frame_shape) if fp["n_frames"] is not None else None
        # Word boundaries (LRW): a video's own `.txt` beside it gives its word's length, else the word is taken as the
        # whole clip (all ones) — as training took a clip without its .txt.
        self.word_boundary = bool(preprocessing.get("word_boundary", False))
        self.told_no_boundary = False
        self.transform = ClipTransform(preprocessing["mean"], preprocessing["std"], None, self.word_boundary)
        # Streaming: frames at the training frame rate, windows as long as a training clip.
        self.stream_fps, self.max_side = float(fp["fps"]), self.preparer.max_side
        self.default_window = int(fp["n_frames"] or 16)

    @staticmethod
    def input_steps(prep: dict[str, Any]) -> dict[str, Any]:
        """How an app without signlip turns one sample into the model input (the ONNX sidecar's `input_steps`)."""
        fp = prep.get("fingerprint", {})
        return {"numpy_reproducible": False,
                "steps": [f"decode the video and crop/resize as `signlip prepare` does (fingerprint below: fps "
                          f"{fp.get('fps')}, {fp.get('n_frames')} frames, size {fp.get('size')}, "
                          f"gray {fp.get('gray')}, "
                          f"roi {fp.get('roi')}) → uint8 frames (T, H, W) gray or (T, H, W, 3) RGB",
                          "x = frames / 255 as float32, layout (C, T, H, W); x = (x − mean[c]) / std[c] per channel",
                          *(["word_boundary: append one more channel, constant over each frame: 1 on the word's "
                             "frames (⌊duration / 2 · fps⌋ either side of the middle frame, one more before: "
                             "signlip.data.formats.lrw.word_boundary), 0 elsewhere; all 1 when the word's duration "
                             "is unknown → x (C + 1, T, H, W)"] if prep.get("word_boundary") else []),
                          "add the batch axis: x (1, C, T, H, W)" + (" with C + 1 channels"
                                                                     if prep.get("word_boundary") else "")],
                "note": "the frame decoding and mouth ROI (MediaPipe) are signlip prepare's; from prepared uint8 "
                        "frames "
                        "on, the steps are plain arithmetic",
                "function": "signlip.data.clips.datamodule.ClipTransform"}

    def read(self, path: str) -> dict[str, torch.Tensor]:
        if Path(path).suffix.lower() == ".npy":
            clip = np.load(path, allow_pickle=False)
            expected = self.clip_shape or ("T", *self.frame_shape)
            if clip.dtype != np.uint8 or clip.ndim != len(expected) or \
                    (clip.shape if self.clip_shape else clip.shape[1:]) != (self.clip_shape or self.frame_shape):
                raise SignlipError(f"{path} holds {clip.dtype} {clip.shape}, not a clip of this checkpoint "
                                   f"(uint8 {tuple(expected)}) — give the video, or a clip prepared with its settings")
        elif self.roi == "box":
            raise SignlipError("this checkpoint crops a fixed box (roi=box, manifest columns x,y,w,h) from each "
                               "video — predict on its prepared .npy clips, or on videos cropped to that box")
        else:
            clip = self.preparer(Item(str(path), "", "", ""))
        x = torch.from_numpy(np.ascontiguousarray(clip))[None]
        if self.clip_shape is None:  # whole sentences, as the dataset batches them: any length, with a mask
            return {"x": x, "mask": torch.ones(x.shape[:2], dtype=torch.bool)}
        txt = Path(path).with_suffix(".txt")
        if self.word_boundary and txt.is_file():
            from signlip.data.formats.lrw import read_duration, word_boundary

            return {"x": x, "boundary": torch.from_numpy(word_boundary(read_duration(txt), x.shape[1],
                                                                       self.stream_fps))[None]}
        if self.word_boundary and not self.told_no_boundary:
            from signlip.run_logger import console

            self.told_no_boundary = True  # once per run: a folder of clips without .txt files says it once
            console.print(f"note: no {txt.name} beside {path} (LRW's word duration): its word is taken as the whole "
                          f"clip, as training took clips without one — put the .txt beside each input",
                          soft_wrap=True, markup=False)
        return {"x": x}

    def tracker(self):
        """Per-frame work of a stream: the face tracker (roi=mediapipe: tracking carries across windows), else
        None."""
        if self.roi == "box":
            raise SignlipError("this checkpoint crops a fixed box (roi=box) from each video — stream videos that are "
                               "already cropped to that box")
        if self.roi != "mediapipe":
            return None
        from signlip.data.clips.roi import FaceTracker

        return FaceTracker(self.preparer.face_model)

    def window(self, frames: list[np.ndarray], tracked: list[np.ndarray] | None) -> dict[str, torch.Tensor]:
        """A stream window's RGB frames (and their face landmarks) → the sample prepare would make of them."""
        landmarks = np.stack(tracked) if tracked else None
        clip = self.preparer.clip_from_frames(np.stack(frames), landmarks=landmarks)
        return {"x": torch.from_numpy(np.ascontiguousarray(clip))[None]}
