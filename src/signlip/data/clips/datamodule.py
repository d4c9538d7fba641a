"""Video clips: raw videos → prepared uint8 clips (one `.npy` each) → batches. Serves lip reading (gray mouth
crops) and RGB sign video alike.

Decoding and face detection happen once, in `prepare` (`prepare_video_clip`). Training reads the cached uint8
clips (preloaded into memory when they fit, memory-mapped otherwise); `ClipTransform` turns them into float
`(B, C, T, H, W)` on the device, augments them there, and normalises.
"""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path
from typing import Any

import numpy as np
import torch

from signlip.data.base import SPLITS, BatchTransform, DataBundle
from signlip.data.cache import (
    PREPARERS,
    Item,
    Prepared,
    PrepareResult,
    check_fingerprint,
    prepared_locations,
    read_fingerprint,
    read_raw_items,
    require_usable,
    run_prepare,
)
from signlip.data.clips.augment import augment_clips
from signlip.data.clips.picture import draw_sample
from signlip.data.glosses import gloss_vocabulary, most_frequent_sentence, unseen_in
from signlip.data.manifest import Manifest, class_names, label_indices, read_manifest
from signlip.errors import SignlipError
from signlip.registry import DATASETS

SYNTHETIC = {}  # kind → (module, function): generators of raw synthetic videos + manifest
SYNTHETIC["lip"] = ("signlip.data.clips.synthetic_lip", "make_synthetic_lip")
SYNTHETIC["lip_sentences"] = ("signlip.data.clips.synthetic_lip", "make_synthetic_lip_sentences")
SYNTHETIC["rgb"] = ("signlip.data.clips.synthetic_rgb", "make_synthetic_rgb")
SYNTHETIC["rgb_sentences"] = ("signlip.data.clips.synthetic_rgb", "make_synthetic_rgb_sentences")
MIN_DECODED_FRACTION = 0.9  # data.prepare.min_decoded_fraction: below this share of the declared frames → truncated


