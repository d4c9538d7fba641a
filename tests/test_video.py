"""The shared video layer: written videos read back with the right length, rate, size and sampling; bad files fail
with one clear SignlipError."""

from __future__ import annotations

import numpy as np
import pytest

from signlip.data.clips.video import (
    fps_indices,
    probe_video,
    read_clip,
    read_frames,
    temporal_indices,
    temporal_sample,
    write_video,
)
from signlip.errors import SignlipError


def ramp_video(n: int, h: int = 48, w: int = 64) -> np.ndarray:
    """Gray frames whose brightness encodes the frame index (robust to lossy codecs): (n, h, w) uint8."""
    levels = np.linspace(10, 245, n).round().astype(np.uint8)
    return np.repeat(np.repeat(levels[:, None, None], h, axis=1), w, axis=2)


def frame_levels(frames: np.ndarray) -> np.ndarray:
    return frames.reshape(len(frames), -1).mean(1)


@pytest.mark.parametrize("ext", [".mp4", ".avi"])
def test_written_video_reads_back_with_count_fps_and_size(tmp_path, ext):
    src = ramp_video(30)
    path = write_video(tmp_path / f"ramp{ext}", src, fps=25)
    info = probe_video(path)
    assert (info.width, info.height) == (64, 48) and info.fps == pytest.approx(25, abs=0.01)
    frames = read_frames(path, gray=True)
    assert frames.shape == (30, 48, 64) and frames.dtype == np.uint8
    # Lossy codecs: the brightness of every frame comes back within a few levels, in order.
    np.testing.assert_allclose(frame_levels(frames), frame_levels(src), atol=4)


def test_fps_resampling_halves_and_doubles_frame_count(tmp_path):
    path = write_video(tmp_path / "fifty.mp4", ramp_video(50), fps=50)  # 1 s at 50 fps
    down = read_frames(path, fps=25, gray=True)
    assert len(down) == 25  # every other frame, first kept
    assert np.all(np.diff(frame_levels(down)) > 0)
    path = write_video(tmp_path / "ten.mp4", ramp_video(10), fps=10)  # 1 s at 10 fps
    up = read_frames(path, fps=25, gray=True)
    assert len(up) == 23  # 0.9 s span × 25 + 1; frames repeated, never reordered
    assert np.all(np.diff(frame_levels(up)) >= -1)


def test_resample_indices_follow_variable_timestamps():
    ts = np.array([0.0, 0.04, 0.08, 0.30, 0.34])  # a gap: a variable-frame-rate stream
    idx = fps_indices(ts, fps=25)
    # Output times 0, 0.04, …, 0.32: each takes the source frame nearest in time (ties to the earlier one).
    assert idx.tolist() == [0, 1, 2, 2, 2, 3, 3, 3, 3]


@pytest.mark.parametrize("fps", [10, 25, 40, 12.5])
def test_frame_by_frame_decoding_resamples_as_the_whole_file_decode(tmp_path, fps):
    from signlip.data.clips.video import _convert, _decode, iter_frames

    path = write_video(tmp_path / "v.mp4", ramp_video(37), fps=25)
    decoded = list(_decode(path))
    times = np.array([t for _, t in decoded])
    expected = fps_indices(times, fps)
    streamed = list(iter_frames(path, fps=fps, gray=True))
    assert len(streamed) == len(expected)
    whole = np.stack([_convert(f, None, True) for f, _ in decoded])
    np.testing.assert_array_equal(np.stack(streamed), whole[expected])


def test_short_clip_is_padded_with_edge_frames_and_long_clip_sampled_uniformly():
    assert temporal_indices(3, 7).tolist() == [0, 0, 0, 1, 2, 2, 2]
    assert temporal_indices(3, 6, pad="end").tolist() == [0, 1, 2, 2, 2, 2]
    idx = temporal_indices(40, 32)
    assert idx[0] == 0 and idx[-1] == 39 and np.all(np.diff(idx) >= 1) and len(set(idx.tolist())) == 32
    clip = temporal_sample(np.arange(5)[:, None, None] * np.ones((1, 2, 2)), 9)
    assert clip[:, 0, 0].tolist() == [0, 0, 0, 1, 2, 3, 4, 4, 4]


def test_read_clip_gives_fixed_shape(tmp_path):
    path = write_video(tmp_path / "odd.mp4", np.random.default_rng(0).integers(0, 255, (12, 37, 51, 3), np.uint8))
    clip = read_clip(path, fps=25, n_frames=32, size=(64, 96), gray=True)
    assert clip.shape == (32, 64, 96) and clip.dtype == np.uint8
    rgb = read_clip(path, fps=25, n_frames=8, size=(16, 16), gray=False)
    assert rgb.shape == (8, 16, 16, 3)


def test_unreadable_files_raise_one_clear_error(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(SignlipError, match="empty"):
        read_frames(empty)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 255, 4096, np.uint8).tobytes())
    with pytest.raises(SignlipError, match="garbage.mp4") as err:
        read_frames(garbage)
    assert "\n" not in str(err.value)
    with pytest.raises(SignlipError, match="not found"):
        read_frames(tmp_path / "missing.mp4")
