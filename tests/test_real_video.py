"""Real video on a real face (scikit-image's astronaut made into a moving video): a sideways face (a phone held on its
side, no rotation tag) gives the same upright mouth crops as an upright one, a rotation tag is honoured, the face's
roll is reported, and truncated or damaged files are reported as such — never as "no face found"."""

from __future__ import annotations

import csv
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from signlip.data.cache import DETAILS, REPORT
from signlip.data.clips.datamodule import prepare_clips
from signlip.data.clips.roi import LIP_CORNERS, LIPS_OUTER, crop_transforms, mouth_geometry, track_face, warp_crops
from signlip.data.clips.video import read_frames, write_video

FACE_MODEL = REPO / "models" / "face_landmarker.task"
SIZE = (64, 96)

pytestmark = [
    pytest.mark.mediapipe,
    pytest.mark.skipif(not FACE_MODEL.is_file(),
                       reason=f"{FACE_MODEL} missing — run `python scripts/fetch_models.py` to fetch the "
                              f"MediaPipe models"),
]


# --- mp4 surgery: what phones and web tools write, made from OpenCV's own mp4 ------------------------------------
def _boxes(buf, start: int, end: int):
    """Top-level ISO-BMFF boxes of buf[start:end]: (type, offset, header size, size)."""
    i = start
    while i + 8 <= end:
        size, kind = struct.unpack(">I4s", buf[i:i + 8])
        head = 8
        if size == 1:
            size, head = struct.unpack(">Q", buf[i + 8:i + 16])[0], 16
        elif size == 0:
            size = end - i
        yield kind, i, head, size
        i += size


def faststart(data: bytes) -> bytes:
    """Move the index (`moov`) before the frames (`mdat`), as `ffmpeg -movflags faststart` and most cameras do —
    OpenCV writes it at the end, so a cut file of its own has no index and does not open at all."""
    top = list(_boxes(data, 0, len(data)))
    moov = next(b for b in top if b[0] == b"moov")
    m = bytearray(data[moov[1]:moov[1] + moov[3]])

    def patch(start: int, end: int) -> None:  # chunk offsets move by the index's size
        for kind, i, head, size in _boxes(m, start, end):
            if kind in (b"trak", b"mdia", b"minf", b"stbl"):
                patch(i + head, i + size)
            elif kind in (b"stco", b"co64"):
                width, fmt = (4, ">I") if kind == b"stco" else (8, ">Q")
                for j in range(struct.unpack(">I", m[i + head + 4:i + head + 8])[0]):
                    o = i + head + 8 + j * width
                    m[o:o + width] = struct.pack(fmt, struct.unpack(fmt, m[o:o + width])[0] + moov[3])

    patch(8, len(m))
    head = b"".join(data[b[1]:b[1] + b[3]] for b in top if b[0] == b"ftyp")
    return head + bytes(m) + b"".join(data[b[1]:b[1] + b[3]] for b in top if b[0] not in (b"ftyp", b"moov"))


def tag_rotation_90(data: bytes) -> bytes:
    """Set the track's display matrix to a 90° turn (what a phone writes instead of turning the pixels)."""
    m = bytearray(data)

    def walk(start: int, end: int) -> None:
        for kind, i, head, size in _boxes(m, start, end):
            if kind in (b"moov", b"trak"):
                walk(i + head, i + size)
            elif kind == b"tkhd":
                off = i + head + 4 + (32 if m[i + head] == 1 else 20) + 16
                m[off:off + 36] = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)

    walk(0, len(m))
    return bytes(m)


# --- the videos --------------------------------------------------------------------------------------------------
def astronaut_frames(n: int = 36) -> np.ndarray:
    """A real frontal face that sways smoothly (±12 px, as a speaker's head): (n, 448, 448, 3) RGB uint8."""
    skimage_data = pytest.importorskip("skimage.data", reason="pip install scikit-image (the dev extra)")
    img = skimage_data.astronaut()  # (512, 512, 3)
    t = np.arange(n) / n
    dx, dy = np.round(12 * np.sin(2 * np.pi * t)).astype(int), np.round(8 * np.sin(4 * np.pi * t)).astype(int)
    return np.stack([img[32 + y:480 + y, 40 + x:488 + x] for x, y in zip(dx, dy)])


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("real_video")
    frames = astronaut_frames()
    paths = {}
    for name, fr in (("upright", frames), ("sideways", np.rot90(frames, 1, axes=(1, 2)))):
        write_video(tmp / f"{name}.mp4", np.ascontiguousarray(fr))
        data = faststart((tmp / f"{name}.mp4").read_bytes())
        (tmp / f"{name}.mp4").write_bytes(data)
        paths[name] = tmp / f"{name}.mp4"
    data = paths["upright"].read_bytes()
    for name, cut in (("cut60k", 60_000), ("cut10k", 10_000)):
        (tmp / f"{name}.mp4").write_bytes(data[:cut])
        paths[name] = tmp / f"{name}.mp4"
    write_video(tmp / "index_at_end.mp4", frames[:12])  # OpenCV's own layout, cut: no index left
    (tmp / "index_at_end.mp4").write_bytes((tmp / "index_at_end.mp4").read_bytes()[:30_000])
    paths["index_at_end"] = tmp / "index_at_end.mp4"
    (tmp / "tagged.mp4").write_bytes(tag_rotation_90(paths["sideways"].read_bytes()))
    paths["tagged"] = tmp / "tagged.mp4"
    return {"tmp": tmp, "paths": paths}