# --- prepare ------------------------------------------------------------------------------------------------------
class VideoClipPreparer:
    """Picklable per-video work: read, resample, ROI, resize, fixed length → uint8 (T, H, W[, 3]).

    `min_decoded_fraction`: a video that decodes fewer of the frames its container declares is left out as truncated
    (a note in the details when it decodes fewer but enough)."""

    def __init__(self, fps: float, n_frames: int | None, size: tuple[int, int], gray: bool, roi: str, margin: float,
                 smoothing: float, face_model: str | None, min_decoded_fraction: float = MIN_DECODED_FRACTION):
        self.fps, self.n_frames, self.size, self.gray = fps, n_frames, tuple(size), gray
        self.roi, self.margin, self.smoothing, self.face_model = roi, margin, smoothing, face_model
        self.min_decoded_fraction = min_decoded_fraction

    @property
    def max_side(self) -> int | None:
        """Frames are decoded at full size, bounded for face detection; the ROI step resizes to the clip size."""
        return 640 if self.roi == "mediapipe" else None

    def __call__(self, item: Item) -> np.ndarray:
        return self.prepare(item).array

    def prepare(self, item: Item) -> Prepared:
        """The clip and what prepare measured on the way (`prepare_details.csv`): frames decoded vs declared by the
        container, the face's roll (roi=mediapipe), a note when a short video was kept."""
        from signlip.data.clips.frame_range import frame_range, frame_slice
        from signlip.data.clips.roi import face_roll_deg, track_video
        from signlip.data.clips.video import check_decoded, probe_video, read_kept_frames

        stats: dict[str, int] = {}
        keep, window = self.kept, None
        if Path(item.source).is_dir():  # a sentence as its frames (PHOENIX): read whole, no container to check
            from signlip.data.frame_folder import frame_folder_fps, read_frame_folder_at

            frames = read_frame_folder_at(item.source, frame_folder_fps(item.extra), self.fps)
            clip = self.clip_from_frames(frames, box=self._box(item), source=item.source)
            return Prepared(clip, {"decoded_frames": len(frames), "container_frames": len(frames)})
        if frame_range(item.extra) is not None:  # a stretch of a longer video (WLASL): the clip samples only it
            source_fps = probe_video(item.source).fps
            scale = self.fps / source_fps if self.fps and source_fps else 1.0

            def window(length: int) -> slice:
                return frame_slice(item.extra, length, scale)

            def keep(length: int) -> np.ndarray:
                part = window(length)
                return part.start + self.kept(part.stop - part.start)
        # One decode; the face is tracked as frames arrive and only the frames the clip keeps are held (None elsewhere).
        if self.roi == "mediapipe":
            frames, landmarks = track_video(item.source, self.face_model, self.fps, keep, self.max_side, stats)
        else:
            frames, landmarks = read_kept_frames(item.source, self.fps, keep, self.max_side, stats=stats), None
        # Before the ROI: a damaged file must be reported as damaged, not as "no face found" on its few frames.
        note = check_decoded(stats, self.min_decoded_fraction, item.source)
        details: dict[str, Any] = {"decoded_frames": stats["decoded"], "container_frames": stats["container_frames"]}
        if window is not None:
            part = window(len(frames))
            frames, landmarks = frames[part], (landmarks[part] if landmarks is not None else None)
            details["frame_range"] = "{}..{}".format(*frame_range(item.extra))
        if self.roi == "mediapipe":
            details["face_roll_deg"] = round(face_roll_deg(landmarks), 1)
        try:
            clip = self.clip_from_frames(frames, box=self._box(item), source=item.source, landmarks=landmarks)
        except SignlipError as exc:
            if note:  # kept though short: say so, the missing face may be the damage
                raise SignlipError(f"{exc} (and the file is {note.split(', kept')[0]})") from None
            raise
        if note:
            details["note"] = note
        return Prepared(clip, details)

    def _box(self, item: Item) -> tuple[float, ...] | None:
        """The row's x,y,w,h box for roi=box, else None."""
        if self.roi != "box":
            return None
        try:
            return tuple(float(item.extra[k]) for k in ("x", "y", "w", "h"))
        except (KeyError, ValueError):
            raise SignlipError("roi=box needs numeric x,y,w,h columns in the manifest") from None

    def kept(self, length: int) -> np.ndarray:
        """Indices of the frames a `length`-frame video keeps in its clip: uniform sampling or edge padding to
        `n_frames`; every frame when `n_frames` is None (whole sentences, continuous recognition)."""
        from signlip.data.clips.video import temporal_indices

        return np.arange(length) if self.n_frames is None else temporal_indices(length, self.n_frames)

    def clip_from_frames(self, frames: np.ndarray | list[np.ndarray | None], box: tuple[float, ...] | None = None,
                         source: str = "", landmarks: np.ndarray | None = None) -> np.ndarray:
        """Decoded RGB frames at `fps` `(T, H0, W0, 3)` → the clip `(n_frames or T, H, W[, 3])`; `landmarks`: their
        face landmarks when a tracker already ran over them (a stream's window). Only the kept frames are cropped (a
        list may hold None at the others, `read_kept_frames`)."""
        from signlip.data.clips.roi import extract_roi

        return extract_roi(frames, self.roi, model_path=self.face_model, box=box, margin=self.margin,
                           smoothing=self.smoothing, size=self.size, fps=self.fps, gray=self.gray, source=source,
                           landmarks=landmarks, keep=self.kept(len(frames)))


def clip_fingerprint(settings: dict[str, Any], face_model: str | None) -> dict[str, Any]:
    """Every setting that shapes a prepared clip (it also names the cache folder, `prepared_locations`)."""
    fp = {"kind": "video_clips", "fps": settings["fps"], "n_frames": settings["n_frames"],
          "size": list(settings["size"]), "gray": settings["gray"], "roi": settings["roi"],
          "margin": settings.get("margin"), "smoothing": settings.get("smoothing")}
    if settings["roi"] == "mediapipe":
        from signlip.data.clips.roi import ALIGNMENT, model_sha256

        fp["face_model_sha256"] = model_sha256(face_model)
        fp["roi_alignment"] = ALIGNMENT  # mouth crops turned upright: caches of the old axis-aligned crops differ
    return fp


