"""The built-in synthetic lip videos: deterministic, idempotent, speaker-disjoint, and readable only as sequences."""

from __future__ import annotations

import csv
import filecmp

import numpy as np
import pytest

from signlip.data.clips.synthetic_lip import _speaker, class_names, make_synthetic_lip, render_clip, word_orders
from signlip.data.clips.video import read_frames
from signlip.errors import SignlipError

TINY = {"n_people": (2, 1, 1), "per_class_per_person": 1, "n_frames": 12, "frame_size": (40, 60), "workers": 1}


def rows(manifest):
    with open(manifest, newline="") as fh:
        return list(csv.DictReader(fh))


def test_generation_is_deterministic_idempotent_and_speaker_disjoint(tmp_path):
    a = make_synthetic_lip(tmp_path / "a", **TINY)
    b = make_synthetic_lip(tmp_path / "b", **TINY)
    ra, rb = rows(a), rows(b)
    assert ra == rb and len(ra) == 4 * 4  # 4 speakers × 4 words × 1 clip
    assert {r["label"] for r in ra} == {"doctor", "i_need_to_move", "my_mouth_is_dry", "pillow"}
    for r in ra:  # real video files, identical bytes for identical settings
        assert filecmp.cmp(a.parent / r["path"], b.parent / r["path"], shallow=False)
    frames = read_frames(a.parent / ra[0]["path"])
    assert frames.shape == (12, 40, 60, 3)
    speakers = {s: {r["speaker"] for r in ra if r["split"] == s} for s in ("train", "val", "test")}
    assert len(speakers["train"]) == 2 and not (speakers["train"] & speakers["val"]) \
        and not (speakers["train"] & speakers["test"]) and not (speakers["val"] & speakers["test"])
    # Same settings: nothing is rewritten. Other settings: regenerated (new folder, so caches never mix them up).
    stamp = (a.parent / ra[0]["path"]).stat().st_mtime_ns
    assert make_synthetic_lip(tmp_path / "a", **TINY) == a
    assert (a.parent / ra[0]["path"]).stat().st_mtime_ns == stamp
    other = rows(make_synthetic_lip(tmp_path / "a", **{**TINY, "seed": 1}))
    assert other[0]["path"].split("/")[0] != ra[0]["path"].split("/")[0]
    assert not (a.parent / ra[0]["path"]).exists()


def test_class_count_is_configurable_and_bounded():
    assert len(set(word_orders(24))) == 24 and class_names(6)[4:] == ["word_04", "word_05"]
    with pytest.raises(SignlipError, match="2–24"):
        word_orders(25)


def features(n_classes=4, speakers=range(16), reps=4, n_frames=24, size=(32, 48)):
    """Per clip: mouth darkness (cavity) and brightness (teeth) per frame, (N, T, 2), plus labels and speakers."""
    orders = word_orders(n_classes)
    feats, labels, spk = [], [], []
    for s in speakers:
        speaker = _speaker(np.random.default_rng([7, s]), size)
        for c, order in enumerate(orders):
            for r in range(reps):
                clip = render_clip(order, speaker, np.random.default_rng([7, s, c, r]), n_frames, size)
                gray = clip.mean(-1) / 255.0  # (T, H, W)
                feats.append(np.stack([(gray < 0.25).mean((1, 2)), (gray > 0.7).mean((1, 2))], axis=1))
                labels.append(c)
                spk.append(s)
    return np.stack(feats), np.asarray(labels), np.asarray(spk)


def test_frame_order_is_what_tells_the_words_apart():
    """A classifier that sees one random frame (or the average frame) stays near chance on new speakers; the same
    classifier on the sequence of frames is far above it — the words differ only in the order of mouth shapes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y, spk = features()
    train, test = spk < 12, spk >= 12  # 12 training speakers, 4 unseen test speakers
    rng = np.random.default_rng(0)

    def accuracy(f):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(f[train], y[train])
        return (clf.predict(f[test]) == y[test]).mean()

    one_frame = accuracy(x[np.arange(len(x)), rng.integers(0, x.shape[1], len(x))])
    average = accuracy(x.mean(1))  # the average frame: every word holds each shape for about as long
    sequence = accuracy(x.reshape(len(x), -1))
    assert one_frame < 0.45 and average < 0.45, (one_frame, average)  # chance is 0.25
    assert sequence > 0.85, sequence
