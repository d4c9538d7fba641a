"""`signlip export` / `signlip benchmark`: every task's model exports to ONNX with logits equal to PyTorch's on the
test split (max |Δlogit| ≤ 1e-4, top-1 agreement 1.0), at any batch size (and any length for sequence models); INT8
reports its accuracy change; the sidecar is enough to run the model without signlip; bad input is one line, exit 2.

Checkpoints are `tiny_checkpoint`'s (one epoch on tiny data): what is compared is two runtimes over the same weights.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from conftest import run_cli

pytest.importorskip("onnxruntime")

from signlip.build import rebuild  # noqa: E402
from signlip.deploy import onnx_export  # noqa: E402
from signlip.deploy.onnx_export import export_checkpoint, input_names, model_batches, ort_session  # noqa: E402

TASKS = ("landmark_gru", "lip_cnnlstm", "lip_cnn3d", "asl_tcn_transformer", "i3d", "mobilenetv3")
SEQUENCE_TASKS = ("landmark_gru", "asl_tcn_transformer")


def _eager(model, batch):
    with torch.inference_mode():
        return model(batch["x"], batch.get("mask")).numpy()


# One recurrent landmark model and one conv + LSTM clip model in the default suite; the other four (~20 s together)
# run with the slow tests — the same parity check, on the heavier exports.
DEFAULT_PARITY = ("landmark_gru", "lip_cnnlstm")


@pytest.mark.parametrize("task", [t if t in DEFAULT_PARITY else pytest.param(t, marks=pytest.mark.slow)
                                  for t in TASKS])
def test_export_matches_pytorch_at_any_batch_size(task, tiny_checkpoint, tmp_path):
    ckpt = tiny_checkpoint(task)
    exported = export_checkpoint(ckpt, out=tmp_path, report=lambda _: None)
    parity = exported.sidecar["parity"]
    assert parity["max_abs_logit_diff"] <= 1e-4 and parity["top1_agreement"] == 1.0, parity
    assert parity["samples"] == len(rebuild(ckpt).data.splits["test"])

    # Dynamic batch (and time for sequence models): the graph runs at sizes other than the traced one.
    back = rebuild(ckpt)
    model = back.model.eval()
    batch = next(model_batches(back, "test"))
    names = input_names(batch)
    session = ort_session(exported.paths["fp32"])
    one = {k: batch[k][:1] for k in names}
    three = {k: torch.cat([batch[k]] * 3)[:3] for k in names}
    sizes = [one, three]
    if task in SEQUENCE_TASKS:  # shorter and longer sequences, the second sample padded
        t = batch["x"].shape[1]
        for length in (max(2, t // 2), t + 5):
            x = torch.randn(3, length, *batch["x"].shape[2:])
            mask = torch.ones(3, length, dtype=torch.bool)
            mask[1, length // 2:] = False
            sizes.append({"x": x * mask[..., None], "mask": mask})
    for feeds in sizes:
        got = session.run(["logits"], {k: v.numpy() for k, v in feeds.items()})[0]
        assert got.shape == (feeds["x"].shape[0], len(back.data.classes))
        np.testing.assert_allclose(got, _eager(model, feeds), atol=1e-4, rtol=0)


def test_cli_export_int8_and_sidecar(tiny_checkpoint, tmp_path):
    """The CLI path: model.onnx + model.int8.onnx + model.json, with the INT8 accuracy change and the opset."""
    ckpt = tiny_checkpoint("landmark_gru")
    result = run_cli("export", f"ckpt={ckpt}", f"out={tmp_path}", "int8=true")
    assert result.returncode == 0, result.stderr
    assert "top-1 agreement 1.000" in result.stdout and "int8 (dynamic)" in result.stdout
    for name in ("model.onnx", "model.int8.onnx", "model.json"):
        assert (tmp_path / name).is_file()
    side = json.loads((tmp_path / "model.json").read_text())
    assert side["opset"] == onnx_export.OPSET and side["files"] == {"fp32": "model.onnx", "int8": "model.int8.onnx"}
    assert side["classes"] == torch.load(ckpt, weights_only=True)["classes"]
    assert [i["name"] for i in side["inputs"]] == ["x", "mask"] and side["inputs"][0]["shape"][:2] == ["batch", "time"]
    q = side["int8"]
    assert q["mode"] == "dynamic" and q["chosen_by"] == "auto"
    assert math.isfinite(q["accuracy_change_points"]) and 0 <= q["accuracy_int8"] <= 1
    assert q["speedup_vs_fp32_onnx"] > 0 and q["size_mb"]["int8"] < q["size_mb"]["fp32"]
    assert {"mean", "std", "sequence_length", "normalise", "feature_shape"} <= set(side["preprocessing"])


def test_static_int8_for_convolutions(tiny_checkpoint, tmp_path):
    """auto picks static QDQ for a conv network; it is calibrated on train batches and scored on the test split."""
    exported = export_checkpoint(tiny_checkpoint("mobilenetv3"), out=tmp_path, int8=True, calibration_batches=2,
                                 report=lambda _: None)
    q = exported.sidecar["int8"]
    assert q["mode"] == "static" and q["calibration_batches"] >= 1
    assert exported.paths["int8"].is_file() and math.isfinite(q["accuracy_change_points"])


def test_auto_int8_measures_the_other_mode_when_its_choice_loses_accuracy(tiny_checkpoint, tmp_path, monkeypatch):
    """int8_mode=auto never ships a form that loses more than a point when the other mode does better: the graph
    rule's pick is measured, and if it loses too much the other one is measured and the better kept (a trained I3D's
    static INT8 once fell from 1.000 to 0.500)."""
    import shutil

    losses = {"static": -50.0, "dynamic": 0.0}

    def fake_int8_form(back, fp32_path, int8_path, mode, *args):
        shutil.copy(fp32_path, int8_path)
        return {"metric": "accuracy", "accuracy_fp32_onnx": 1.0, "accuracy_int8": 1.0 + losses[mode] / 100,
                "accuracy_change_points": losses[mode], "latency_ms_batch1_1thread": {"fp32": 1.0, "int8": 1.0},
                "speedup_vs_fp32_onnx": 1.0, "size_mb": {"fp32": 1.0, "int8": 1.0}, "calibration_batches": 0}

    monkeypatch.setattr(onnx_export, "choose_int8_mode", lambda path: "static")
    monkeypatch.setattr(onnx_export, "int8_form", fake_int8_form)
    lines: list[str] = []
    q = export_checkpoint(tiny_checkpoint("landmark_gru"), out=tmp_path, int8=True, report=lines.append).sidecar["int8"]
    assert q["mode"] == "dynamic" and q["chosen_by"] == "auto, by test accuracy" and q["accuracy_change_points"] == 0
    assert any("int8 (static) lost 50.0 points" in line for line in lines)
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == ["model.int8.onnx", "model.onnx"]
    losses["dynamic"] = -60.0  # both lose: the lesser loss is kept, with a warning
    lines.clear()
    q = export_checkpoint(tiny_checkpoint("landmark_gru"), out=tmp_path, int8=True, report=lines.append).sidecar["int8"]
    assert q["mode"] == "static" and any(line.startswith("warning: the INT8 model loses 50.0") for line in lines)


def _sidecar_preprocess(path: str, side: dict) -> tuple[np.ndarray, np.ndarray]:
    """One landmark .npy → (x, mask) by the sidecar's documented steps, in numpy alone."""
    prep = side["preprocessing"]
    arr = np.load(path).astype(np.float32)
    length = prep["sequence_length"]
    real = min(len(arr), length)
    arr = arr[:length] if len(arr) >= length else np.concatenate([arr, np.repeat(arr[-1:], length - len(arr), 0)])
    mask = np.arange(length) < real
    if prep["normalise"] == "sequence" and arr.ndim == 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            centre = np.nanmean(arr.reshape(-1, 3), axis=0)
            spread = np.nanmean(np.linalg.norm(arr - np.nanmean(arr, axis=1, keepdims=True), axis=-1))
        if np.isfinite(spread) and spread >= 1e-6:
            arr = (arr - centre) / spread
    x = (arr.reshape(length, -1) - np.asarray(prep["mean"], np.float32)) / np.asarray(prep["std"], np.float32)
    x = np.nan_to_num(x, nan=0.0) * mask[:, None]
    return x[None].astype(np.float32), mask[None]


