"""`.pose` files (the sign-language-processing ecosystem's format, `pip install pose-format`) ⇄ signlip's holistic
`(T, 543, 3)` layout.

A `.pose` written by pose-format's MediaPipe holistic pipeline has the components, in this order:

    POSE_LANDMARKS 33 · FACE_LANDMARKS 468 (478 with the refined iris points) · LEFT_HAND_LANDMARKS 21 ·
    RIGHT_HAND_LANDMARKS 21 · POSE_WORLD_LANDMARKS 33 (metres, not image coordinates: not read)

x and y are in pixels of the header's width × height, z is MediaPipe's own (unscaled), and a point with confidence
0 was not detected. Reading divides x, y by the width and height (signlip's points are MediaPipe's normalised
image coordinates) and turns confidence 0 into NaN; the iris points are dropped (signlip's face is the 468-point
mesh). A face reduced to some of its points (pose-format's `get_components(..., {"FACE_LANDMARKS": [...]})`, the
points named by their mesh index) fills those points; a file with only the two hand components (42 points) fills
the hands. Only the first person of a multi-person file is read. Any other layout (OpenPose, AlphaPose, …) is
refused with the components it has.

    signlip prepare task=asl_tcn_transformer data.root=DIR [data.format=pose]       DIR/<label>/*.pose
    signlip prepare task=asl_tcn_transformer … data.write_pose=true     also writes <cache>/<key>.pose per array

pose-format is an optional extra (`pip install signlip[pose]`), imported only here.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

from signlip.data.formats import FORMATS
from signlip.data.holistic.features import N_POINTS, PART_SIZES, PARTS
from signlip.errors import SignlipError

POSE_SUFFIX = ".pose"
# pose-format's holistic component names → signlip's parts, in pose-format's order (written in this order too).
HOLISTIC_COMPONENTS = {"POSE_LANDMARKS": "pose", "FACE_LANDMARKS": "face", "LEFT_HAND_LANDMARKS": "left_hand",
                       "RIGHT_HAND_LANDMARKS": "right_hand"}
IGNORED_COMPONENTS = ("POSE_WORLD_LANDMARKS",)
N_FACE_REFINED = 478  # the face mesh plus 10 iris points (refine_face_landmarks=True)
# What pose-format's load_holistic assumes when it is given no size or rate; used when the source has none (GISLR).
DEFAULT_WIDTH, DEFAULT_HEIGHT, DEFAULT_FPS = 1000, 1000, 24.0


def _pose_format() -> Any:
    try:
        import pose_format
    except ImportError:
        raise SignlipError("reading or writing .pose files needs pose-format — pip install signlip[pose]") from None
    return pose_format


def _read(path: str | Path) -> Any:
    pose_format = _pose_format()
    try:
        return pose_format.Pose.read(Path(path).read_bytes())
    except (OSError, ValueError, EOFError, IndexError, KeyError, struct.error) as exc:  # a truncated or foreign file
        raise SignlipError(f"{path}: not a readable .pose file ({type(exc).__name__}: {exc})") from None


def _point_rows(component: Any, part: str, path: str | Path) -> np.ndarray:
    """Indexes into signlip's part for each point of `component` (-1: a point signlip does not keep)."""
    n, size = len(component.points), PART_SIZES[part]
    if part == "face" and all(str(p).isdigit() for p in component.points):
        rows = np.asarray([int(p) for p in component.points], np.int64)  # mesh index names, possibly a subset
        return np.where(rows < size, rows, -1)
    if n == size:
        return np.arange(size)
    expected = f"{size} or {N_FACE_REFINED}" if part == "face" else str(size)
    raise SignlipError(f"{path}: component {component.name} has {n} points, expected {expected} (MediaPipe "
                       f"holistic) — convert the file with pose-format's MediaPipe holistic pipeline")


