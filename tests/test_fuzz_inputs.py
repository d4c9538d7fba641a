"""Fuzz what users bring — manifests, .npy arrays, config overrides — with Hypothesis.

Every case must end in a clear, one-line `SignlipError` (or exit 2 from the CLI) or a correct result; any other
exception is a bug. The data layer is fuzzed in-process (read_manifest / load_sequence / build_data, fast);
config overrides go through the CLI's own validation and then `run_training`; a few cases run the real CLI.
Case counts are printed at the end (`pytest -s`) and recorded in docs/trust.md.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import compose, run_cli
from signlip.errors import SignlipError

COUNTS: dict[str, int] = {}
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                derandomize=True, database=None)


def counted(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    print("\nfuzz cases run: " + ", ".join(f"{k} {v}" for k, v in sorted(COUNTS.items())), file=sys.__stdout__)


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text, repr(text)
    return text


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A tiny valid landmark set: 3 classes × 3 signers (one per split) × 2 samples, (8, 21, 3) float32."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    rows = []
    for split, signer in (("train", "s0"), ("val", "s1"), ("test", "s2")):
        for c, label in enumerate(("A", "B", "C")):
            for k in range(4 if split == "train" else 2):
                arr = (rng.normal(0, 0.05, (8, 21, 3)) + c).astype(np.float32)
                name = f"{signer}_{label}_{k}.npy"
                np.save(root / name, arr)
                rows.append((name, label, split, signer))
    with (root / "manifest.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([("path", "label", "split", "signer"), *rows])
    return root


# --- .npy arrays --------------------------------------------------------------------------------------------------
DTYPES = st.sampled_from(["float32", "float64", "float16", "int32", "int8", "uint8", "bool", "complex64", "<U3",
                          "object", "V4"])
SHAPES = st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple)
SPECIAL = st.sampled_from([0.0, np.nan, np.inf, -np.inf, 1e39, -1e39, 1e-40])


@st.composite
def arrays(draw):
    dtype, shape = draw(DTYPES), draw(SHAPES)
    n = int(np.prod(shape)) if shape else 1
    values = np.asarray(draw(st.lists(st.one_of(st.floats(-10, 10), SPECIAL), min_size=n, max_size=n)), dtype=float)
    if dtype == "object":
        return np.array([None] * n, dtype=object).reshape(shape)
    if dtype == "V4":
        return np.zeros(shape, dtype="V4")
    with np.errstate(all="ignore"):
        return np.nan_to_num(values, nan=0, posinf=0, neginf=0).astype(dtype).reshape(shape) \
            if dtype.startswith(("int", "uint", "bool", "<U")) else values.astype(dtype).reshape(shape)


@settings(FUZZ, max_examples=200)
@given(arr=arrays(), seq_len=st.integers(1, 12), expected=st.sampled_from([None, (21, 3), (4,)]))
def test_load_sequence_fuzz(tmp_path_factory, arr, seq_len, expected):
    from signlip.data.landmarks.datamodule import load_sequence

    counted("npy arrays")
    path = tmp_path_factory.getbasetemp() / f"fuzz_{uuid.uuid4().hex}.npy"
    np.save(path, arr, allow_pickle=True)
    try:
        out, real = load_sequence(str(path), seq_len, expected)
    except SignlipError as exc:
        assert str(path) in one_line(exc)
        return
    assert out.dtype == np.float32 and out.shape[0] == seq_len and 1 <= real <= seq_len
    assert not np.isinf(out).any()
    assert arr.ndim in (2, 3) and (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer))


def _header(shape: tuple[int, ...]) -> bytes:
    """A valid .npy header promising `shape` float32 (the data after it is whatever the fuzzer adds)."""
    from numpy.lib import format as npy_format

    buf = io.BytesIO()
    npy_format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buf.getvalue()


@settings(FUZZ, max_examples=60)
@given(blob=st.binary(max_size=300),
       prefix=st.sampled_from([b"", b"\x93NUMPY", b"\x93NUMPY\x01\x00v\x00{", b"PK\x03\x04",
                               _header((10**11, 21, 3)), _header((10, 21, 3))]))
def test_load_sequence_garbage_files(tmp_path_factory, blob, prefix):
    from signlip.data.landmarks.datamodule import load_sequence

    counted("npy garbage bytes")
    path = tmp_path_factory.getbasetemp() / f"garbage_{uuid.uuid4().hex}.npy"
    path.write_bytes(prefix + blob)
    try:
        load_sequence(str(path), 10, None)
    except SignlipError as exc:
        one_line(exc)


# --- manifests ----------------------------------------------------------------------------------------------------
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
COLUMNS = st.lists(st.sampled_from(["path", "label", "split", "signer", "speaker", "x", "ü¬€", " path", "LABEL", ""]),
                   max_size=6)


@st.composite
def manifests(draw, files: list[str]):
    """Mostly-valid manifests with a drawn share of broken fields, plus wholly random headers and rows."""
    header = draw(st.one_of(st.just(["path", "label", "split", "signer"]), st.just(["path", "label", "split"]),
                            st.just(["path", "label", "signer"]), st.just(["path", "label"]), COLUMNS))
    noise = draw(st.sampled_from([0.0, 0.0, 0.05, 0.2, 1.0]))
    splits = {"s0": "train", "s1": "val", "s2": "test"}
    rows = []
    for name in draw(st.one_of(st.permutations(files), st.lists(st.sampled_from(files), max_size=18))):
        signer, label = name.split("_")[:2]
        good = {"path": name, "label": label, "split": splits[signer], "signer": signer, "speaker": signer}
        bad = {
            "path": st.one_of(TEXT, st.sampled_from(["", "/", "..", "missing.npy", "~/x.npy", "a\x00b.npy"])),
            "label": TEXT, "split": st.one_of(st.sampled_from(["TRAIN", " val ", "dev"]), TEXT),
            "signer": st.one_of(st.sampled_from(["s0", "s1", "s2", ""]), TEXT),
        }
        row = []
        for c in header:
            if c in good and draw(st.floats(0, 1)) >= noise:
                row.append(good[c])
            else:
                row.append(draw(bad.get(c, TEXT)))
        rows.append(row)
    if rows and draw(st.booleans()):
        rows += rows[: draw(st.integers(1, len(rows)))]  # duplicate rows
    buf = io.StringIO()
    writer = csv.writer(buf)
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    data = buf.getvalue().encode("utf-8")
    mangle = draw(st.sampled_from(["none"] * 6 + ["bom", "latin1", "nul", "binary", "empty"]))
    if mangle == "bom":
        data = b"\xef\xbb\xbf" + data
    elif mangle == "latin1":
        data = data + "é,ü\n".encode("latin-1")
    elif mangle == "nul":
        data = data.replace(b",", b"\x00,", 1)
    elif mangle == "binary":
        data = draw(st.binary(max_size=200))
    elif mangle == "empty":
        data = b""
    return data


TINY_FILES = [f"{s}_{c}_{k}.npy" for s, c, k in itertools.product(("s0", "s1", "s2"), "ABC", range(2))]


@settings(FUZZ, max_examples=150)
@given(data=manifests(TINY_FILES), split_seed=st.integers(0, 3))
def test_read_manifest_and_build_data_fuzz(tiny, data, split_seed):
    from signlip.data.manifest import read_manifest
    from signlip.registry import build_data

    counted("manifests")
    path = tiny / f"m_{uuid.uuid4().hex}.csv"
    path.write_bytes(data)
    try:
        m = read_manifest(path, seed=split_seed)
    except SignlipError as exc:
        one_line(exc)
        return
    assert m.rows("train") and m.rows("val") and m.rows("test")
    try:
        bundle = build_data("landmarks", manifest=str(path), seed=split_seed)
    except SignlipError as exc:
        one_line(exc)
        return
    counted("manifests that built a dataset")
    assert set(bundle.classes) <= {m.labels[i] for i in m.rows("train")}
    assert all(len(ds) for ds in bundle.splits.values())


# --- config overrides ---------------------------------------------------------------------------------------------
NUMBERS = st.one_of(st.integers(-3, 70), st.sampled_from(["0", "-1", "nan", "inf", "1e9", "-1e-9", "0.5", "abc", "''",
                                                          "null", "[1,2]", "ü"]))
OVERRIDES = {
    "optim.lr": NUMBERS, "optim.weight_decay": NUMBERS, "data.batch_size": NUMBERS, "data.sequence_length": NUMBERS,
    "trainer.max_epochs": st.sampled_from(["-1", "0", "1", "2", "x"]), "trainer.grad_accum_steps": NUMBERS,
    "trainer.grad_clip_norm": NUMBERS, "trainer.nan_policy": st.sampled_from(["stop", "skip", "maybe", "ß"]),
    "trainer.mode": st.sampled_from(["max", "min", "sideways"]),
    "trainer.monitor": st.sampled_from(["val/accuracy", "val/loss", "train/foo", "val/macro_f1"]),
    "trainer.precision": st.sampled_from(["32", "bf16", "16", "64", "half"]),
    "trainer.limit_train_batches": st.sampled_from(["0", "-1", "1", "2", "null"]),
    "data.normalise": st.sampled_from(["sequence", "none", "zzz"]), "data.augment.p_rotate": NUMBERS,
    "data.augment.rotation_degrees": NUMBERS, "data.stratified": st.sampled_from(["true", "false", "maybe"]),
    "objective.label_smoothing": NUMBERS, "objective.focal_gamma": NUMBERS,
    "objective.class_weights": st.sampled_from(["balanced", "[1,2,3]", "[1]", "null", "heavy"]),
    "seed": st.one_of(NUMBERS, st.sampled_from(["-7", "1099511627776", "-1099511627776"])),
    "model.hidden_size": NUMBERS, "model.num_layers": NUMBERS, "model.dropout": NUMBERS,
    "model.cell": st.sampled_from(["gru", "lstm", "rnn"]), "model.dense_size": NUMBERS,
    "sched": st.sampled_from(["plateau", "cosine", "onecycle", "step", "none", "cosine_warm_restarts", "linear"]),
    "optim": st.sampled_from(["adam", "adamw", "sgd", "lion"]), "sched.warmup_steps": NUMBERS,
    "trainer.early_stopping.patience": NUMBERS, "trainer.typo_key": NUMBERS,
}


CHOSEN = st.dictionaries(st.sampled_from(sorted(OVERRIDES)), st.just(None), min_size=1, max_size=4)


@settings(FUZZ, max_examples=12)
@given(chosen=CHOSEN, data=st.data())
def test_config_overrides_fuzz(tiny, tmp_path_factory, chosen, data):
    config_case(tiny, tmp_path_factory, chosen, data)


@pytest.mark.slow
@settings(FUZZ, max_examples=80, derandomize=False)
@given(chosen=CHOSEN, data=st.data())
def test_config_overrides_fuzz_long(tiny, tmp_path_factory, chosen, data):
    config_case(tiny, tmp_path_factory, chosen, data)


def config_case(tiny, tmp_path_factory, chosen, data):
    from omegaconf import OmegaConf

    from signlip import cli
    from signlip.config import register_schemas
    from signlip.training import run_training

    register_schemas()  # as `signlip train` does before validating
    counted("config overrides")
    overrides = [f"{key}={data.draw(OVERRIDES[key], label=key)}" for key in chosen]
    base = [f"data.manifest={tiny / 'manifest.csv'}", "trainer.max_epochs=1", "trainer.device=cpu",
            "logger.tensorboard=false", "logger.progress=false", "model=landmark_gru_light"]
    args = [*base, *overrides]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            cli.check_group_choices(args)
            cli.validate("train", args)
    except SystemExit as exc:  # the CLI's own one-line rejection
        assert exc.code == 2
        lines = [line for line in err.getvalue().splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("signlip: error:"), err.getvalue()
        counted("config overrides rejected by validation")
        return
    cfg = compose("train", args)
    run_dir = tmp_path_factory.getbasetemp() / f"cfg_{uuid.uuid4().hex}"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            result = run_training(OmegaConf.to_container(cfg, resolve=True), OmegaConf.to_object(cfg.trainer),
                                  run_dir, outputs_root=run_dir)
    except SignlipError as exc:
        one_line(exc)
        counted("config overrides rejected at start")
        return
    counted("config overrides that trained")
    assert (run_dir / "run.json").is_file() and "summary" in result


# --- the real CLI, a handful of cases -----------------------------------------------------------------------------
def test_cli_cases_end_in_one_line_or_a_run(tiny, tmp_path):
    bad_csv = tmp_path / "latin1.csv"
    bad_csv.write_bytes("path,label,split\nä.npy,é,train\n".encode("latin-1"))
    wrong = tmp_path / "wrong.csv"
    np.save(tmp_path / "wrong.npy", np.zeros((5, 7), np.float32))
    wrong.write_text("path,label,split\n" + "".join(f"{tiny / f}," + "ABC"[i % 3] + ",train\n"
                                                     for i, f in enumerate(TINY_FILES))
                     + f"wrong.npy,A,val\n{tiny / 's2_A_0.npy'},A,test\n")
    cases = [
        [f"data.manifest={bad_csv}"],
        [f"data.manifest={wrong}"],
        [f"data.manifest={tiny / 'manifest.csv'}", "data.batch_size=0"],
    ]
    for args in cases:
        counted("CLI subprocess cases")
        proc = run_cli("train", *args, "trainer.max_epochs=1", "logger.tensorboard=false", cwd=tmp_path)
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        assert proc.returncode == 2, (args, proc.stderr[-1500:])
        assert len(lines) == 1 and "Traceback" not in proc.stderr, (args, proc.stderr[-1500:])
