"""One table over the forms a checkpoint runs in on a CPU: PyTorch eager, signlip's CPU inference form
(`signlip.inference.for_cpu_inference`), ONNX Runtime fp32 and INT8 — what `signlip benchmark` prints.

    result = benchmark_checkpoint("best.pt")    # exports (signlip.deploy.onnx_export) then measures; benchmark.json

Then the live path end to end (`signlip predict stream=true` on a video or landmark file: by default the first test
sample's raw input) in frames/s.

Per form: size (PyTorch: its float32 weights; ONNX: the file), batch-1 latency p50 / p95 at each thread count,
throughput (samples/s) at one batch size with the most threads, and the test split's headline metric (accuracy,
or WER for a continuous-recognition checkpoint), scored by the checkpoint's own evaluator (the figure `signlip
evaluate` reports). Timings alternate between the forms in rounds, so that machine noise hits them alike; the ratios
of one run are the figures to quote. A CTC checkpoint has no live row: streaming it is not built (its per-frame
cost: scripts/bench_sentence_latency.py).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from signlip.deploy.onnx_export import Runner

FORMS = ("pytorch eager", "cpu inference form", "onnxruntime fp32", "onnxruntime int8")


def _repeat_to(batch: dict[str, torch.Tensor], names: list[str], n: int) -> dict[str, torch.Tensor]:
    """The model inputs of `batch` repeated along the batch axis to exactly `n` samples."""
    reps = -(-n // int(batch["x"].shape[0]))
    return {k: torch.cat([batch[k]] * reps)[:n] for k in names}


def _timings(runners: dict[str, Runner], batch: dict[str, torch.Tensor], runs: int, warmup: int,
             rounds: int = 5) -> dict[str, list[float]]:
    """Milliseconds per call of each runner on `batch`, `runs` calls each, in `rounds` alternating rounds."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    for run in runners.values():
        for _ in range(warmup):
            run(batch)
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for name, run in runners.items():
            for _ in range(per_round):
                t0 = time.perf_counter()
                run(batch)
                times[name].append(1000 * (time.perf_counter() - t0))
    return times


