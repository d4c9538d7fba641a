"""A checkpoint → `model.onnx` (+ `model.int8.onnx`) + `model.json`, checked against PyTorch on the test split.

    result = export_checkpoint("best.pt", out="export/", int8=True)   # what `signlip export` runs

- Exporter: torch.onnx's TorchScript exporter (`dynamo=False`) at opset 17. Measured here (torch 2.14, onnxscript
  0.7): it exports every registered model in about a second with dynamic batch (and time for sequence models);
  the dynamo exporter takes 12–17 s a model and cannot express the holistic model's packed LSTM (its
  `torch.export` step fails on the data-dependent sequence lengths) nor adaptive pooling (no ONNX function).
- Dynamic axes: batch always; time too for sequence inputs (those with a mask — landmarks, holistic features,
  whole RGB sentences). Fixed-length clip models take the clip size their preprocessing fixed (n_frames × H × W);
  that size is baked into the graph (see `export_form`).
- Continuous-recognition (CTC) checkpoints export as `(x, mask) → (logits (B, T', V+1), lengths (B,))`: per output
  step, blank (index 0) and the glosses, and each sample's real output steps (the model's temporal stride applied
  in the graph, so an app never re-derives it); see `WithOutputLengths`.
- Parity: the ONNX model and the eager PyTorch model score every test sample; max |Δlogit| above `tolerance` or any
  top-1 disagreement (per output step for CTC models, whose lengths must match exactly) is an error
  (SignlipError), not a warning.
- INT8 (`int8=True`): onnxruntime quantization, dynamic (weights int8, activations quantized at run time) or static
  QDQ (activation ranges calibrated on train-split batches after the batch transform); `int8_mode="auto"` picks by
  the graph (`choose_int8_mode`, figures in docs/export.md). The test metric (accuracy, or WER for CTC models) of
  fp32-ONNX vs INT8 and the batch-1 speed-up are reported, and written to the sidecar.
- Sidecar `model.json`: classes, inputs (name, dtype, shape with named dynamic axes, layout), the checkpoint's
  preprocessing record (settings and statistics) and the steps from a sample to the model input — everything an
  app needs to run model.onnx with onnxruntime alone.

onnx / onnxruntime are imported where used: `pip install 'signlip[export]'`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from signlip.errors import SignlipError

OPSET = 17
INT8_MODES = ("auto", "dynamic", "static")
DEFAULT_TOLERANCE = 1e-4
INSTALL_HINT = "pip install 'signlip[export]'"


def require_onnx() -> tuple[Any, Any]:
    """(onnx, onnxruntime), or SignlipError with the install line when the optional extra is missing."""
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise SignlipError(f"ONNX export needs the onnx and onnxruntime packages ({exc.name} is not installed) — "
                           f"{INSTALL_HINT}") from None
    return onnx, onnxruntime


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the exporter and quantizer: Python warnings, their prints, and the C++ warnings torch writes
    straight to file descriptor 2 (which no Python-level redirect catches)."""
    with warnings.catch_warnings(), tempfile.TemporaryFile() as sink:
        warnings.simplefilter("ignore")
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The gist of an exporter error: its first line, without the TorchScript graph dump that may follow."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(" [Caused by")[0].strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- the model in the form ONNX can express ----------------------------------------------------------------------
class FixedAdaptiveAvgPool(nn.Module):
    """Adaptive average pooling for one known input size, as a linear map per pooled axis (the same bins as
    `nn.AdaptiveAvgPool*d`: [floor(i·n/m), ceil((i+1)·n/m)))."""

    def __init__(self, in_size: tuple[int, ...], out_size: tuple[int, ...]):
        super().__init__()
        self.dims = len(in_size)
        for axis, (n, m) in enumerate(zip(in_size, out_size)):
            weights = torch.zeros(m, n)
            for i in range(m):
                lo, hi = (i * n) // m, -(-((i + 1) * n) // m)
                weights[i, lo:hi] = 1.0 / (hi - lo)
            self.register_buffer(f"w{axis}", weights, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for axis in range(self.dims):  # pool axis 2 + axis: move it last, (…, n) @ (n, m), move it back
            x = (x.transpose(2 + axis, -1) @ getattr(self, f"w{axis}").T).transpose(2 + axis, -1)
        return x


def _fixed_pool(module: nn.Module, in_shape: tuple[int, ...]) -> nn.Module:
    spatial = in_shape[2:]
    wanted = module.output_size if isinstance(module.output_size, tuple) else (module.output_size,) * len(spatial)
    out = tuple(n if m is None else int(m) for n, m in zip(spatial, wanted))
    if all(n % m == 0 for n, m in zip(spatial, out)):  # uniform bins: a plain average pool
        kernel = tuple(n // m for n, m in zip(spatial, out))
        return (nn.AvgPool2d if len(spatial) == 2 else nn.AvgPool3d)(kernel, stride=kernel)
    return FixedAdaptiveAvgPool(spatial, out)


def _keeps_time(module: nn.Module, clip_input: bool) -> bool:
    """Whether an adaptive pool leaves a clip's time axis alone, so that fixing it holds at any length: a 3-D pool
    whose time output is None (lip_cnnlstm's (None, 4, 6)), or a 2-D pool over a clip's frames (per-frame backbones)."""
    if not clip_input:
        return False
    if isinstance(module, nn.AdaptiveAvgPool3d):
        size = module.output_size
        return isinstance(size, tuple) and size[0] is None
    return True


def export_form(model: nn.Module, example: dict[str, torch.Tensor], dynamic_time: bool) -> nn.Module:
    """An eval-mode copy of `model` that ONNX can express: each adaptive average pool over a size the preprocessing
    fixes (a clip's frame size; its length too unless `dynamic_time`, whole sentences) becomes the fixed pooling it
    performs at that size — the TorchScript exporter cannot export adaptive pooling whose output size it cannot see
    as constant (lip_cnnlstm's (None, 4, 6)). Pools over a dynamic time axis stay adaptive. Same outputs to float
    rounding; the parity check verifies it."""
    model = copy.deepcopy(model).eval()
    clip_input = example["x"].ndim == 5
    pools = {name: m for name, m in model.named_modules()
             if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d))
             and (not dynamic_time or _keeps_time(m, clip_input))}
    if not pools:
        return model
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str):
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            shapes[name] = tuple(args[0].shape)

        return hook

    hooks = [m.register_forward_hook(record(name)) for name, m in pools.items()]
    with torch.no_grad():
        model(example["x"], example.get("mask"))
    for hook in hooks:
        hook.remove()
    for name, shape in shapes.items():
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, _fixed_pool(pools[name], shape))
    return model