@PREPARERS.register("clips")
def prepare_clips(raw_manifest: str | None = None, synthetic: dict[str, Any] | None = None,
                  cache_dir: str = "data/cache/clips", prepare: dict[str, Any] | None = None,
                  manifests_dir: str = "data/manifests", root: str | None = None, format: str = "auto",
                  format_options: dict[str, Any] | None = None, seed: int = 0, workers: int = 2,
                  overwrite: bool = False) -> PrepareResult:
    """Prepare every video of a raw manifest — the user's (`raw_manifest`), one a format adapter writes for a
    dataset folder (`root`, `format`, `format_options`: `signlip.data.formats`), or the built-in synthetic set's
    (`synthetic`: its generator's arguments and `kind`) — into the clip cache. `prepare`: fps, n_frames, size, gray,
    roi, and for roi=mediapipe margin, smoothing, models_dir, face_model; min_decoded_fraction (default 0.9: a video
    that decodes fewer of its container's frames is left out as truncated)."""
    settings = dict(prepare or {})
    if root and not raw_manifest:
        from signlip.data.formats import raw_manifest_from

        raw_manifest = raw_manifest_from(format, root, format_options, manifests_dir, "clips")
    if settings.get("roi", "auto") == "auto":
        # The built-in synthetic videos are mouth crops already; a user's videos are full faces by default.
        settings["roi"] = "mediapipe" if raw_manifest else "none"
    raw_manifest = raw_manifest or make_synthetic(synthetic)
    face_model = str(Path(settings.get("models_dir", "models")) / settings.get("face_model", "face_landmarker.task"))
    if settings["roi"] == "mediapipe" and not Path(face_model).is_file():
        raise SignlipError(f"face model {face_model} not found — run `python scripts/fetch_models.py` or download "
                           f"face_landmarker.task from Google's MediaPipe model page into "
                           f"{settings.get('models_dir', 'models')}/ (or use data.prepare.roi=none for mouth crops)")
    items = read_raw_items(raw_manifest, seed=seed)
    fn = VideoClipPreparer(settings["fps"], settings["n_frames"], settings["size"], settings["gray"], settings["roi"],
                           settings.get("margin", 0.35), settings.get("smoothing", 0.6), face_model,
                           settings.get("min_decoded_fraction", MIN_DECODED_FRACTION))
    fingerprint = clip_fingerprint(settings, face_model)
    cache, manifest_out = prepared_locations(raw_manifest, cache_dir, manifests_dir, fingerprint)
    return require_usable(run_prepare(items, fn.prepare, cache, fingerprint, manifest_out, workers=workers,
                                      overwrite=overwrite, group_column="speaker", description="prepare videos"))


def synthetic_folder(root: str | Path, settings: dict[str, Any]) -> Path:
    """Where one setting of a synthetic generator writes: `root/<readable summary>-<hash of all settings>`, e.g.
    `data/synthetic/rgb/c2-64x64-t16-3fa9c1d2` — so two settings (the docs' small recipe and a task's default) never
    regenerate each other's videos in place, and their raw manifests (hence caches) differ."""
    import json

    digest = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]
    size = settings.get("frame_size")
    summary = "-".join(part for part in (
        f"c{settings['n_classes']}" if "n_classes" in settings else "",
        "x".join(str(int(v)) for v in size) if size else "",
        f"t{settings['n_frames']}" if "n_frames" in settings else "") if part)
    return Path(root) / f"{summary}-{digest}" if summary else Path(root) / digest


