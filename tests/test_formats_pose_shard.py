"""`.pose` files (pose-format's MediaPipe holistic layout) → `signlip prepare` → train; `data.write_pose=true`;
sharded preparation (`prepare.shard=K/N` + `prepare.merge=true`) against one unsharded run."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from conftest import compose, train_in_process
from signlip.data.holistic.features import FACE, LEFT_HAND, N_POINTS, POSE, RIGHT_HAND
from signlip.errors import SignlipError

pf = pytest.importorskip("pose_format")
from pose_format.numpy import NumPyPoseBody  # noqa: E402
from pose_format.pose_header import PoseHeaderComponent, PoseHeaderDimensions  # noqa: E402

WIDTH, HEIGHT = 640, 480
LABELS = ("hello", "thanks", "yes")


def _component(name: str, n: int, points: list[str] | None = None) -> PoseHeaderComponent:
    return PoseHeaderComponent(name=name, points=points or [f"P{i}" for i in range(n)], limbs=[(0, 1)],
                               colors=[(255, 0, 0)], point_format="XYZC")


def write_holistic_pose(path: Path, arr: np.ndarray, face_points: int = 478, hands_only: bool = False) -> None:
    """Write a (T, 543, 3) array the way pose-format's holistic pipeline lays a file out: POSE, FACE (478 points with
    the iris, named by mesh index), LEFT_HAND, RIGHT_HAND, POSE_WORLD; pixels of WIDTH × HEIGHT; confidence 0 where
    NaN (the data 0 there, as pose-format writes undetected parts)."""
    parts = [("LEFT_HAND_LANDMARKS", arr[:, LEFT_HAND]), ("RIGHT_HAND_LANDMARKS", arr[:, RIGHT_HAND])]
    if not hands_only:
        face = np.concatenate([arr[:, FACE], np.full((len(arr), face_points - 468, 3), 0.5, np.float32)], 1)
        world = np.full((len(arr), 33, 3), 0.1, np.float32)  # metres: must not be read
        parts = [("POSE_LANDMARKS", arr[:, POSE]), ("FACE_LANDMARKS", face), *parts, ("POSE_WORLD_LANDMARKS", world)]
    comps = [_component(n, a.shape[1], [str(i) for i in range(a.shape[1])] if n == "FACE_LANDMARKS" else None)
             for n, a in parts]
    pts = np.concatenate([a for _, a in parts], 1).astype(np.float32)
    conf = np.isfinite(pts).all(-1).astype(np.float32)
    pts = np.nan_to_num(pts) * np.asarray([WIDTH, HEIGHT, 1], np.float32)
    body = NumPyPoseBody(fps=25, data=pts[:, None], confidence=conf[:, None])
    header = pf.PoseHeader(version=0.2, dimensions=PoseHeaderDimensions(width=WIDTH, height=HEIGHT, depth=0),
                           components=comps)
    with path.open("wb") as fh:
        pf.Pose(header, body).write(fh)


def _sequence(rng: np.random.Generator, label: int, t: int = 8) -> np.ndarray:
    """A sign: the class moves the right hand along its own direction; NaN where the left hand is not seen."""
    arr = np.full((t, N_POINTS, 3), np.nan, np.float32)
    arr[:, FACE] = rng.uniform(0.4, 0.6, (1, 468, 3))
    arr[:, POSE] = rng.uniform(0.2, 0.8, (1, 33, 3))
    steps = np.linspace(0, 0.2, t)[:, None, None] * np.asarray([np.cos(label * 2.1), np.sin(label * 2.1), 0])
    arr[:, RIGHT_HAND] = rng.uniform(0.45, 0.55, (1, 21, 3)) + steps
    arr[::2, LEFT_HAND] = rng.uniform(0.3, 0.4, (1, 21, 3))
    return arr


@pytest.fixture(scope="module")
def pose_root(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """DIR/<label>/s<signer>_<n>.pose: 3 labels × 3 signers (9 files), plus the arrays they hold."""
    root = tmp_path_factory.mktemp("pose_root")
    rng = np.random.default_rng(0)
    expected = {}
    for k, label in enumerate(LABELS):
        (root / label).mkdir()
        for signer in range(3):
            arr = _sequence(rng, k)
            path = root / label / f"s{signer}_{k}.pose"
            write_holistic_pose(path, arr)
            expected[str(path)] = arr
    return root, expected


def _prepare(tmp: Path, root: Path, *extra: str):
    """`signlip prepare task=asl_tcn_transformer data.root=… data.format=pose …` in process (signers from the file
    names: 9 files of 3 classes are too few for a split by sample)."""
    from omegaconf import OmegaConf

    from signlip.data.cache import Sharding, prepare_data
    from signlip.registry import load_all

    load_all()
    cfg = compose("prepare", ["task=asl_tcn_transformer", f"data.root={root}", "data.format=pose",
                              f"data.cache_dir={tmp / 'cache'}", f"data.manifests_dir={tmp / 'manifests'}",
                              "+data.format_options.speaker_pattern='^(s\\d+)_'", "prepare.workers=1", *extra])
    data = OmegaConf.to_container(cfg.data, resolve=True)
    sharding = Sharding.parse(cfg.prepare.shard, cfg.prepare.merge, "signlip prepare …")
    return prepare_data(data.pop("name"), data, seed=0, workers=1, overwrite=cfg.prepare.overwrite,
                        sharding=sharding)


def _rows(manifest: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(manifest.open()))


def _same_cache(manifest: Path) -> list[dict[str, str]]:
    """The rows with each path cut to its file name (two runs in two tmp folders have two cache folders)."""
    return [{**r, "path": Path(r["path"]).name} for r in _rows(manifest)]


# --- .pose reading ----------------------------------------------------------------------------------------------
def test_read_holistic_pose_maps_parts_and_confidence_to_nan(tmp_path):
    from signlip.data.formats.pose import read_pose

    arr = _sequence(np.random.default_rng(1), 0)
    arr[3, RIGHT_HAND.start + 4] = np.nan  # one undetected point
    write_holistic_pose(tmp_path / "a.pose", arr)
    got = read_pose(tmp_path / "a.pose")
    assert got.shape == arr.shape and got.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(got), np.isnan(arr))  # confidence 0 → NaN, iris and world dropped
    np.testing.assert_allclose(got, arr, atol=1e-6)  # pixels back to MediaPipe's normalised coordinates
    write_holistic_pose(tmp_path / "hands.pose", arr, hands_only=True)
    hands = read_pose(tmp_path / "hands.pose")
    assert np.isnan(hands[:, FACE]).all() and np.isnan(hands[:, POSE]).all()
    np.testing.assert_allclose(hands[:, RIGHT_HAND], arr[:, RIGHT_HAND], atol=1e-6)


def test_openpose_layout_is_one_clear_line(tmp_path, capsys):
    from signlip.data.formats.pose import read_pose

    comps = [_component("pose_keypoints_2d", 25), _component("hand_left_keypoints_2d", 21)]
    body = NumPyPoseBody(fps=25, data=np.ones((2, 1, 46, 3), np.float32), confidence=np.ones((2, 1, 46), np.float32))
    header = pf.PoseHeader(0.2, PoseHeaderDimensions(WIDTH, HEIGHT, 0), comps)
    with (tmp_path / "op.pose").open("wb") as fh:
        pf.Pose(header, body).write(fh)
    with pytest.raises(SignlipError, match="not a MediaPipe holistic .pose — its components are pose_keypoints_2d, "
                                           "hand_left_keypoints_2d"):
        read_pose(tmp_path / "op.pose")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x").mkdir()
    (tmp_path / "bad" / "y").mkdir()
    for i in range(4):  # enough rows for the raw manifest's seeded split
        (tmp_path / "bad" / "x" / f"op{i}.pose").write_bytes((tmp_path / "op.pose").read_bytes())
        (tmp_path / "bad" / "y" / f"broken{i}.pose").write_bytes(b"not a pose file")
    from signlip.commands.prepare import main as prepare_main  # `signlip prepare`, in process (a subprocess: +5 s)

    cfg = compose("prepare", ["task=asl_tcn_transformer", f"data.root={tmp_path / 'bad'}",  # data.format=auto
                              f"data.cache_dir={tmp_path / 'cache'}", f"data.manifests_dir={tmp_path / 'm'}",
                              "prepare.workers=1"])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        prepare_main(cfg)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith("signlip: error: no usable sample"), err
    report = {Path(r["path"]).name: r["reason"] for r in
              csv.DictReader(next((tmp_path / "cache").rglob("prepare_report.csv")).open())}
    assert len(report) == 8 and "its components are pose_keypoints_2d" in report["op0.pose"]
    assert "not a readable .pose file" in report["broken0.pose"]


def test_write_pose_round_trip(pose_root, tmp_path):
    from signlip.data.formats.pose import read_pose

    root, expected = pose_root
    result = _prepare(tmp_path, root, "data.write_pose=true", "data.limit=2")
    for row in _rows(result.manifest):
        array = result.manifest.parent / row["path"]
        written = array.with_suffix(".pose")
        back, cached = read_pose(written), np.load(array)
        np.testing.assert_array_equal(np.isnan(back), np.isnan(cached))  # NaN where masked
        np.testing.assert_allclose(back, cached, atol=1e-6)
        np.testing.assert_allclose(cached, expected[row["source"]], atol=1e-6)
        header = pf.Pose.read(written.read_bytes()).header
        assert (header.dimensions.width, header.dimensions.height) == (WIDTH, HEIGHT)  # sized like its source


# --- end to end: .pose class folders → prepare → train -------------------------------------------------------------
def test_pose_folders_prepare_then_train(pose_root, tmp_path):
    import torch

    root, expected = pose_root
    result = _prepare(tmp_path, root)
    rows = _rows(result.manifest)
    assert result.prepared == 9 and sorted({r["label"] for r in rows}) == sorted(LABELS)
    assert sorted({r["signer"] for r in rows}) == ["s0", "s1", "s2"]  # one signer per split: signer-disjoint
    for row in rows:
        np.testing.assert_allclose(np.load(result.manifest.parent / row["path"]), expected[row["source"]], atol=1e-6)
    fp = (result.cache_dir / "fingerprint.json").read_text()
    assert '"source": "pose_file"' in fp and "model_sha256" not in fp  # no MediaPipe model involved
    run = train_in_process(tmp_path / "run", [
        "task=asl_tcn_transformer", f"data.manifest={result.manifest}", "trainer.max_epochs=1", "data.batch_size=4",
        "data.max_len=16", "model.dim=32", "model.num_heads=2", "model.lstm_layers=1", "model.pool_heads=2",
        "trainer.early_stopping.enabled=false"])
    ckpt = torch.load(Path(run["checkpoint_dir"]) / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and sorted(ckpt["classes"]) == sorted(LABELS)
    assert ckpt["preprocessing"]["source_fingerprint"]["source"] == "pose_file"


# --- sharded preparation -----------------------------------------------------------------------------------------
def test_three_shards_and_merge_equal_one_unsharded_run(pose_root, tmp_path):
    root, _ = pose_root
    (root / "yes" / "s9_broken.pose").write_bytes(b"broken")  # a report entry too
    try:
        whole = _prepare(tmp_path / "whole", root)
        parts = [_prepare(tmp_path / "sharded", root, f"prepare.shard={k}/3") for k in (1, 2, 3)]
        assert [p.shard for p in parts] == ["1/3", "2/3", "3/3"] and sum(p.prepared for p in parts) == 9
        assert all(len(_rows(p.manifest)) >= 3 for p in parts)  # by row index: 10 rows → 4 / 3 / 3 (one broken)
        cache = parts[0].cache_dir
        assert not (cache / "prepare_report.csv").exists()  # the common files are the merge's alone
        merged = _prepare(tmp_path / "sharded", root, "prepare.merge=true")
    finally:
        (root / "yes" / "s9_broken.pose").unlink()
    assert merged.reused == 9
    assert _same_cache(merged.manifest) == _same_cache(whole.manifest)  # same rows, order, columns
    assert (merged.cache_dir / "prepare_report.csv").read_text() == (whole.cache_dir / "prepare_report.csv").read_text()
    assert "s9_broken.pose" in (merged.cache_dir / "prepare_report.csv").read_text()
    for one, other in zip(_rows(whole.manifest), _rows(merged.manifest)):
        np.testing.assert_array_equal(np.load(whole.manifest.parent / one["path"]),
                                      np.load(merged.manifest.parent / other["path"]))
    assert (merged.cache_dir / "fingerprint.json").read_text() == (whole.cache_dir / "fingerprint.json").read_text()


def test_merge_names_the_missing_shard_and_its_command(pose_root, tmp_path):
    root, _ = pose_root
    _prepare(tmp_path, root, "prepare.shard=1/3")
    _prepare(tmp_path, root, "prepare.shard=3/3")
    with pytest.raises(SignlipError) as exc:
        _prepare(tmp_path, root, "prepare.merge=true")
    line = str(exc.value)
    assert "\n" not in line and "shard(s) 2/3 not run or not finished" in line
    assert "signlip prepare … prepare.shard=2/3" in line
    with pytest.raises(SignlipError, match="prepare.shard=4/3 — give K/N with 1 ≤ K ≤ N"):
        _prepare(tmp_path, root, "prepare.shard=4/3")
    second = _prepare(tmp_path, root, "prepare.shard=2/3").manifest
    first = second.with_name("prepared.1-of-3.csv")
    second.write_text(second.read_text() + first.read_text().splitlines()[1] + "\n")  # a row in two parts
    with pytest.raises(SignlipError, match=r"1 file\(s\) are in two shards' parts .*s0_0.pose: shards \[1, 2\]"):
        _prepare(tmp_path, root, "prepare.merge=true")