def test_sidecar_and_onnxruntime_alone_reproduce_the_logits(tiny_checkpoint, tmp_path):
    """An app with model.onnx + model.json, numpy and onnxruntime gets signlip's logits for a test .npy."""
    import onnxruntime

    ckpt = tiny_checkpoint("landmark_gru")
    export_checkpoint(ckpt, out=tmp_path, report=lambda _: None)
    side = json.loads((tmp_path / "model.json").read_text())
    assert side["input_steps"]["numpy_reproducible"] and side["input_steps"]["steps"]
    back = rebuild(ckpt)
    test = back.data.splits["test"]
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    reference = next(model_batches(back, "test", batch_size=4))
    for i in range(4):
        x, mask = _sidecar_preprocess(test.paths[i], side)
        np.testing.assert_allclose(x[0], reference["x"][i].numpy(), atol=1e-5)
        logits = session.run(["logits"], {"x": x, "mask": mask})[0]
        np.testing.assert_allclose(logits[0], _eager(back.model.eval(), reference)[i], atol=1e-4, rtol=0)
        assert side["classes"][int(logits.argmax())] in side["classes"]


# Continuous recognition (CTC): the landmark sentence model in the default suite, the RGB student and teacher with the
# slow tests (video preparation and two conv stacks).
CTC_TASKS = [pytest.param("cslr_landmarks"), pytest.param("cslr_lip", marks=pytest.mark.slow),
             pytest.param("cslr_rgb", marks=pytest.mark.slow),
             pytest.param("cslr_rgb_teacher", marks=pytest.mark.slow)]