def _plain(value: Any) -> Any:
    """Config values as the hash sees them: tuples as lists, 25.0 as 25 (YAML's `fps: 25` and a default of 25.0 are
    one setting)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def make_synthetic(synthetic: dict[str, Any] | None) -> str:
    """Generate (once) the built-in synthetic videos named by `synthetic.kind` into a folder of `synthetic.root` keyed
    by every argument that shapes them (`synthetic_folder`); return their raw manifest."""
    import importlib

    synthetic = dict(synthetic or {})
    kind = synthetic.pop("kind", None)
    if kind not in SYNTHETIC:
        raise SignlipError(f"no data given — set data.raw_manifest=<videos.csv> or data.manifest=<prepared.csv> "
                           f"(built-in synthetic kinds: {', '.join(SYNTHETIC)})")
    module, fn_name = SYNTHETIC[kind]
    generator = getattr(importlib.import_module(module), fn_name)
    bound = inspect.signature(generator).bind(**synthetic)
    bound.apply_defaults()  # the generator's own defaults shape the data too
    shaping = {k: _plain(v) for k, v in bound.arguments.items() if k not in ("root", "workers")}  # workers: speed
    root = synthetic_folder(bound.arguments["root"], {"kind": kind, **shaping})
    return str(generator(**{**synthetic, "root": str(root)}))


# --- dataset ------------------------------------------------------------------------------------------------------
class ClipDataset:
    """Prepared uint8 clips of one split; `__getitems__` stacks a batch (B, T, H, W[, 3]).

    With `targets` (gloss sentences, `signlip.data.glosses`) the clips are whole sentences of any length: a batch is
    padded to its longest with black frames, with mask (B, T) (True = real frame), y (B, L) padded gloss ids and
    y_lengths (B,); labels are then all 0 (a sentence has no class). `lengths` (N,) feeds the length-bucket
    sampler. `boundaries` (N, T) float32: each clip's word-boundary vector (LRW), handed out as "boundary" (B, T)."""

    def __init__(self, paths: list[str], labels: np.ndarray, groups: list[str], preload: bool,
                 targets: list[np.ndarray] | None = None, boundaries: np.ndarray | None = None):
        self.paths, self.labels, self.groups, self.targets = paths, labels, np.asarray(groups), targets
        self.boundaries = torch.from_numpy(boundaries) if boundaries is not None else None
        self.y = torch.from_numpy(labels)
        shapes = [np.load(p, mmap_mode="r").shape for p in paths]  # headers only
        self.clip_shape = shapes[0]
        self.lengths = np.asarray([s[0] for s in shapes], dtype=np.int64)
        for path, shape in zip(paths, shapes):
            if shape[1:] != self.clip_shape[1:] or (targets is None and shape != self.clip_shape):
                raise SignlipError(f"prepared clip {path} has shape {shape}, expected {self.clip_shape} like "
                                   f"{paths[0]} — prepare the data again into a fresh data.cache_dir")
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.frames: np.ndarray | None = None  # (ΣT, H, W[, 3]) when preloaded
        if preload:
            self.frames = np.empty((int(self.offsets[-1]), *self.clip_shape[1:]), dtype=np.uint8)
            for i, p in enumerate(paths):
                self.frames[self.offsets[i]: self.offsets[i + 1]] = self._load(p)

    def _load(self, path: str) -> np.ndarray:
        arr = np.load(path, mmap_mode="r")
        if arr.shape[1:] != self.clip_shape[1:] or arr.dtype != np.uint8:
            raise SignlipError(f"prepared clip {path} has shape {arr.shape} {arr.dtype}, expected frames of "
                               f"{self.clip_shape[1:]} uint8 — prepare the data again into a fresh data.cache_dir")
        return arr

    def clip(self, i: int) -> np.ndarray:
        return self.frames[self.offsets[i]: self.offsets[i + 1]] if self.frames is not None else \
            self._load(self.paths[i])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        if self.targets is None:  # clips of one length
            if self.frames is not None:
                x = torch.from_numpy(self.frames.reshape(len(self), *self.clip_shape)[np.asarray(indices)])
            else:
                x = torch.from_numpy(np.stack([self.clip(i) for i in indices]))
            extra = {"boundary": self.boundaries[idx]} if self.boundaries is not None else {}
            return {"x": x, "y": self.y[idx], "index": idx, **extra}
        from signlip.data.glosses import pad_targets

        lengths = self.lengths[np.asarray(indices)]
        x = torch.zeros((len(indices), int(lengths.max()), *self.clip_shape[1:]), dtype=torch.uint8)
        for row, i in enumerate(indices):
            x[row, : lengths[row]] = torch.from_numpy(np.ascontiguousarray(self.clip(i)))
        mask = torch.arange(x.shape[1])[None, :] < torch.from_numpy(lengths)[:, None]
        y, y_lengths = pad_targets([self.targets[i] for i in indices])
        return {"x": x, "mask": mask, "y": y, "y_lengths": y_lengths, "index": idx}


