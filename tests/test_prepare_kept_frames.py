"""Prepare decodes once and works only on the frames a clip keeps (issue 14, prepare speed): the kept frames are the
whole-video decode's frames, in memory or decoded again past the budget; the prepared clip is the old path's
(decode every frame, crop every frame, sample) — bit for bit where the tracker sees the same frames, within a small
sub-pixel difference where it now sees the source frames instead of a 640-px copy."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import REPO
from signlip.data.cache import Item
from signlip.data.clips import video
from signlip.data.clips.datamodule import VideoClipPreparer
from signlip.data.clips.roi import extract_roi, mouth_geometry, track_face, track_video
from signlip.data.clips.video import (
    read_frames,
    read_kept_frames,
    run_ahead,
    temporal_indices,
    temporal_sample,
    write_video,
)

FACE_MODEL = REPO / "models" / "face_landmarker.task"


def texture_video(n: int, h: int, w: int) -> np.ndarray:
    """RGB frames with a moving texture (a resize or a wrong frame shows): (n, h, w, 3) uint8."""
    y, x = np.mgrid[:h, :w]
    return np.stack([np.stack([(x * 7 + y * 3 + 9 * i) % 256, (x * y // 5 + i * 11) % 256,
                               (255 - x - 4 * i) % 256], -1) for i in range(n)]).astype(np.uint8)


def old_prepare(preparer: VideoClipPreparer, path, box=None) -> tuple[np.ndarray, np.ndarray | None]:
    """The prepare path before the change: every frame decoded (and shrunk), tracked and cropped, then sampled.
    Returns the clip and the landmarks."""
    frames = read_frames(path, fps=preparer.fps, max_side=preparer.max_side)
    landmarks = track_face(frames, preparer.face_model, fps=preparer.fps) if preparer.roi == "mediapipe" else None
    clip = extract_roi(frames, preparer.roi, model_path=preparer.face_model, box=box, margin=preparer.margin,
                       smoothing=preparer.smoothing, size=preparer.size, fps=preparer.fps, gray=preparer.gray,
                       landmarks=landmarks)
    return temporal_sample(clip, preparer.n_frames), landmarks


@pytest.mark.parametrize("fps", [10.0, 40.0])  # dropping frames and repeating them
def test_kept_frames_are_the_whole_decode_frames_in_memory_or_decoded_again(tmp_path, monkeypatch, fps):
    path = write_video(tmp_path / "v.avi", texture_video(30, 60, 90), fps=25)
    whole_source = read_frames(path, fps=fps)
    whole = read_frames(path, fps=fps, max_side=50)
    seen: list[tuple[int, np.ndarray]] = []
    kept = temporal_indices(len(whole), 8)
    predicted = read_kept_frames(path, fps, lambda n: temporal_indices(n, 8), max_side=50,
                                 on_frame=lambda f, i: seen.append((i, f.copy())))
    # A container without a frame count: the source frames are held, or past the budget decoded again.
    monkeypatch.setattr(video, "_expected_length", lambda stats, fps: 0)
    held = read_kept_frames(path, fps, lambda n: temporal_indices(n, 8), max_side=50)
    again = read_kept_frames(path, fps, lambda n: temporal_indices(n, 8), max_side=50, budget_mb=0)
    for frames in (predicted, held, again):
        assert len(frames) == len(whole)
        assert [i for i, f in enumerate(frames) if f is not None] == sorted(set(kept.tolist()))
        np.testing.assert_array_equal(np.stack([frames[i] for i in kept]), whole[kept])  # shrunk to 50 px
    assert [i for i, _ in seen] == list(range(len(whole)))  # the tracker sees every frame at its source size
    np.testing.assert_array_equal(np.stack([f for _, f in seen]), whole_source)


@pytest.mark.parametrize("tracker", [True, False])
@pytest.mark.parametrize("declared", [None, 3, 29, 200])  # the container's count as it is, too short, too long
def test_kept_frames_are_right_whatever_the_container_declares(tmp_path, monkeypatch, declared, tracker):
    # The kept frames are shrunk as they decode (with a tracker, ahead on the decode thread) at the indices the
    # container's frame count predicts, and the source frames are not held; a wrong count only costs decoding the
    # missed frames again, never a wrong frame.
    path = write_video(tmp_path / "v.avi", texture_video(30, 60, 90), fps=25)
    whole = read_frames(path, fps=10.0, max_side=50)
    if declared is not None:
        monkeypatch.setattr(video, "_expected_length", lambda stats, fps: declared)
    frames = read_kept_frames(path, 10.0, lambda n: temporal_indices(n, 8), max_side=50,
                              on_frame=(lambda f, i: None) if tracker else None)
    kept = temporal_indices(len(whole), 8)
    assert len(frames) == len(whole)
    np.testing.assert_array_equal(np.stack([frames[i] for i in kept]), whole[kept])


def test_a_wrong_declared_count_never_fails_a_frame_range(tmp_path, monkeypatch):
    # The head start asks `keep` about the declared length; a frame range past a wrongly declared end must not make
    # the video fail — the decode's own length decides.
    from signlip.errors import SignlipError

    path = write_video(tmp_path / "v.avi", texture_video(30, 60, 90), fps=25)
    whole = read_frames(path, fps=25.0, max_side=50)

    def keep(n: int) -> np.ndarray:
        if n <= 20:
            raise SignlipError(f"frame_start 20 lies past the end of the video ({n} frames)")
        return 20 + temporal_indices(n - 20, 4)

    monkeypatch.setattr(video, "_expected_length", lambda stats, fps: 10)
    frames = read_kept_frames(path, 25.0, keep, max_side=50, on_frame=lambda f, i: None)
    np.testing.assert_array_equal(np.stack([frames[i] for i in keep(30)]), whole[keep(30)])


def test_run_ahead_keeps_order_raises_in_place_and_stops_with_its_caller():
    assert list(run_ahead(iter(range(50)), depth=3)) == list(range(50))

    def failing():
        yield from range(5)
        raise ValueError("damaged frame 5")

    got = []
    with pytest.raises(ValueError, match="damaged frame 5"):
        for item in run_ahead(failing(), depth=2):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]  # every frame before the failure, then the failure itself

    closed = []

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.append(True)  # the decoder is released

    ahead = run_ahead(endless(), depth=2)
    assert [next(ahead) for _ in range(3)] == [0, 1, 2]
    ahead.close()  # the caller stops early: the thread stops and closes its source
    assert closed == [True]


@pytest.mark.parametrize("roi", ["none", "box"])
def test_prepare_without_a_face_model_is_bit_identical_to_the_old_path(tmp_path, roi):
    path = write_video(tmp_path / "v.avi", texture_video(45, 40, 60), fps=25)
    preparer = VideoClipPreparer(25, 16, (24, 32), True, roi, 0.35, 0.6, None)
    box = (5.0, 4.0, 30.0, 20.0)
    extra = dict(zip("xywh", map(str, box))) if roi == "box" else {}
    new = preparer.prepare(Item(str(path), "a", "train", "s", extra)).array
    np.testing.assert_array_equal(new, old_prepare(preparer, path, box if roi == "box" else None)[0])


@pytest.mark.mediapipe
@pytest.mark.skipif(not FACE_MODEL.is_file(), reason=f"{FACE_MODEL} missing — run `python scripts/fetch_models.py` "
                                                      "to fetch the MediaPipe models")
def test_mouth_clips_match_the_old_path_exactly_within_640px_and_closely_above(tmp_path):
    from test_real_video import astronaut_frames

    face = astronaut_frames(24)  # (24, 448, 448, 3): a real face
    small = write_video(tmp_path / "small.mp4", face)
    canvas = np.full((24, 528, 720, 3), 90, np.uint8)
    canvas[:, 40:488, 136:584] = face
    large = write_video(tmp_path / "large.mp4", canvas)  # 720×528, as the benchmark's: shrunk to 640 px for the crop
    preparer = VideoClipPreparer(25, 16, (64, 96), True, "mediapipe", 0.35, 0.6, str(FACE_MODEL))

    new = preparer.prepare(Item(str(small), "a", "train", "s")).array
    np.testing.assert_array_equal(new, old_prepare(preparer, small)[0])

    # What prepare runs (decode once, track at the source size, crop the kept frames), with its landmarks at hand.
    frames, landmarks = track_video(large, FACE_MODEL, 25.0, preparer.kept, max_side=640)
    new = preparer.clip_from_frames(frames, landmarks=landmarks)
    old, old_landmarks = old_prepare(preparer, large)
    assert sum(f is not None for f in frames) == 16 and new.shape == old.shape == (16, 64, 96)
    assert np.abs(new.astype(int) - old).mean() < 3  # gray levels; the box moved by a fraction of a pixel
    before, after = mouth_geometry(old_landmarks), mouth_geometry(landmarks)
    assert np.abs(after[:, :2] - before[:, :2]).max() < 0.5  # centre, px of the 640-px frame
    assert (np.abs(after[:, 2] / before[:, 2] - 1)).max() < 0.02  # width
