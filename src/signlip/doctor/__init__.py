"""`signlip doctor`: a pre-flight check of a task's data, pipeline and model — one to three minutes on CPU.

It works on the registry/`DataBundle` contract alone (no per-task code), so every task that trains can be checked:

- `audit`: samples per class per split, class balance, split sizes vs. the precision they allow, sample files
  missing/unreadable, duplicated sample files (content hash) within and across splits, speakers/signers in more
  than one split, frame counts, NaN/inf/constant inputs, temporal order (consecutive vs. random frames);
- `picture`: a PNG grid of what the model sees — a few training samples per class after preprocessing *and*
  augmentation, each drawn by its data module (`DataBundle.draw_sample`), labelled with the class it is trained as;
- `probes`, stepped by the Trainer's own `train_step`: overfit-one-batch, a short real run that must beat chance
  and, with `doctor.shuffle_control=true`, the same run on shuffled labels that must stay at chance.

`run_doctor(config, settings, run_dir)` takes the plain resolved config of `conf/doctor.yaml` (which holds the
doctor's defaults); the CLI wraps it (exit 0: no fail, 1: fail). A probe the data is too small to decide is
INCONCLUSIVE ("too little data to judge", with the samples needed): not a fail, so correct data never fails.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from signlip.build import build_data, build_run, data_settings, seed_everything
from signlip.config import TrainerSettings, check_config
from signlip.doctor.audit import audit_counts, audit_duplicates, audit_groups, audit_manifest_files, audit_values
from signlip.doctor.check import Check
from signlip.doctor.picture import picture
from signlip.doctor.probes import learning_checks, overfit_one_batch
from signlip.doctor.sequence import audit_glosses, length_preflight
from signlip.errors import SignlipError
from signlip.registry import load_all
from signlip.run_logger import console as default_console
from signlip.sweep import wide
from signlip.trainer import select_device

__all__ = ["Check", "run_doctor"]

MARK = {"pass": "[green]PASS[/green]", "warn": "[yellow]WARN[/yellow]", "fail": "[bold red]FAIL[/bold red]",
        "info": "[cyan]INFO[/cyan]", "skip": "[dim]SKIP[/dim]",
        # Too little data to judge: neither a pass nor a fail (exit 0), said as such.
        "inconclusive": "[yellow]INCONCLUSIVE[/yellow]"}


def run_doctor(config: dict[str, Any], settings: TrainerSettings, run_dir: str | Path, console=None) -> dict[str, Any]:
    """Run every check; print the table; write `doctor.json` (and the picture) into `run_dir`. Returns the report;
    `report["ok"]` is False when any check failed."""
    console = console or default_console
    started = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = config.get("doctor")
    if not isinstance(cfg, dict):
        raise SignlipError("the config has no `doctor` group — compose conf/doctor.yaml (signlip doctor task=NAME)")
    task = config.get("task_name", "custom")
    seed = int(config.get("seed", 0))
    device = select_device(settings.device)
    check_config(config, settings, device)  # a bad override is one line, exit 2 — not a table of failures
    seed_everything(seed)
    checks: list[Check] = []
    timings: dict[str, float] = {}
    console.print(f"[bold]signlip doctor[/bold] task={task} on {device} — run folder {run_dir}", soft_wrap=True)

    def timed(name: str, fn, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        finally:
            timings[name] = time.perf_counter() - t0
        return result

    def build():
        """(data, run, why the run did not build). The data is loaded once, by the run the probes train, unless
        the probes are off; when the run fails, the data alone says whether the data is at fault."""
        if not cfg["training"]:
            return build_data(config, seed), None, None
        try:
            run = build_run(config, settings, device, report=console.print)
            return run.data, run, None
        except SignlipError as exc:
            return build_data(config, seed), None, exc

    data_entry, _ = data_settings(config["data"])
    data_name, data_kwargs = data_entry["name"], data_entry["kwargs"]
    timed("imports", load_all)  # the registry's modules: seconds that are no part of building the data
    data = run = run_error = None
    try:
        data, run, run_error = timed("data", build)
    except SignlipError as exc:
        checks.append(Check("data", "data builds", "fail", str(exc)))
        manifest = data_kwargs.get("manifest")
        if manifest:
            try:
                checks.append(audit_manifest_files(manifest))
            except SignlipError as inner:
                checks.append(Check("data", "manifest", "fail", str(inner)))
    if data is not None:
        n = sum(len(ds) for ds in data.splits.values())
        checks.append(Check("data", "data builds", "pass", f"{data_name}: {n} samples, {len(data.classes)} "
                            f"{'glosses' if data.target == 'glosses' else 'classes'}, "
                            f"splits {', '.join(data.splits)} ({timings['data']:.1f} s)"))
        manifest = data.preprocessing.get("manifest") or data_kwargs.get("manifest")
        if manifest and Path(manifest).is_file():
            checks.append(timed("files", audit_manifest_files, manifest))
        sentences = data.target == "glosses"  # continuous recognition: no classes to count, chance to beat
        checks += audit_glosses(data) if sentences else audit_counts(data, cfg["audit"])
        checks.append(audit_groups(data))
        checks.append(timed("hash", audit_duplicates, data, cfg["audit"]))
        transform = data.batch_transform.to(device)
        checks += timed("values", audit_values, data, transform, device, cfg["audit"])
        try:
            if sentences:
                raise NotImplementedError("the per-class picture draws isolated samples; sentences' CTC alignment "
                                          "picture is evaluate's alignment_<split>.png")
            checks.append(timed("picture", picture, data, transform, device, run_dir / cfg["picture"]["file"],
                                cfg["picture"], seed))
        except NotImplementedError as exc:
            checks.append(Check("picture", "what the model sees", "skip", str(exc)))
        except Exception as exc:  # noqa: BLE001 — a picture that cannot be drawn must not hide the other checks
            checks.append(Check("picture", "what the model sees", "warn", f"could not draw it: {type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''}"))
        if not cfg["training"]:
            checks.append(Check("training", "overfit one batch / short runs", "skip", "doctor.training=false"))
        elif run_error is not None:
            checks.append(Check("training", "model trains", "fail", str(run_error)))
        else:
            try:
                if sentences:
                    checks.append(timed("lengths", length_preflight, run.model, data, device))
                checks.append(timed("overfit", overfit_one_batch, run, run_dir, cfg["overfit"], seed))
                if sentences:
                    checks.append(Check("training", "short run vs chance", "skip", "sentences have no chance level; "
                                        "the overfit probe above is judged by WER, and train's STUCK AT BLANK alarm "
                                        "watches the real run"))
                elif "val" in data.splits:
                    checks += timed("short_run", learning_checks, run, run_dir, cfg, seed)
            except SignlipError as exc:
                checks.append(Check("training", "model trains", "fail", str(exc)))
    return _verdict(checks, task, time.perf_counter() - started, timings, run_dir, console)


def _verdict(checks: list[Check], task: str, elapsed: float, timings: dict[str, float], run_dir: Path,
             console) -> dict[str, Any]:
    """The table, the one-line verdict and `doctor.json`."""
    from rich.table import Table

    table = Table(title=f"signlip doctor — task {task}", show_lines=False)
    for col in ("", "check", "result", "details"):
        table.add_column(col, overflow="fold")
    for c in checks:
        table.add_row(c.section, c.name, MARK[c.status], c.detail)
    wide(console).print(table)
    fails = [c for c in checks if c.status == "fail"]
    warns = [c for c in checks if c.status in ("warn", "inconclusive")]
    pic = next((c.data["path"] for c in checks if c.section == "picture" and "path" in c.data), None)
    if pic:
        console.print(f"picture of what the model sees: {pic}", soft_wrap=True)
    verdict = ("[bold red]FAIL[/bold red]: fix the failed checks before training" if fails else
               "[yellow]passed with warnings[/yellow]" if warns else "[green]all checks passed[/green]")
    open_ = sum(c.status == "inconclusive" for c in checks)
    console.print(f"{verdict} — {len(fails)} fail, {len(warns) - open_} warn, "
                  + (f"{open_} inconclusive, " if open_ else "") + f"{len(checks)} checks in {elapsed:.0f} s",
                  soft_wrap=True)
    report = {"task": task, "ok": not fails, "seconds": elapsed, "timings": timings,
              "checks": [asdict(c) for c in checks], "picture": pic}
    (run_dir / "doctor.json").write_text(json.dumps(report, indent=2, default=str))
    return report