class ClipTransform(BatchTransform):
    """uint8 (B, T, H, W[, 3]) → float (B, C, T, H, W) in [0, 1]; augment when training; normalise per channel.

    `augment`: the arguments of `augment_clips` (the keys of `data.augment`). `word_boundary`: the batch's "boundary"
    (B, T) (all ones when it has none: a word of unknown length) is appended as one more channel, constant over each
    frame, after augmentation and normalisation — x (B, C + 1, T, H, W); the lip models split it off again."""

    def __init__(self, mean: list[float], std: list[float], augment: dict[str, Any] | None,
                 word_boundary: bool = False):
        super().__init__()
        self.word_boundary = word_boundary
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1, 1))
        self.augment = dict(augment or {})
        # Keys that are not augment_clips' arguments fail here, at build time, not at the first training batch.
        inspect.signature(augment_clips).bind(None, **self.augment)
        # mean 0, std 1 (the lip recipe's raw [0, 1] pixels): skip two full passes over the batch.
        self.normalise = any(m != 0.0 for m in mean) or any(s != 1.0 for s in std)

    def forward(self, batch: dict[str, torch.Tensor], training: bool) -> dict[str, torch.Tensor]:
        x = batch["x"]
        x = x.unsqueeze(1) if x.ndim == 4 else x.permute(0, 4, 1, 2, 3)  # (B, C, T, H, W)
        x = x.float().div_(255.0)
        if training and self.augment:
            x = augment_clips(x, **self.augment, inplace=True)  # x is this batch's own float copy
        if self.normalise:
            x = (x - self.mean) / self.std
        if self.word_boundary:
            b, _, t, h, w = x.shape
            boundary = batch.get("boundary")
            boundary = x.new_ones((b, t)) if boundary is None else boundary.to(x)
            x = torch.cat([x, boundary.view(b, 1, t, 1, 1).expand(b, 1, t, h, w)], dim=1)
        return {**batch, "x": x}


def _load_split(m: Manifest, split: str, classes: list[str], preload: bool,
                boundaries: np.ndarray | None = None) -> ClipDataset:
    """One split; for gloss sentences `classes` is the vocabulary + the glosses only val/test hold. `boundaries`:
    the word-boundary vectors of all the manifest's rows."""
    from signlip.data.glosses import encode

    rows = m.rows(split)
    if m.target == "glosses":
        return ClipDataset([m.paths[i] for i in rows], np.zeros(len(rows), np.int64), [m.groups[i] for i in rows],
                           preload, [encode(m.labels[i], classes) for i in rows])
    return ClipDataset([m.paths[i] for i in rows], label_indices(m, split, classes), [m.groups[i] for i in rows],
                       preload, boundaries=boundaries[rows] if boundaries is not None else None)


def word_boundaries(m: Manifest, fingerprint: dict[str, Any]) -> np.ndarray:
    """(N, T) float32 word-boundary vectors of a manifest's clips from its `duration` column (LRW's `.txt`, seconds;
    an empty one — no `.txt` — gives all ones), at the clips' length and frame rate."""
    from signlip.data.formats.lrw import word_boundary

    if not any("duration" in row for row in m.extra):
        raise SignlipError(f"data.word_boundary=true needs a duration column (the word's length in seconds, as the "
                           f"LRW adapter writes from each clip's .txt) and {m.source} has none — prepare LRW with "
                           f"data.root=<lipread_mp4>, add the column, or set data.word_boundary=false")
    if fingerprint.get("n_frames") is None:
        raise SignlipError("data.word_boundary=true marks a word within a fixed-length clip, but these clips are whole "
                           "sentences — set data.word_boundary=false")
    from signlip.data.formats.lrw import FPS, N_FRAMES

    n_frames, fps = int(fingerprint["n_frames"]), float(fingerprint["fps"])
    if (n_frames, fps) != (N_FRAMES, FPS):  # the boundary marks LRW's frames; sampled or resampled it would not
        raise SignlipError(f"data.word_boundary=true marks the word on LRW's own {N_FRAMES} frames at {FPS} fps, but "
                           f"these clips were prepared as {n_frames} frames at {fps:g} fps — prepare them with "
                           f"data.prepare.n_frames={N_FRAMES} data.prepare.fps={FPS}")
    out = np.empty((len(m.paths), n_frames), np.float32)
    for i, row in enumerate(m.extra):
        text = (row.get("duration") or "").strip()
        try:
            duration = float(text) if text else None
        except ValueError:
            raise SignlipError(f"{m.source}: row {i + 2} has duration {text!r}, not seconds — fix it or leave it "
                               f"empty (the clip is then used without its word boundary)") from None
        out[i] = word_boundary(duration, n_frames, fps)
    return out


