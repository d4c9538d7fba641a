"""The doctor's verdicts on small and messy data: "too little data to judge" instead of a false FAIL, a time cap
that warns, memorisation judged in training mode, per-class / per-split value checks, messages that name the real
cause, and a picture of mouth clips a person can read."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_doctor import check, rewrite_manifest, run_doctor

# The probes off where a test is about the data alone; the overfit probe off where it is about the short runs.
NO_TRAINING = ["doctor.training=false"]
NO_OVERFIT = ["doctor.overfit.steps=0", "doctor.short_run.max_updates=4"]


def two_classes(rows, val_per_class: int = 1, val_classes=("A", "B")):
    """Classes A and B only: their training rows, `val_per_class` val rows of each of `val_classes`, their test rows."""
    kept, seen = [], {}
    for r in rows:
        if r["label"] not in ("A", "B"):
            continue
        if r["split"] == "val":
            if r["label"] not in val_classes or seen.get(r["label"], 0) >= val_per_class:
                continue
            seen[r["label"]] = seen.get(r["label"], 0) + 1
        kept.append(r)
    return kept


def test_shuffle_control_on_two_val_samples_is_inconclusive_not_fail(tmp_path, hands_root):
    manifest = rewrite_manifest(hands_root, tmp_path / "tiny.csv", two_classes)
    report = run_doctor(tmp_path / "doc", [f"data.manifest={manifest}", "doctor.shuffle_control=true", *NO_OVERFIT])
    control = check(report, "label-shuffle control")
    # chance 0.5 + 3 standard errors on 2 samples = 1.561: no run can beat it, so not beating it says nothing.
    assert control["status"] == "inconclusive", control
    assert "too little data to judge" in control["detail"] and "luck bound 1.561" in control["detail"]
    assert "need ≈ 10 val samples" in control["detail"], control["detail"]
    assert report["ok"]  # exit 0: nothing is wrong with the data


def test_one_class_val_blames_the_split(tmp_path, hands_root):
    manifest = rewrite_manifest(hands_root, tmp_path / "one.csv", lambda rows: two_classes(rows, 4, ("A",)))
    report = run_doctor(tmp_path / "doc", [f"data.manifest={manifest}", *NO_OVERFIT])
    short = check(report, "short real run beats chance")
    assert short["status"] == "inconclusive" and "val has only class A — the split cannot measure accuracy" in \
        short["detail"], short
    assert "labels may not belong" not in short["detail"]
    assert "val has only class A" in check(report, "val size")["detail"]


def test_overfit_time_cap_warns_never_fails(tmp_path, hands_overrides):
    report = run_doctor(tmp_path, [*hands_overrides, "doctor.overfit.max_seconds=0.01",
                                   "doctor.short_run.max_updates=2"])
    overfit = check(report, "overfit one batch")
    assert overfit["status"] == "warn" and "ran out of time after" in overfit["detail"], overfit
    assert "broken" not in overfit["detail"]


def test_overfit_is_judged_in_training_mode(tmp_path, hands_overrides, monkeypatch):
    """A model whose eval-mode output lags (BatchNorm's running statistics; here: eval mode says nothing at all)
    memorises the batch all the same: the probe must pass it."""
    from signlip.models.landmark_gru import LandmarkGRU

    original = LandmarkGRU.forward

    def lagging(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        return out if self.training else out * 0  # uniform logits in eval mode
    monkeypatch.setattr(LandmarkGRU, "forward", lagging)
    report = run_doctor(tmp_path, [*hands_overrides, "doctor.short_run.max_updates=2", "doctor.overfit.batch_size=8"])
    overfit = check(report, "overfit one batch")
    assert overfit["status"] == "pass", overfit
    assert overfit["data"]["eval_mode_loss"] == pytest.approx(math.log(26), abs=0.01)


def emptied(tmp_path: Path, label: str | None = None, nan: dict[str, int] | None = None):
    """A manifest edit: every sample of `label` all zero; the first nan[split] samples of a split all NaN."""
    out = tmp_path / "edited"
    out.mkdir(exist_ok=True)
    left = dict(nan or {})

    def edit(rows):
        for i, r in enumerate(rows):
            arr = np.load(r["path"])
            if r["label"] == label:
                arr = np.zeros_like(arr)
            elif left.get(r["split"], 0) > 0:
                left[r["split"]] -= 1
                arr = np.full_like(arr, np.nan)
            else:
                continue
            r["path"] = str(out / f"{i}.npy")
            np.save(r["path"], arr)
        return rows
    return edit


def test_a_whole_class_of_zeros_fails_naming_the_class(tmp_path, hands_root):
    manifest = rewrite_manifest(hands_root, tmp_path / "zeros.csv", emptied(tmp_path, label="C"))
    report = run_doctor(tmp_path / "doc", [f"data.manifest={manifest}", *NO_TRAINING])
    values = check(report, "NaN / inf / constant inputs")
    # 28 of 728 samples (< 50% of the data, which is all the old rule looked at) — but all of class C.
    assert values["status"] == "fail" and "class C: 20 of 20 train samples constant" in values["detail"], values
    assert not report["ok"]


def test_all_nan_samples_fail_in_val_and_warn_in_train(tmp_path, hands_root, capsys):
    manifest = rewrite_manifest(hands_root, tmp_path / "nan_val.csv", emptied(tmp_path, nan={"val": 2, "train": 3}))
    report = run_doctor(tmp_path / "doc", [f"data.manifest={manifest}", *NO_TRAINING])
    values = check(report, "NaN / inf / constant inputs")
    assert values["status"] == "fail" and "2 val/test sample(s) entirely NaN" in values["detail"], values
    assert "3 training sample(s) entirely NaN" in values["detail"]
    # Training loads the data the same way: it says so, one line per split with the count and example files.
    printed = capsys.readouterr().out
    assert "3 train sample(s) entirely NaN (no landmarks detected), trained on zeros" in printed, printed[-2000:]
    assert "2 val sample(s) entirely NaN" in printed and "0.npy" in printed

    (tmp_path / "t").mkdir()
    manifest = rewrite_manifest(hands_root, tmp_path / "nan_train.csv", emptied(tmp_path / "t", nan={"train": 3}))
    report = run_doctor(tmp_path / "doc2", [f"data.manifest={manifest}", *NO_TRAINING])
    values = check(report, "NaN / inf / constant inputs")
    assert values["status"] == "warn" and "3 training sample(s) entirely NaN" in values["detail"], values
    assert report["ok"]


def bundle(splits: dict[str, list[str]]):
    return SimpleNamespace(splits={s: SimpleNamespace(paths=p) for s, p in splits.items()})


def test_duplicate_messages_say_where_the_copies_are(tmp_path):
    from signlip.doctor.audit import audit_duplicates

    files = {}
    for name, content in (("a", b"1"), ("a_copy", b"1"), ("b", b"2"), ("b_copy", b"2"), ("b_again", b"2"),
                          ("c", b"3")):
        files[name] = tmp_path / f"{name}.npy"
        files[name].write_bytes(content)
    cfg = {"hash_max_mb": 10}
    within = audit_duplicates(bundle({"train": [str(files["a"]), str(files["a_copy"])], "test": [str(files["c"])]}),
                              cfg)
    assert within.status == "warn" and "within the train split" in within.detail, within
    assert "more than one split" not in within.detail and "across" not in within.detail
    # Two copies in train and one in test: the example pairs the splits it accuses.
    across = audit_duplicates(bundle({"train": [str(files["b"]), str(files["b_copy"]), str(files["a"])],
                                      "test": [str(files["b_again"])]}), cfg)
    assert across.status == "fail" and "across splits: b.npy [train] = b_again.npy [test]" in across.detail, across


def test_mouth_clips_are_pictured_big_enough_to_read(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from signlip.data.clips.picture import ZOOM, draw_sample
    from signlip.doctor.picture import picture

    x = torch.rand(2, 1, 16, 64, 96)  # (B, C, T, H, W) gray mouth crops

    class Clips:
        labels = np.array([0, 1])

        def __len__(self):
            return 2

        def __getitems__(self, idx):
            return {"x": x[idx], "y": torch.tensor(self.labels[idx]), "index": torch.tensor(idx)}

    figures = []
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))
    data = SimpleNamespace(splits={"train": Clips()}, classes=["about", "bottle"], draw_sample=draw_sample)
    picture(data, lambda b, training: b, torch.device("cpu"), tmp_path / "p.png", {"per_class": 1, "max_classes": 2}, 0)
    width, height = Image.open(tmp_path / "p.png").size
    assert width >= ZOOM * 4 * 96 and height >= 2 * ZOOM * 2 * 64, (width, height)  # was 336 px wide: < 1 px/pixel
    fig = figures[-1]
    renderer = fig.canvas.get_renderer()
    strip = fig.axes[0].get_window_extent(renderer)
    assert strip.width >= 1.9 * 4 * 96  # ≈ 2 screen pixels per clip pixel
    title = fig._suptitle
    assert "points" not in title.get_text() and "frames per clip" in title.get_text()
    box = title.get_window_extent(renderer)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width  # wrapped inside the figure, not clipped at its edges
    matplotlib.pyplot.close("all")


def test_static_sequences_are_not_accused_of_frame_order_bugs():
    """A held handshape (frames differ only by tracking jitter) is no more ordered than its shuffled copy, and that
    is no bug: too little motion to judge. Moving sequences shuffled still FAIL."""
    import torch

    from signlip.doctor.audit import _order_check, _order_stats

    gen = torch.Generator().manual_seed(0)
    cfg = {"order_warn_ratio": 0.8}
    poses = torch.randn(64, 1, 63, generator=gen)  # one pose per sample
    static = poses + 0.02 * torch.randn(64, 30, 63, generator=gen)
    check = _order_check(*_order_stats(static, None, gen), True, cfg)
    assert check.status == "pass" and "too little motion" in check.detail, check
    t = torch.linspace(0, 3, 30)[None, :, None]
    moving = poses + torch.sin(t * (1 + torch.rand(64, 1, 63, generator=gen)) * 3)
    assert _order_check(*_order_stats(moving, None, gen), True, cfg).status == "pass"
    shuffled = torch.stack([seq[torch.randperm(30, generator=gen)] for seq in moving])  # each sample its own order
    check = _order_check(*_order_stats(shuffled, None, gen), True, cfg)
    assert check.status == "fail", check
