"""Manifests, splits, landmark loading, augmentations and the synthetic hand dataset."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from signlip.data.landmarks.augment import augment_landmarks
from signlip.data.landmarks.datamodule import build_landmark_data
from signlip.data.landmarks.synthetic import MOTION_PAIRS, make_synthetic_hands
from signlip.data.manifest import assign_splits, read_manifest
from signlip.errors import SignlipError


def write_manifest(path, rows, header=("path", "label", "split", "signer")):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def make_samples(root, n_per=4, labels=("a", "b"), shape=(12, 21, 3)):
    rows = []
    for split, signer in (("train", "s1"), ("train", "s2"), ("val", "s3"), ("test", "s4")):
        for label in labels:
            for k in range(n_per):
                name = f"{split}_{signer}_{label}_{k}.npy"
                np.save(root / name, np.random.default_rng(k).normal(size=shape).astype(np.float32))
                rows.append((name, label, split, signer))
    return rows


def test_manifest_relative_paths_and_user_data_train_path(tmp_path):
    rows = make_samples(tmp_path)
    manifest = write_manifest(tmp_path / "m.csv", rows)
    data = build_landmark_data(manifest=str(manifest), sequence_length=10)
    assert data.classes == ["a", "b"]
    assert len(data.splits["train"]) == 16 and len(data.splits["val"]) == 8
    batch = data.splits["train"].__getitems__([0, 1, 2])
    assert batch["x"].shape == (3, 10, 21, 3) and batch["mask"].all()  # 12 frames truncated to 10
    out = data.batch_transform(batch, training=False)
    assert out["x"].shape == (3, 10, 63) and torch.isfinite(out["x"]).all()


@pytest.mark.parametrize("problem, match", [
    ("missing_manifest", "not found"),
    ("missing_file", "not found"),
    ("wrong_shape", "shape"),
    ("unseen_label", "never in train"),
    ("empty_split", "split is empty"),
    ("missing_column", "lacks column"),
    ("bad_split_name", "use one of"),
])
def test_bad_input_names_problem(tmp_path, problem, match):
    rows = make_samples(tmp_path)
    if problem == "missing_file":
        rows[0] = ("ghost.npy", *rows[0][1:])
    if problem == "wrong_shape":
        np.save(tmp_path / rows[3][0], np.zeros((12, 20, 2), np.float32))
    if problem == "unseen_label":
        rows[-1] = (rows[-1][0], "zzz", *rows[-1][2:])
    if problem == "empty_split":
        rows = [r for r in rows if r[2] != "val"]
    if problem == "bad_split_name":
        rows[0] = (rows[0][0], rows[0][1], "training", rows[0][3])
    header = ("path", "split") if problem == "missing_column" else ("path", "label", "split", "signer")
    if problem == "missing_column":
        rows = [(r[0], r[2]) for r in rows]
    manifest = write_manifest(tmp_path / "m.csv", rows, header)
    if problem == "missing_manifest":
        manifest = tmp_path / "absent.csv"
    with pytest.raises(SignlipError, match=match):
        build_landmark_data(manifest=str(manifest), sequence_length=10)


def test_sample_with_mixed_layout_is_refused(tmp_path):
    rows = make_samples(tmp_path)
    np.save(tmp_path / rows[-1][0], np.zeros((12, 33, 3), np.float32))
    with pytest.raises(SignlipError, match="per-frame shape"):
        build_landmark_data(manifest=str(write_manifest(tmp_path / "m.csv", rows)), sequence_length=10)


def test_seeded_split_keeps_each_signer_in_one_split():
    labels = [f"c{i % 5}" for i in range(400)]
    groups = [f"s{i % 20}" for i in range(400)]
    splits = assign_splits(labels, groups, seed=1, val_fraction=0.15, test_fraction=0.15)
    by_group = {}
    for g, s in zip(groups, splits):
        by_group.setdefault(g, set()).add(s)
    assert all(len(s) == 1 for s in by_group.values())
    assert set(splits) == {"train", "val", "test"}
    assert splits == assign_splits(labels, groups, seed=1, val_fraction=0.15, test_fraction=0.15)


def test_manifest_without_split_column_gets_signer_disjoint_split(tmp_path):
    rows = [(r[0], r[1], f"s{i % 10}") for i, r in enumerate(make_samples(tmp_path, n_per=10))]
    m = read_manifest(write_manifest(tmp_path / "m.csv", rows, ("path", "label", "signer")), seed=0)
    seen = {}
    for g, s in zip(m.groups, m.splits):
        seen.setdefault(g, set()).add(s)
    assert all(len(v) == 1 for v in seen.values())


def test_edge_padding_and_mask(tmp_path):
    rows = make_samples(tmp_path, shape=(4, 21, 3))
    data = build_landmark_data(manifest=str(write_manifest(tmp_path / "m.csv", rows)), sequence_length=10,
                               normalise="none")
    ds = data.splits["train"]
    assert ds.mask[0].sum() == 4
    np.testing.assert_array_equal(ds.x[0, 4:].numpy(), np.repeat(ds.x[0, 3:4].numpy(), 6, axis=0))


def test_augmentations_change_coordinates_and_keep_nan():
    torch.manual_seed(0)
    x = torch.randn(8, 10, 21, 3)
    x[0, 2] = float("nan")
    y = augment_landmarks(x, p_rotate=1.0, p_scale=1.0, p_shift=1.0, p_noise=1.0)
    assert torch.isnan(y[0, 2]).all() and torch.isfinite(y[1]).all()
    assert not torch.allclose(y[1:], x[1:])
    assert torch.allclose(augment_landmarks(x[1:], p_rotate=0.0, p_scale=0.0, p_shift=0.0, p_noise=0.0), x[1:])


def test_synthetic_hands_deterministic_and_signer_disjoint(tmp_path):
    a = make_synthetic_hands(tmp_path / "a", n_people=(2, 1, 1), per_class_per_person=1, seed=5)
    b = make_synthetic_hands(tmp_path / "b", n_people=(2, 1, 1), per_class_per_person=1, seed=5)
    rows_a = list(csv.DictReader(open(a)))
    assert rows_a == list(csv.DictReader(open(b)))
    np.testing.assert_array_equal(np.load(a.parent / rows_a[7]["path"]), np.load(b.parent / rows_a[7]["path"]))
    signers = {}
    for r in rows_a:
        signers.setdefault(r["signer"], set()).add(r["split"])
    assert all(len(s) == 1 for s in signers.values()) and len({r["label"] for r in rows_a}) == 26


def test_motion_only_pairs_need_more_than_the_first_frame(hands_root):
    """A classifier on the first frame cannot tell the motion-only pairs apart (J vs I, ...); the sequence can."""
    from sklearn.linear_model import LogisticRegression

    from signlip.data.landmarks.datamodule import normalise_sequence

    data = build_landmark_data(manifest=str(hands_root / "manifest.csv"), sequence_length=30, normalise="none")
    index = {c: i for i, c in enumerate(data.classes)}
    pair_classes = [index[c] for moving, (static, _) in MOTION_PAIRS.items() for c in (moving, static)]

    def features(split):
        ds = data.splits[split]
        keep = np.isin(ds.labels, pair_classes)
        x = ds.x.numpy()[keep]
        first = x[:, 0] - np.nanmean(x[:, 0], axis=1, keepdims=True)  # hand shape and pose in frame 0
        whole = np.stack([normalise_sequence(seq) for seq in x])  # the whole path over time
        clean = lambda a: np.nan_to_num(a.reshape(len(a), -1))  # noqa: E731
        return clean(first), clean(whole), ds.labels[keep]

    train_first, train_whole, train_y = features("train")
    test_first, test_whole, test_y = features("test")

    def accuracy(train_x, test_x):
        clf = LogisticRegression(max_iter=3000).fit(train_x, train_y)
        return (clf.predict(test_x) == test_y).mean()

    first, whole = accuracy(train_first, test_first), accuracy(train_whole, test_whole)
    # 12 classes in 6 same-shape pairs: shape alone gets the pair right but the member at coin-flip odds (~0.5).
    assert first < 0.65, f"the first frame separates motion pairs ({first:.2f}); the motion would not be needed"
    assert whole > first + 0.2, (first, whole)