@DATASETS.register("clips")
def build_clip_data(manifest: str | None = None, raw_manifest: str | None = None,
                    synthetic: dict[str, Any] | None = None, cache_dir: str = "data/cache/clips",
                    prepare: dict[str, Any] | None = None, manifests_dir: str = "data/manifests",
                    root: str | None = None, format: str = "auto", format_options: dict[str, Any] | None = None,
                    augment: dict[str, Any] | None = None,
                    mean: list[float] | None = None, std: list[float] | None = None, preload_limit_mb: int = 2048,
                    workers: int = 2, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15,
                    preprocessing: dict[str, Any] | None = None, splits: tuple[str, ...] = SPLITS,
                    word_boundary: bool = False) -> DataBundle:
    """Clip data module. `manifest`: a prepared manifest; else `raw_manifest` (videos), a dataset folder `root` (in
    the layout `format`, see `signlip.data.formats`) or the synthetic set is prepared into `cache_dir` first
    (resumable: only new videos are decoded; see `prepare_clips`). The model gets the number of classes and of
    channels (1 gray, 3 RGB) from the data. `word_boundary`: the manifest's `duration` (LRW) becomes one more input
    channel (`ClipTransform`), and the model is told so."""
    if manifest is None:
        manifest = str(prepare_clips(raw_manifest, synthetic, cache_dir, prepare, manifests_dir, root, format,
                                     format_options, seed, workers).manifest)
    m = read_manifest(manifest, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                      required=tuple(splits))
    glosses = m.target == "glosses"
    fingerprint = read_fingerprint([m.paths[i] for s in splits for i in m.rows(s)])
    if preprocessing:
        check_fingerprint(preprocessing["fingerprint"], fingerprint, f"data {manifest}")
        if preprocessing.get("target", "label") != m.target:
            raise SignlipError(f"data {manifest} has a {m.target} column but the checkpoint was trained on "
                               f"{preprocessing.get('target', 'label')} — evaluate it with data of its kind")
        classes = list(preprocessing["classes"])
    else:
        classes = gloss_vocabulary(m) if glosses else class_names(m)
    if glosses and fingerprint.get("n_frames") is not None:
        raise SignlipError(f"data {manifest} holds gloss sentences but its clips were cut to a fixed "
                           f"{fingerprint['n_frames']} frames — prepare sentences whole: data.prepare.n_frames=null")
    unseen = unseen_in(m, classes, splits)
    channels = 1 if fingerprint.get("gray", True) else 3
    mean = list(mean or [0.0] * channels)
    std = list(std or [1.0] * channels)
    clip_bytes = sum(int(np.prod(np.load(m.paths[i], mmap_mode="r").shape)) for s in splits for i in m.rows(s))
    preload = clip_bytes <= preload_limit_mb * 2**20
    boundaries = word_boundaries(m, fingerprint) if word_boundary else None
    loaded = {s: _load_split(m, s, classes + unseen, preload, boundaries) for s in splits}
    prep = {"kind": "clips", "classes": classes, "target": m.target, "fingerprint": fingerprint, "mean": mean,
            "std": std, "manifest": str(Path(manifest).resolve()),
            **({"word_boundary": True} if word_boundary else {}),
            **({"most_frequent_sentence": most_frequent_sentence(m, preprocessing)} if glosses else {})}
    return DataBundle(classes=classes, splits=loaded, batch_transform=ClipTransform(mean, std, augment, word_boundary),
                      preprocessing=prep, draw_sample=draw_sample, target=m.target, unseen=unseen,
                      model_kwargs={"num_classes": len(classes) + 1 if glosses else len(classes),  # + the blank
                                    "in_channels": channels, **({"word_boundary": True} if word_boundary else {})})