def read_pose(path: str | Path) -> np.ndarray:
    """One `.pose` file (MediaPipe holistic, or its two hand components) → float32 `(T, 543, 3)`, NaN where a
    point was not detected (confidence 0 or masked) or the file has no such component."""
    pose = _read(path)
    header, body = pose.header, pose.body
    names = [c.name for c in header.components]
    if not any(n in ("LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS") for n in names):
        raise SignlipError(f"{path}: not a MediaPipe holistic .pose — its components are {', '.join(names) or 'none'}"
                           f"; signlip reads {', '.join(HOLISTIC_COMPONENTS)} (pose-format's holistic layout, or "
                           f"the two hand components alone)")
    data = np.ma.getdata(body.data).astype(np.float32)  # (T, people, points, dims)
    masked = np.ma.getmaskarray(body.data).any(-1) if np.ma.isMaskedArray(body.data) else np.zeros(data.shape[:3], bool)
    confidence = np.asarray(body.confidence, np.float32)
    t = data.shape[0]
    out = np.full((t, N_POINTS, 3), np.nan, np.float32)
    if t == 0 or data.shape[1] == 0:
        return out[:0]
    width = float(header.dimensions.width) or 1.0
    height = float(header.dimensions.height) or 1.0
    start = 0
    for component in header.components:
        stop = start + len(component.points)
        part = HOLISTIC_COMPONENTS.get(component.name)
        if part is not None:
            rows = _point_rows(component, part, path)
            keep = rows >= 0
            xyz = data[:, 0, start:stop][:, keep]
            dims = xyz.shape[-1]
            pts = np.zeros((t, int(keep.sum()), 3), np.float32)  # a 2-D file (XYC) gets z = 0
            pts[..., : min(dims, 3)] = xyz[..., :3]
            pts[..., 0] /= width
            pts[..., 1] /= height
            missing = (confidence[:, 0, start:stop][:, keep] <= 0) | masked[:, 0, start:stop][:, keep]
            pts[missing] = np.nan
            out[:, PARTS[part].start + rows[keep]] = pts
        start = stop
    return out


def pose_geometry(source: str | Path) -> tuple[int, int, float]:
    """(width, height, fps) to write a `.pose` of a prepared `source` with: a video's, a `.pose` file's own, else
    pose-format's defaults (1000 × 1000 at 24 fps: GISLR parquet and `.npy` sources carry neither)."""
    path = Path(source)
    if path.suffix.lower() == POSE_SUFFIX:
        pose = _read(path)
        return int(pose.header.dimensions.width), int(pose.header.dimensions.height), float(pose.body.fps)
    from signlip.data.clips.reader import VIDEO_SUFFIXES

    if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
        from signlip.data.clips.video import probe_video

        info = probe_video(path)
        if info.width > 0 and info.height > 0:
            return info.width, info.height, info.fps or DEFAULT_FPS
    return DEFAULT_WIDTH, DEFAULT_HEIGHT, DEFAULT_FPS


def _holistic_header(width: int, height: int) -> Any:
    """pose-format's MediaPipe holistic header (its `holistic_components`, which needs the legacy MediaPipe
    solutions to import; the point names and limbs come from MediaPipe Tasks here), without the world landmarks."""
    from mediapipe.tasks.python.vision import (
        FaceLandmarksConnections,
        HandLandmarksConnections,
        PoseLandmarksConnections,
    )
    from mediapipe.tasks.python.vision.hand_landmarker import HandLandmark
    from mediapipe.tasks.python.vision.pose_landmarker import PoseLandmark

    pf = _pose_format()
    from pose_format.pose_header import PoseHeaderComponent, PoseHeaderDimensions

    def limbs(connections: list) -> list[tuple[int, int]]:
        return [(int(c.start), int(c.end)) for c in connections]

    hand = ([p.name for p in HandLandmark], limbs(HandLandmarksConnections.HAND_CONNECTIONS))
    points = {"POSE_LANDMARKS": ([p.name for p in PoseLandmark], limbs(PoseLandmarksConnections.POSE_LANDMARKS)),
              "FACE_LANDMARKS": ([str(i) for i in range(PART_SIZES["face"])],
                                 limbs(FaceLandmarksConnections.FACE_LANDMARKS_TESSELATION)),
              "LEFT_HAND_LANDMARKS": hand, "RIGHT_HAND_LANDMARKS": hand}
    colors = {"POSE_LANDMARKS": (255, 0, 0), "FACE_LANDMARKS": (128, 0, 0), "LEFT_HAND_LANDMARKS": (0, 255, 0),
              "RIGHT_HAND_LANDMARKS": (0, 0, 255)}
    components = [PoseHeaderComponent(name=name, points=points[name][0], limbs=points[name][1],
                                      colors=[colors[name]], point_format="XYZC") for name in HOLISTIC_COMPONENTS]
    return pf.PoseHeader(version=0.2, dimensions=PoseHeaderDimensions(width=width, height=height, depth=0),
                         components=components)