def benchmark_checkpoint(ckpt_path: str | Path, out: str | Path | None = None, threads: Sequence[int] = (1, 2),
                         batch_size: int = 32, runs: int = 50, warmup: int = 5, int8_mode: str = "auto",
                         calibration_batches: int = 8, manifest: str | None = None, live_input: str | None = None,
                         report: Callable[[str], None] = print) -> dict[str, Any]:
    """Export the checkpoint (with INT8) into `out`, measure every form, print the table and write
    out/benchmark.json; returns what it wrote."""
    from signlip.build import rebuild
    from signlip.deploy import is_gloss_checkpoint
    from signlip.deploy.onnx_export import (
        export_checkpoint,
        input_names,
        model_batches,
        ort_runner,
        ort_session,
        score,
        torch_runner,
    )
    from signlip.inference import for_cpu_inference

    exported = export_checkpoint(ckpt_path, out, int8=True, int8_mode=int8_mode,
                                 calibration_batches=calibration_batches, manifest=manifest, report=report)
    back = rebuild(ckpt_path, splits=("test",), manifest=manifest)
    model = back.model.eval()
    ctc = is_gloss_checkpoint(back.checkpoint)
    metric = back.evaluator.headline[0]
    batches = list(model_batches(back, "test"))
    names = input_names(batches[0])
    weights_mb = sum(t.numel() * t.element_size() for t in back.checkpoint["model_state"].values()) / 2**20
    sizes = {"pytorch eager": weights_mb, "cpu inference form": weights_mb,
             "onnxruntime fp32": exported.paths["fp32"].stat().st_size / 2**20,
             "onnxruntime int8": exported.paths["int8"].stat().st_size / 2**20}
    cpu_form = for_cpu_inference(model)

    def runners(n_threads: int) -> dict[str, Runner]:
        torch.set_num_threads(n_threads)
        return {"pytorch eager": torch_runner(model, ctc), "cpu inference form": torch_runner(cpu_form, ctc),
                "onnxruntime fp32": ort_runner(ort_session(exported.paths["fp32"], n_threads), names),
                "onnxruntime int8": ort_runner(ort_session(exported.paths["int8"], n_threads), names)}

    previous_threads = torch.get_num_threads()
    try:
        one = _repeat_to(batches[0], names, 1)
        latency: dict[str, dict[str, dict[str, float]]] = {form: {} for form in FORMS}
        for n in threads:
            for form, values in _timings(runners(n), one, runs, warmup).items():
                latency[form][str(n)] = {"p50": float(np.percentile(values, 50)),
                                         "p95": float(np.percentile(values, 95))}
        big, most = _repeat_to(batches[0], names, batch_size), max(threads)
        forms = runners(most)
        through = {form: batch_size / (float(np.median(values)) / 1000)
                   for form, values in _timings(forms, big, max(5, runs // 10), 1).items()}
        metrics = {form: score(back, run, batches).metrics[metric] for form, run in forms.items()}
    finally:
        torch.set_num_threads(previous_threads)

    rows = [{"form": form, "size_mb": sizes[form], "latency_ms_batch1": latency[form],
             "throughput_samples_per_s": through[form], f"test_{metric}": metrics[form]} for form in FORMS]
    result = {"checkpoint": str(ckpt_path), "task": back.checkpoint.get("task"),
              "model": back.checkpoint["model"]["name"], "input": exported.sidecar["inputs"],
              "test_samples": sum(int(b["y"].shape[0]) for b in batches), "throughput_batch": batch_size,
              "throughput_threads": most, "metric": metric, "int8_mode": exported.sidecar["int8"]["mode"],
              "parity": exported.sidecar["parity"], "rows": rows,
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "torch": torch.__version__, "onnxruntime": _ort_version(),
                          "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}}
    if ctc:
        result["live"] = None
        report("no live row: streaming a continuous-recognition (CTC) checkpoint is not built — a sentence's "
               "per-frame cost: scripts/bench_sentence_latency.py")
    else:
        result["live"] = live_pipeline(ckpt_path, live_input or raw_source(back))
    for line in table(result):
        report(line)
    path = exported.out_dir / "benchmark.json"
    path.write_text(json.dumps(result, indent=2))
    report(f"benchmark: {path}")
    return result


def raw_source(back) -> str:
    """The first test sample's raw input: the video it was prepared from (a manifest written by `signlip prepare`
    names it in its `source` column), else the sample file itself."""
    import csv

    first = back.data.splits["test"].paths[0]
    manifest = Path(back.checkpoint["preprocessing"].get("manifest") or "")
    if manifest.is_file():
        with manifest.open(newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("source") and (manifest.parent / row["path"]).resolve() == Path(first).resolve():
                    return row["source"]
    return first


def live_pipeline(ckpt_path: str | Path, source: str) -> dict[str, Any]:
    """Frames/s of the live path end to end on `source`: `signlip predict stream=true` (frame-by-frame decode, the
    MediaPipe tracker where the task has one, a window every hop through the prepare functions, the model)."""
    from signlip.deploy.predict import Recogniser
    from signlip.deploy.stream import run_stream

    result = run_stream(Recogniser.load(ckpt_path, device="cpu"), source)
    return {"input": source, "frames": result.frames, "windows": len(result.windows),
            "frames_per_s": result.fps, "ms_per_frame": 1000.0 / result.fps, **result.settings}


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def table(result: dict[str, Any]) -> list[str]:
    """The benchmark as aligned text lines (one row per form)."""
    threads = list(result["rows"][0]["latency_ms_batch1"])
    head = ["form", "size MB"] + [f"p50/p95 ms @{n}t" for n in threads] + \
        [f"samples/s b{result['throughput_batch']} @{result['throughput_threads']}t", f"test {result['metric']}"]
    body = []
    for row in result["rows"]:
        lat = [f"{row['latency_ms_batch1'][n]['p50']:.2f} / {row['latency_ms_batch1'][n]['p95']:.2f}" for n in threads]
        body.append([row["form"], f"{row['size_mb']:.2f}", *lat, f"{row['throughput_samples_per_s']:.0f}",
                     f"{row['test_' + result['metric']]:.3f}"])
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    fmt = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
           for r in [head, *body]]
    title = (f"signlip benchmark · {result['model']} ({result['task']}) · input {result['input'][0]['shape']} · "
             f"{result['test_samples']} test samples · int8 {result['int8_mode']}")
    live = result.get("live")
    if live:
        fmt.append(f"live pipeline (predict stream=true: decode + MediaPipe where the task has it + a window of "
                   f"{live['window']} every {live['hop']} frames + model): {live['frames_per_s']:.1f} frames/s, "
                   f"{live['ms_per_frame']:.1f} ms/frame over {live['frames']} frames of {live['input']}")
    return [title, *fmt]