def input_names(batch: dict[str, torch.Tensor]) -> list[str]:
    """The model's inputs in call order: x, and the mask where the data has one (sequence data)."""
    return ["x", "mask"] if "mask" in batch else ["x"]


def time_axis(x: torch.Tensor) -> int:
    """The frames axis of a model input: 1 for (B, T, F) landmark features, 2 for (B, C, T, H, W) clips."""
    return 2 if x.ndim == 5 else 1


def export_example(batch: dict[str, torch.Tensor], n: int = 2) -> dict[str, torch.Tensor]:
    """The traced example: `n` samples; sequence inputs get one padded frame more, so that the traced graph holds
    the masked path (a model may take a faster branch when nothing is padded)."""
    example = {k: batch[k][:n] for k in input_names(batch)}
    if "mask" in example:
        x, mask = example["x"], example["mask"]
        axis = time_axis(x)
        pad = list(x.shape)
        pad[axis] = 1
        example = {"x": torch.cat([x, x.new_zeros(pad)], axis),
                   "mask": torch.cat([mask, mask.new_zeros((mask.shape[0], 1))], 1)}
    return example


class WithOutputLengths(nn.Module):
    """A CTC model as exported: (x, mask) → (logits (B, T', V+1), lengths (B,) int64 — each sample's real output
    steps: its real frames through the model's temporal stride, as the CTC objective counts them). Steps past a
    sample's length are padding an app must ignore."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.eval()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(x, mask)
        # As signlip.objectives.ctc.output_lengths, with its cap at T' taken from the graph's own shape (a Python int
        # would freeze the traced length into it).
        lengths = mask.sum(1)
        if hasattr(self.model, "output_lengths"):
            lengths = self.model.output_lengths(lengths)
        return logits, torch.minimum(lengths.to(torch.long), torch._shape_as_tensor(logits)[1])


def export_onnx(model: nn.Module, example: dict[str, torch.Tensor], path: str | Path, name: str = "model") -> None:
    """Write `model` (called as model(x[, mask]) → logits, or → (logits, lengths) for a `WithOutputLengths`) to
    `path`: opset OPSET, dynamic batch, and dynamic time for inputs with a mask (and output steps for CTC models). A
    model op ONNX cannot express → SignlipError naming it."""
    onnx, _ = require_onnx()
    names = input_names(example)
    sequence = "mask" in names
    ctc = isinstance(model, WithOutputLengths)
    axes: dict[str, dict[int, str]] = {"x": {0: "batch", time_axis(example["x"]): "time"} if sequence else
                                       {0: "batch"}, "logits": {0: "batch", 1: "steps"} if ctc else {0: "batch"}}
    if sequence:
        axes["mask"] = {0: "batch", 1: "time"}
    if ctc:
        axes["lengths"] = {0: "batch"}
    try:
        with quiet(), torch.no_grad():
            torch.onnx.export(model, tuple(example[k] for k in names), str(path), dynamo=False, input_names=names,
                              output_names=["logits", "lengths"] if ctc else ["logits"], dynamic_axes=axes,
                              opset_version=OPSET, do_constant_folding=True)
        onnx.checker.check_model(str(path))
    except SignlipError:
        raise
    except Exception as exc:  # the exporter raises many types; every one means "this graph is not expressible"
        raise SignlipError(f"ONNX cannot express model {name} ({type(exc).__name__}: {first_line(exc)}) — change the "
                           f"op named there in src/signlip/models/ or export another checkpoint") from None


# --- running and scoring -----------------------------------------------------------------------------------------
def ort_session(path: str | Path, threads: int | None = None):
    """A CPU onnxruntime session; `threads`: intra-op threads (None: onnxruntime's choice). Threads do not spin
    while idle (like OMP_WAIT_POLICY=PASSIVE for PyTorch): on a shared machine spinning steals the cores."""
    _, ort = require_onnx()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: the optimizer's notes are noise to a user
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


# A runner: batch → (logits, lengths): (B, C) and None for a classifier; (B, T', V+1) and each sample's real output
# steps (B,) for a CTC model.
Outputs = tuple[torch.Tensor, "torch.Tensor | None"]
Runner = Callable[[dict[str, torch.Tensor]], Outputs]


def ort_runner(session, names: list[str]) -> Runner:
    """batch → outputs through an onnxruntime session."""
    def run(batch: dict[str, torch.Tensor]) -> Outputs:
        out = [torch.from_numpy(o) for o in session.run(None, {k: batch[k].numpy() for k in names})]
        return out[0], (out[1] if len(out) > 1 else None)

    return run


def torch_runner(model: nn.Module, ctc: bool = False) -> Runner:
    """batch → outputs through a PyTorch model in eval mode, as evaluate calls it (`ctc`: a sequence model, whose
    output lengths come from the CTC objective's rule)."""
    from signlip.objectives.ctc import output_lengths

    model.eval()

    def run(batch: dict[str, torch.Tensor]) -> Outputs:
        with torch.inference_mode():
            logits = model(batch["x"], batch.get("mask")).float()
        return logits, (output_lengths(model, batch, logits.shape[1]) if ctc else None)

    return run


def model_batches(back, split: str, batch_size: int | None = None, limit: int | None = None
                  ) -> Iterator[dict[str, torch.Tensor]]:
    """The split's batches as the model sees them (on CPU, after the data's evaluation-time batch transform)."""
    from signlip.trainer import model_input

    transform = back.data.batch_transform.to("cpu")
    with torch.no_grad():
        for i, batch in enumerate(back.loader(split, batch_size)):
            if limit is not None and i >= limit:
                return
            yield model_input(batch, transform, torch.device("cpu"), False, training=False)


@dataclass
class Scored:
    """A runner over the test batches: `logits` (N, C) in batch order — for a CTC model every sample's real output
    steps, stacked (Σ T'_i, V+1) —, the checkpoint's evaluator `metrics` (what `signlip evaluate` reports), and
    for a CTC model each sample's output `lengths` and greedy `decoded` gloss ids."""

    logits: torch.Tensor
    metrics: dict[str, float]
    lengths: torch.Tensor | None = None
    decoded: list[list[int]] | None = None


def score(back, runner: Runner, batches: list[dict[str, torch.Tensor]]) -> Scored:
    """Run `runner` over `batches` and score it with the checkpoint's evaluator."""
    from signlip.data.glosses import greedy_decode
    from signlip.objectives.ctc import decoder_input

    evaluator = back.evaluator
    evaluator.reset()
    rows: list[torch.Tensor] = []
    all_lengths: list[torch.Tensor] = []
    decoded: list[list[int]] = []
    for batch in batches:
        logits, lengths = runner(batch)
        if lengths is None:
            evaluator.update(logits, batch)
            rows.append(logits)
            continue
        outputs = decoder_input(logits, lengths)
        evaluator.update(outputs, batch)
        decoded += greedy_decode(outputs)
        rows += [step_logits[:n] for step_logits, n in zip(logits, lengths.tolist())]
        all_lengths.append(lengths)
    metrics = {k: float(v) for k, v in evaluator.compute().items()}
    if not all_lengths:
        return Scored(torch.cat(rows), metrics)
    return Scored(torch.cat(rows), metrics, torch.cat(all_lengths), decoded)


def agreement(reference: Scored, other: Scored) -> dict[str, float]:
    """max |Δlogit| and top-1 agreement (per output step for CTC models; then also the share of samples whose greedy
    decodings are the same) of two runs over the same batches."""
    if reference.lengths is not None and not torch.equal(reference.lengths, other.lengths):
        differ = int((reference.lengths != other.lengths).sum())  # steps cannot be compared: no Δlogit (JSON null)
        return {"max_abs_logit_diff": None, "top1_agreement": 0.0, "sentence_agreement": 0.0,
                "lengths_differ": differ}
    a, b = reference.logits, other.logits
    result = {"max_abs_logit_diff": float((a - b).abs().max()) if a.numel() else 0.0,
              "top1_agreement": float((a.argmax(1) == b.argmax(1)).float().mean()) if len(a) else 1.0}
    if reference.decoded is not None:
        same = [x == y for x, y in zip(reference.decoded, other.decoded)]
        result["sentence_agreement"] = sum(same) / max(len(same), 1)
    return result


def median_latency_ms(run: Callable[[], Any], runs: int = 20, warmup: int = 3) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


# --- INT8 --------------------------------------------------------------------------------------------------------
# Dynamic quantization's ops: the weight-heavy linear and recurrent layers. Conv is left in float32: onnxruntime's
# dynamic ConvInteger is slower than its float32 Conv on this CPU (docs/export.md).
DYNAMIC_OPS = ["MatMul", "Gemm", "LSTM", "GRU", "Attention"]


def choose_int8_mode(onnx_path: str | Path) -> str:
    """`int8_mode=auto`: "static" (QDQ, calibrated) when convolutions hold at least half of the graph's weights,
    else "dynamic". Measured in docs/export.md: static QDQ sped up the tiny conv checkpoints (i3d, lip_cnn3d; at their
    trained input sizes it was slower than fp32 — onnxruntime's int8 Conv3d, docs/benchmarks.md) but slows down
    graphs whose cost is recurrent or matmul (landmark_gru, lip_cnnlstm's LSTM-heavy weights, the holistic
    transformer), where dynamic quantization of those layers is the one that pays."""
    onnx, _ = require_onnx()
    graph = onnx.load(str(onnx_path)).graph
    sizes = {init.name: math.prod(init.dims) for init in graph.initializer}
    conv = sum(sizes.get(node.input[1], 0) for node in graph.node if node.op_type == "Conv")
    total = sum(sizes.values()) or 1
    return "static" if conv / total >= 0.5 else "dynamic"


def quantize(fp32_path: str | Path, out_path: str | Path, mode: str,
             calibration: list[dict[str, torch.Tensor]] | None = None) -> None:
    """Write the INT8 form of `fp32_path` to `out_path`: "dynamic" (DYNAMIC_OPS, int8 weights) or "static" (QDQ,
    per-channel int8 weights, uint8 activations calibrated with min-max on `calibration` batches)."""
    require_onnx()
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if mode not in ("dynamic", "static"):
        raise SignlipError(f"int8_mode={mode} — choose one of {', '.join(INT8_MODES)}")
    names = [i.name for i in ort_session(fp32_path).get_inputs()]
    with quiet(), tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        except Exception:  # optional graph clean-up; quantization works on the exported graph as it is
            pre = Path(fp32_path)
        if mode == "dynamic":
            quantize_dynamic(str(pre), str(out_path), weight_type=QuantType.QInt8, op_types_to_quantize=DYNAMIC_OPS)
            return
        if not calibration:
            raise SignlipError("static INT8 quantization needs calibration batches from the train split")

        class Calibration(CalibrationDataReader):
            def __init__(self) -> None:
                self.feeds = iter([{k: b[k].numpy() for k in names} for b in calibration])

            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(self.feeds, None)

        reader = Calibration()
        quantize_static(str(pre), str(out_path), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)


INT8_MAX_LOSS_POINTS = 1.0  # the INT8 target: at most this many points of the test metric lost


def int8_form(back, fp32_path: Path, int8_path: Path, mode: str, batches: list[dict[str, torch.Tensor]],
              fp32_run: Scored, metric: str, names: list[str], batch_size: int | None, calibration_batches: int
              ) -> dict[str, Any]:
    """Quantize `fp32_path` into `int8_path` with `mode`, score it on the test `batches` and time it at batch 1 on
    one thread against fp32: the figures the sidecar's `int8` entry holds."""
    calibration = list(model_batches(back, "train", batch_size, limit=calibration_batches)) \
        if mode == "static" else None
    try:
        quantize(fp32_path, int8_path, mode, calibration)
    except SignlipError:
        raise
    except Exception as exc:  # onnxruntime.quantization raises plain exceptions for graphs it cannot handle
        raise SignlipError(f"INT8 quantization ({mode}) failed ({type(exc).__name__}: {first_line(exc)}) — try "
                           f"int8_mode={'static' if mode == 'dynamic' else 'dynamic'}") from None
    int8_run = score(back, ort_runner(ort_session(int8_path), names), batches)
    one = {k: v[:1] for k, v in batches[0].items() if k in names}
    sessions = {k: ort_session(p, threads=1) for k, p in (("fp32", fp32_path), ("int8", int8_path))}
    latency = {k: median_latency_ms(lambda s=s: s.run(None, {n: one[n].numpy() for n in names}))
               for k, s in sessions.items()}
    before, after = fp32_run.metrics[metric], int8_run.metrics[metric]
    return {"metric": metric, f"{metric}_fp32_onnx": before, f"{metric}_int8": after,
            f"{metric}_change_points": 100 * (after - before), **agreement(fp32_run, int8_run),
            "latency_ms_batch1_1thread": latency, "speedup_vs_fp32_onnx": latency["fp32"] / latency["int8"],
            "size_mb": {"fp32": fp32_path.stat().st_size / 2**20, "int8": int8_path.stat().st_size / 2**20},
            "calibration_batches": len(calibration) if calibration else 0}


# --- the sidecar -------------------------------------------------------------------------------------------------
LAYOUTS = {3: "(B, T, F): batch, frames, features per frame",
           5: "(B, C, T, H, W): batch, channels, frames, height, width"}


def describe_inputs(example: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
    x = example["x"]
    sequence = "mask" in example
    shape: list[Any] = ["batch", *x.shape[1:]]
    if sequence:
        shape[time_axis(x)] = "time"
    inputs = [{"name": "x", "dtype": "float32", "shape": shape, "layout": LAYOUTS.get(x.ndim, f"{x.ndim}-D")}]
    if sequence:
        inputs.append({"name": "mask", "dtype": "bool", "shape": ["batch", "time"],
                       "layout": "(B, T): True = a real frame; padding only after the real frames"})
    return inputs


def describe_outputs(classes: list[str], ctc: bool) -> list[dict[str, Any]]:
    if not ctc:
        return [{"name": "logits", "dtype": "float32", "shape": ["batch", len(classes)],
                 "layout": "(B, classes): unnormalised scores in the order of `classes`; softmax → probabilities"}]
    return [{"name": "logits", "dtype": "float32", "shape": ["batch", "steps", len(classes) + 1],
             "layout": "(B, T', 1 + glosses): unnormalised scores per output step; index 0 is the CTC blank, index "
                       "i the gloss classes[i − 1]; log-softmax → per-step log-probabilities",
             "decoding": "greedy: argmax per step over the first `lengths` steps, merge repeats, drop blanks"},
            {"name": "lengths", "dtype": "int64", "shape": ["batch"],
             "layout": "(B,): real output steps per sample (its real frames through the model's temporal stride); "
                       "later steps are padding"}]


def sidecar(ckpt: dict[str, Any], example: dict[str, torch.Tensor], n_params: int, ctc: bool = False
            ) -> dict[str, Any]:
    prep = {k: v for k, v in ckpt["preprocessing"].items() if k not in ("classes", "manifest")}
    from signlip.registry import READERS, load_all

    load_all()
    steps = READERS.get(prep["kind"]).input_steps(prep)
    return {
        "format": "onnx", "opset": OPSET, "exporter": f"torch.onnx TorchScript exporter, torch {torch.__version__}",
        "files": {"fp32": "model.onnx"},
        "task": ckpt.get("task"), "model": ckpt["model"], "parameters": n_params, "trained_epochs": ckpt.get("epoch"),
        "classes": list(ckpt["classes"]),
        "inputs": describe_inputs(example),
        "outputs": describe_outputs(list(ckpt["classes"]), ctc),
        "preprocessing": prep, "input_steps": steps,
    }


# --- the whole export --------------------------------------------------------------------------------------------
@dataclass
class Exported:
    """What `export_checkpoint` wrote: the folder, the files by form ("fp32", "int8") and the sidecar."""

    out_dir: Path
    paths: dict[str, Path]
    sidecar: dict[str, Any]


def export_checkpoint(ckpt_path: str | Path, out: str | Path | None = None, int8: bool = False,
                      int8_mode: str = "auto", tolerance: float = DEFAULT_TOLERANCE, calibration_batches: int = 8,
                      batch_size: int | None = None, manifest: str | None = None,
                      report: Callable[[str], None] = print) -> Exported:
    """Export `ckpt_path` into `out` (default: `export/` beside the checkpoint) and check it; the sidecar is
    written to out/model.json. SignlipError on a parity failure or an op ONNX cannot express."""
    from signlip.build import rebuild
    from signlip.deploy import is_gloss_checkpoint

    require_onnx()
    if int8_mode not in INT8_MODES:
        raise SignlipError(f"int8_mode={int8_mode} — choose one of {', '.join(INT8_MODES)}")
    back = rebuild(ckpt_path, splits=("train", "test") if int8 else ("test",), manifest=manifest)
    ckpt, model = back.checkpoint, back.model.eval()
    ctc = is_gloss_checkpoint(ckpt)
    metric = back.evaluator.headline[0]  # accuracy, or wer for CTC models
    out_dir = Path(out) if out else Path(ckpt_path).parent / "export"
    out_dir.mkdir(parents=True, exist_ok=True)
    batches = list(model_batches(back, "test", batch_size))
    names = input_names(batches[0])
    example = export_example(batches[0])
    fp32_path = out_dir / "model.onnx"
    form = export_form(model, example, dynamic_time="mask" in names)
    export_onnx(WithOutputLengths(form) if ctc else form, example, fp32_path, ckpt["model"]["name"])
    info = sidecar(ckpt, example, sum(p.numel() for p in model.parameters()), ctc)

    eager = score(back, torch_runner(model, ctc), batches)
    onnx_run = score(back, ort_runner(ort_session(fp32_path), names), batches)
    samples = len(eager.lengths) if ctc else int(eager.logits.shape[0])
    parity = {**agreement(eager, onnx_run), "samples": samples, "tolerance": tolerance, "split": "test",
              f"{metric}_pytorch": eager.metrics[metric], f"{metric}_onnx": onnx_run.metrics[metric]}
    info["parity"] = parity
    if parity.get("lengths_differ"):
        raise SignlipError(f"ONNX model gives other output lengths than PyTorch for {parity['lengths_differ']} test "
                           f"sample(s) — {fp32_path} is not a faithful export")
    per = f" over {int(eager.logits.shape[0])} output steps" if ctc else ""
    sentences = f", greedy decodings alike {parity['sentence_agreement']:.3f}" if ctc else ""
    report(f"parity on {samples} test samples{per}: max |Δlogit| {parity['max_abs_logit_diff']:.2e} "
           f"(tolerance {tolerance:g}), top-1 agreement {parity['top1_agreement']:.3f}{sentences}")
    if parity["max_abs_logit_diff"] > tolerance or parity["top1_agreement"] < 1.0:
        raise SignlipError(f"ONNX model disagrees with PyTorch on the test split: max |Δlogit| "
                           f"{parity['max_abs_logit_diff']:.2e} (tolerance {tolerance:g}), top-1 agreement "
                           f"{parity['top1_agreement']:.3f} — {fp32_path} is not a faithful export")

    if int8:
        lower_is_better = metric == "wer"

        def loss_points(candidate: dict[str, Any]) -> float:  # points of the metric lost to INT8 (≤ 0: none)
            change = candidate[f"{metric}_change_points"]
            return change if lower_is_better else -change

        mode = choose_int8_mode(fp32_path) if int8_mode == "auto" else int8_mode
        q = int8_form(back, fp32_path, out_dir / "model.int8.onnx", mode, batches, onnx_run, metric, names,
                      batch_size, calibration_batches)
        chosen_by = "auto" if int8_mode == "auto" else "int8_mode"
        if int8_mode == "auto" and loss_points(q) > INT8_MAX_LOSS_POINTS:
            # The graph rule's choice lost too much: measure the other mode, keep whichever loses less.
            other = "static" if mode == "dynamic" else "dynamic"
            trial = out_dir / "model.int8.other.onnx"
            alt = int8_form(back, fp32_path, trial, other, batches, onnx_run, metric, names, batch_size,
                            calibration_batches)
            report(f"int8 ({mode}) lost {loss_points(q):.1f} points of test {metric} (more than "
                   f"{INT8_MAX_LOSS_POINTS:g}): measured {other} too — it loses {loss_points(alt):.1f}")
            if loss_points(alt) < loss_points(q):
                trial.replace(out_dir / "model.int8.onnx")
                q, mode, chosen_by = alt, other, "auto, by test accuracy"
            else:
                trial.unlink()
        info["files"]["int8"] = "model.int8.onnx"
        info["int8"] = {"mode": mode, "chosen_by": chosen_by, **q}
        worse = ", + is worse" if lower_is_better else ""
        latency = q["latency_ms_batch1_1thread"]
        report(f"int8 ({mode}): test {metric} {q[f'{metric}_fp32_onnx']:.3f} → {q[f'{metric}_int8']:.3f} "
               f"({q[f'{metric}_change_points']:+.1f} points{worse}), batch-1 latency {latency['fp32']:.2f} → "
               f"{latency['int8']:.2f} ms ({q['speedup_vs_fp32_onnx']:.2f}×), {q['size_mb']['fp32']:.2f} → "
               f"{q['size_mb']['int8']:.2f} MB")
        if loss_points(q) > INT8_MAX_LOSS_POINTS:
            report(f"warning: the INT8 model loses {loss_points(q):.1f} points of test {metric} — ship model.onnx, or "
                   f"calibrate on more batches (calibration_batches=…)")
    (out_dir / "model.json").write_text(json.dumps(info, indent=2))
    paths = {form: out_dir / name for form, name in info["files"].items()}
    return Exported(out_dir, {**paths, "sidecar": out_dir / "model.json"}, info)