@pytest.mark.parametrize("task", CTC_TASKS)
def test_ctc_export_matches_pytorch_at_any_length(task, tiny_checkpoint, tmp_path):
    """A CTC checkpoint exports as (x, mask) → (logits per step, output lengths): on the test split and at other
    batch sizes and lengths (one sample padded), ONNX gives PyTorch's output lengths exactly and its logits on every
    real step; the sidecar's greedy decoding of the ONNX outputs gives the glosses signlip predicts."""
    from signlip.deploy.onnx_export import time_axis, torch_runner
    from signlip.deploy.predict import Recogniser

    ckpt = tiny_checkpoint(task)
    exported = export_checkpoint(ckpt, out=tmp_path, report=lambda _: None)
    parity = exported.sidecar["parity"]
    assert parity["max_abs_logit_diff"] <= 1e-4 and parity["top1_agreement"] == 1.0, parity
    assert parity["sentence_agreement"] == 1.0 and parity["wer_pytorch"] == parity["wer_onnx"], parity
    back = rebuild(ckpt)
    assert parity["samples"] == len(back.data.splits["test"])
    side = exported.sidecar
    assert [o["name"] for o in side["outputs"]] == ["logits", "lengths"]
    assert side["outputs"][0]["shape"][-1] == len(side["classes"]) + 1
    x = next(model_batches(back, "test"))["x"]
    shape = side["inputs"][0]["shape"]  # (batch, time, F) landmarks, (batch, 3, time, H, W) RGB sentences
    assert shape == ["batch"] + ["time" if i == time_axis(x) else n for i, n in enumerate(x.shape)][1:], shape

    model = back.model.eval()
    eager = torch_runner(model, ctc=True)
    session = ort_session(exported.paths["fp32"])
    batch = next(model_batches(back, "test"))
    axis = time_axis(batch["x"])
    t = batch["x"].shape[axis]
    generator = torch.Generator().manual_seed(0)
    for n, length in ((1, t), (3, max(8, t // 2)), (3, t + 9)):
        shape = list(batch["x"].shape)
        shape[0], shape[axis] = n, length
        mask = torch.ones(n, length, dtype=torch.bool)
        mask[-1, length // 2:] = n == 1  # the last of several samples is half padding
        frames = mask.view(n, *([1] * (axis - 1)), length, *([1] * (len(shape) - axis - 1)))
        feeds = {"x": torch.randn(shape, generator=generator) * frames, "mask": mask}
        logits, lengths = session.run(None, {k: v.numpy() for k, v in feeds.items()})
        want_logits, want_lengths = eager(feeds)
        np.testing.assert_array_equal(lengths, want_lengths.numpy())
        for i, steps in enumerate(lengths):
            np.testing.assert_allclose(logits[i, :steps], want_logits[i, :steps].numpy(), atol=1e-4, rtol=0)

    # What an app does with model.onnx + model.json on a test file (as signlip predict reads it): argmax per real
    # step, merge repeats, drop blanks (index 0) → the glosses signlip predict prints.
    from signlip.trainer import model_input

    rec = Recogniser.load(ckpt, device="cpu")
    for path in back.data.splits["test"].paths[:2]:
        sample = model_input(rec.read(path), rec.reader.transform, torch.device("cpu"), False, training=False)
        logits, lengths = session.run(None, {k: sample[k].numpy() for k in input_names(sample)})
        best = logits[0, :lengths[0]].argmax(-1)
        ids = [int(g) for k, g in enumerate(best) if g != 0 and (k == 0 or g != best[k - 1])]
        assert " ".join(side["classes"][g - 1] for g in ids) == rec.predict_paths([path])[0]["label"]


@pytest.mark.parametrize("traced", [16, 17])
def test_a_frame_stacking_ctc_model_exports_right_whatever_length_it_was_traced_at(traced, tmp_path):
    """landmark_gru with frame_stack 8 pads each sentence to a multiple of 8: traced at a length that needs no
    padding (16), the graph must still pad the others (a Python branch on the length froze 'no padding' into it)."""
    from signlip.deploy.onnx_export import WithOutputLengths, export_onnx, torch_runner
    from signlip.models.landmark_gru import LandmarkGRU

    torch.manual_seed(0)
    model = LandmarkGRU(5, input_size=6, hidden_size=8, num_layers=1, bidirectional=True, dropout=0.0,
                        dense_size=8, output="sequence", frame_stack=8).eval()
    example = {"x": torch.randn(2, traced, 6), "mask": torch.ones(2, traced, dtype=torch.bool)}
    export_onnx(WithOutputLengths(model), example, tmp_path / "m.onnx")
    session = ort_session(tmp_path / "m.onnx")
    for length in (8, 20, 23, 31, 40):
        feeds = {"x": torch.randn(2, length, 6), "mask": torch.ones(2, length, dtype=torch.bool)}
        feeds["mask"][1, length // 2:] = False
        logits, lengths = session.run(None, {k: v.numpy() for k, v in feeds.items()})
        want_logits, want_lengths = torch_runner(model, ctc=True)(feeds)
        np.testing.assert_array_equal(lengths, want_lengths.numpy())
        for i, steps in enumerate(lengths):
            np.testing.assert_allclose(logits[i, :steps], want_logits[i, :steps].numpy(), atol=1e-4, rtol=0)


def test_missing_checkpoint_is_one_line_exit_2(tmp_path):
    result = run_cli("export", f"ckpt={tmp_path / 'missing.pt'}", cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "not found" in lines[0], result.stderr


def test_an_op_onnx_cannot_express_is_one_line_exit_2(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    """A model whose forward uses an op without an ONNX form (cummax) ends as one SignlipError line, exit 2."""
    from signlip.commands.export import main

    class Unexportable(torch.nn.Module):
        def forward(self, x, mask=None):
            return torch.cummax(x.flatten(1), 1)[0][:, :3]

    monkeypatch.setattr(onnx_export, "export_form", lambda *args, **kwargs: Unexportable())
    cfg = OmegaConf.create({"ckpt": str(tiny_checkpoint("landmark_gru")), "out": str(tmp_path), "int8": False,
                            "int8_mode": "auto", "tolerance": 1e-4, "calibration_batches": 1, "batch_size": None,
                            "format": "onnx", "data": {"manifest": None}})
    with pytest.raises(SystemExit) as exit_info:
        main(cfg)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1, err
    assert err[0].startswith("signlip: error: ONNX cannot express model landmark_gru") and "cummax" in err[0]


def test_benchmark_table_and_json(tiny_checkpoint, tmp_path):
    """All four forms, with the accuracy signlip evaluate reports for the checkpoint."""
    from signlip.deploy.benchmark import FORMS, benchmark_checkpoint
    from signlip.evaluation import evaluate_checkpoint

    ckpt = tiny_checkpoint("landmark_gru")
    lines: list[str] = []
    result = benchmark_checkpoint(ckpt, out=tmp_path, threads=(1, 2), batch_size=8, runs=5, warmup=1,
                                  report=lines.append)
    assert [row["form"] for row in result["rows"]] == list(FORMS)
    assert json.loads((tmp_path / "benchmark.json").read_text())["rows"] == result["rows"]
    assert any(line.startswith("onnxruntime int8") for line in lines)
    evaluated = evaluate_checkpoint(ckpt, out=tmp_path / "eval", device="cpu")["accuracy"]
    for row in result["rows"]:
        assert set(row["latency_ms_batch1"]) == {"1", "2"} and row["size_mb"] > 0
        assert row["latency_ms_batch1"]["1"]["p95"] >= row["latency_ms_batch1"]["1"]["p50"] > 0
        assert row["throughput_samples_per_s"] > 0
        if row["form"] != "onnxruntime int8":
            assert row["test_accuracy"] == pytest.approx(evaluated)
    assert result["live"]["frames"] >= result["live"]["window"] and result["live"]["frames_per_s"] > 0
    assert any(line.startswith("live pipeline") for line in lines)


def test_benchmark_of_a_ctc_checkpoint_reports_wer(tiny_checkpoint, tmp_path):
    """A CTC checkpoint's benchmark: every form scored by WER (the figure signlip evaluate reports), no live row,
    and a line saying why."""
    from signlip.deploy.benchmark import FORMS, benchmark_checkpoint
    from signlip.evaluation import evaluate_checkpoint

    ckpt = tiny_checkpoint("cslr_landmarks")
    lines: list[str] = []
    result = benchmark_checkpoint(ckpt, out=tmp_path, threads=(1,), batch_size=4, runs=3, warmup=1,
                                  report=lines.append)
    assert [row["form"] for row in result["rows"]] == list(FORMS) and result["metric"] == "wer"
    evaluated = evaluate_checkpoint(ckpt, out=tmp_path / "eval", device="cpu")["wer"]
    for row in result["rows"][:3]:
        assert row["test_wer"] == pytest.approx(evaluated)
    assert result["live"] is None and any(line.startswith("no live row") for line in lines)
    assert any(line.startswith("form") and line.rstrip().endswith("test wer") for line in lines)


def test_benchmark_measures_the_live_path_on_the_raw_video(tiny_checkpoint, tmp_path):
    """For a clip task the live figure runs on the video the first test clip was prepared from."""
    from signlip.build import rebuild
    from signlip.deploy.benchmark import live_pipeline, raw_source

    ckpt = tiny_checkpoint("lip_cnnlstm")
    source = raw_source(rebuild(ckpt, splits=("test",)))
    assert source.endswith(".mp4")
    live = live_pipeline(ckpt, source)
    assert live["windows"] >= 1 and live["fps"] == 25.0