def centred_share(frames: np.ndarray, lips: np.ndarray, corners: np.ndarray) -> tuple[float, np.ndarray]:
    """Share of frames whose crop has the true lip centre near its centre (within 15% of its width and height) and
    the mouth level (lip-corner line within 15° of the crop's x axis, the subject's right corner on the left).
    lips (T, 2), corners (T, 2, 2): ground truth in the frames' pixels. Also returns the crops."""
    landmarks = track_face(frames, FACE_MODEL, fps=25)
    geometry = mouth_geometry(landmarks, aspect=SIZE[1] / SIZE[0])
    m = crop_transforms(geometry, SIZE)  # (T, 2, 3) frame px → crop px

    def to_crop(p):
        return np.einsum("tij,tj->ti", m[:, :, :2], p) + m[:, :, 2]

    centre = to_crop(lips)
    left, right = to_crop(corners[:, 0]), to_crop(corners[:, 1])
    angle = np.degrees(np.arctan2(right[:, 1] - left[:, 1], right[:, 0] - left[:, 0]))
    ok = (np.abs(centre[:, 0] - (SIZE[1] - 1) / 2) < 0.15 * SIZE[1]) \
        & (np.abs(centre[:, 1] - (SIZE[0] - 1) / 2) < 0.15 * SIZE[0]) & (np.abs(angle) < 15)
    return float(ok.mean()), warp_crops(frames, geometry, SIZE, gray=True)


def test_sideways_face_gives_mouth_crops_centred_and_upright_like_an_upright_face(videos):
    """Before the fix the crop box was axis-aligned: on the sideways video the mouth stood vertical in every crop."""
    upright = read_frames(videos["paths"]["upright"], fps=25, max_side=640)
    sideways = read_frames(videos["paths"]["sideways"], fps=25, max_side=640)
    # Ground truth for both from the upright frames' landmarks (the sideways ones are the same points turned).
    truth = track_face(upright, FACE_MODEL, fps=25)
    lips, corners = np.nanmean(truth[:, list(LIPS_OUTER), :2], axis=1), truth[:, list(LIP_CORNERS), :2]
    w = upright.shape[2]

    def turn(p):  # np.rot90(k=1): (x, y) → (y, W − 1 − x)
        return np.stack([p[..., 1], w - 1 - p[..., 0]], axis=-1)

    share_up, crops_up = centred_share(upright, lips, corners)
    share_side, crops_side = centred_share(sideways, turn(lips), turn(corners))
    assert share_up >= 0.95 and share_side >= 0.95, (share_up, share_side)
    # The same mouth, upright, in both: the crops agree pixel for pixel far better than neighbouring frames differ.
    diff = np.abs(crops_up.astype(int) - crops_side).mean()
    assert diff < 8, diff


def _read(path: Path) -> dict[str, dict[str, str]]:
    return {Path(r["path"]).name: r for r in csv.DictReader(path.open())} if path.is_file() else {}


def test_prepare_reports_roll_truncation_and_damage_and_keeps_short_videos_when_asked(videos):
    tmp = videos["tmp"]
    raw = tmp / "videos.csv"
    names = ["upright", "sideways", "tagged", "cut60k", "cut10k", "index_at_end"]
    raw.write_text("path,label,split,speaker\n" + "".join(f"{n}.mp4,word,train,{n}\n" for n in names))
    settings = {"fps": 25, "n_frames": 32, "size": list(SIZE), "gray": True, "roi": "mediapipe", "margin": 0.35,
                "smoothing": 0.6, "models_dir": str(FACE_MODEL.parent), "face_model": FACE_MODEL.name}
    result = prepare_clips(str(raw), cache_dir=str(tmp / "c"), manifests_dir=str(tmp / "m"), prepare=settings,
                           workers=1)
    report, details = _read(result.cache_dir / REPORT), _read(result.cache_dir / DETAILS)
    assert set(report) == {"cut60k.mp4", "cut10k.mp4", "index_at_end.mp4"}, report
    assert "truncated" in report["cut60k.mp4"]["reason"] and "of 36 frames" in report["cut60k.mp4"]["reason"]
    assert "min_decoded_fraction" in report["cut60k.mp4"]["reason"]
    for name in report:  # damaged files are damaged, whatever their first frames show
        assert "no face" not in report[name]["reason"], report[name]
        assert any(w in report[name]["reason"] for w in ("truncated", "damaged")), report[name]
    # Every prepared video: the face's roll (median over frames, degrees clockwise) and its frame counts.
    assert set(details) == {"upright.mp4", "sideways.mp4", "tagged.mp4"}
    assert abs(float(details["upright.mp4"]["face_roll_deg"])) < 10
    assert float(details["sideways.mp4"]["face_roll_deg"]) == pytest.approx(-90, abs=10)
    assert abs(float(details["tagged.mp4"]["face_roll_deg"])) < 10  # the rotation tag is honoured: upright frames
    assert details["upright.mp4"]["decoded_frames"] == details["upright.mp4"]["container_frames"] == "36"
    # A lower threshold keeps the short video, with its numbers in the details and a note.
    decoded = int(report["cut60k.mp4"]["reason"].split("decoded ")[1].split(" ")[0])
    again = prepare_clips(str(raw), cache_dir=str(tmp / "c"), manifests_dir=str(tmp / "m"),
                          prepare={**settings, "min_decoded_fraction": 0.2}, workers=1)
    assert again.cache_dir == result.cache_dir and again.reused == 3  # the threshold picks files, not pixels
    details = _read(again.cache_dir / DETAILS)
    note = f"truncated: decoded {decoded} of 36 frames, kept (min_decoded_fraction 0.2)"
    assert details["cut60k.mp4"]["note"] == note
    assert "cut60k.mp4" not in _read(again.cache_dir / REPORT)