def write_pose(path: str | Path, arr: np.ndarray, width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT,
               fps: float = DEFAULT_FPS) -> Path:
    """Write a `(T, 543, 3)` array as a MediaPipe holistic `.pose` (pixels of `width` × `height`, confidence 0 and
    masked where NaN), atomically; `read_pose` gives the array back (to float32 rounding of × width / width)."""
    pf = _pose_format()
    from pose_format.numpy import NumPyPoseBody

    arr = np.asarray(arr, np.float32)
    if arr.ndim != 3 or arr.shape[1:] != (N_POINTS, 3):
        raise SignlipError(f"cannot write {path}: shape {tuple(arr.shape)}, expected (T, {N_POINTS}, 3)")
    order = np.concatenate([np.arange(PARTS[p].start, PARTS[p].stop) for p in HOLISTIC_COMPONENTS.values()])
    pts = arr[:, order].copy()
    pts[..., 0] *= width
    pts[..., 1] *= height
    missing = ~np.isfinite(pts).all(-1)
    pts[missing] = 0
    data = np.ma.masked_array(pts[:, None], mask=np.repeat(missing[:, None, :, None], 3, axis=-1))
    body = NumPyPoseBody(fps=float(fps), data=data, confidence=(~missing[:, None]).astype(np.float32))
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp")
    with tmp.open("wb") as fh:
        pf.Pose(_holistic_header(int(width), int(height)), body).write(fh)
    tmp.replace(path)
    return path


def write_pose_files(prepared_manifest: str | Path) -> int:
    """`data.write_pose=true`: a `.pose` beside each `.npy` of a prepared manifest (`path,…,source`), sized like
    its source; files already newer than their array are kept. Returns how many were written."""
    import csv

    from signlip.run_logger import console

    manifest = Path(prepared_manifest)
    written = 0
    with manifest.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        array = manifest.parent / row["path"]
        out = array.with_suffix(POSE_SUFFIX)
        if out.is_file() and out.stat().st_mtime >= array.stat().st_mtime:
            continue
        width, height, fps = pose_geometry(row.get("source") or "")
        write_pose(out, np.load(array), width, height, fps)
        written += 1
    console.print(f"write_pose: {written} .pose file(s) written, {len(rows) - written} up to date, beside the "
                  f"arrays in {manifest.parent / Path(rows[0]['path']).parent if rows else manifest.parent}",
                  soft_wrap=True)
    return written


class PoseFilePreparer:
    """Picklable per-file work for `run_prepare`: one `.pose` → float32 (T, 543, 3)."""

    def __call__(self, item: Any) -> np.ndarray:
        from signlip.data.holistic.features import hand_present

        arr = read_pose(item.source)
        if len(arr) == 0 or not hand_present(arr).any():
            raise SignlipError(f"no hand in any of its {len(arr)} frames")
        return arr


def looks_like_pose_folders(root: Path) -> bool:
    """`.pose` files one or two folders down (`<label>/` or `<split>/<label>/`)."""
    return any(root.glob(f"*/*{POSE_SUFFIX}")) or any(root.glob(f"*/*/*{POSE_SUFFIX}"))


@FORMATS.register("pose", detect=looks_like_pose_folders, modalities=("holistic",),
                  help="class folders of .pose files (pose-format, MediaPipe holistic) DIR/<label>/*.pose")
def pose(root: Path, out: Path, speaker_pattern: str | None = None) -> Path:
    """The raw manifest of the `.pose` files in the class folders under `root` (the `folders` layout:
    `<label>/*.pose`, optionally `<train|val|test>/<label>/…`; `speaker_pattern` as there, giving the signer)."""
    from signlip.data.formats.folders import folders

    return folders(root, out, speaker_pattern=speaker_pattern, extensions=[POSE_SUFFIX])
