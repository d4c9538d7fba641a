"""`signlip report <sweep folder>`: what a seed sweep (`signlip train -m seed=1,2,3`) says, with its spread.

Reads every `run.json` under the folder and prints a table of runs, mean ± sd (across seeds) of the best
validation metric (what model selection saw — optimistic by construction) and of the same metric on the test split
(the number to report), per group of runs that differ only in their seed. Writes `report_curves.png` (the monitored
metric and train loss
per epoch, one line per run) and `report.json` into the folder. No Hydra: the folder is a positional argument.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from signlip.errors import SignlipError

IGNORED_KEYS = ("seed", "hydra", "trainer.resume", "trainer.checkpoint_dir", "logger.")


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: json.dumps(tree, sort_keys=True) if isinstance(tree, list) else tree}


def load_runs(folder: str | Path) -> list[dict[str, Any]]:
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise SignlipError(f"{folder} is not a folder — pass the sweep folder of `signlip train -m seed=1,2,3` "
                           f"(outputs/multirun/<task>/<date_time>)")
    runs = []
    for path in sorted(folder.glob("**/run.json"), key=lambda p: (len(p.parts), str(p))):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SignlipError(f"{path} is not readable JSON ({type(exc).__name__}) — remove it or re-run that job") \
                from None
        if not isinstance(data, dict) or "history" not in data:
            continue
        data["_dir"] = str(path.parent.relative_to(folder)) if path.parent != folder else "."
        runs.append(data)
    if not runs:
        raise SignlipError(f"no run.json under {folder} — run `signlip train -m seed=1,2,3` and pass its sweep folder "
                           f"(printed at the end; outputs/multirun/<task>/<date_time>)")
    return runs


def _varied(runs: list[dict[str, Any]]) -> list[str]:
    """Config keys (other than the seed and bookkeeping) whose values differ between runs."""
    flat = [_flatten(r.get("config", {})) for r in runs]
    keys = sorted(set().union(*flat))
    varied = [k for k in keys if len({json.dumps(f.get(k), default=str) for f in flat}) > 1]
    return [k for k in varied if not any(k == i or k.startswith(i if i.endswith(".") else i + ".")
                                         for i in IGNORED_KEYS)]


def _mean_sd(values: list[float]) -> tuple[float, float | None]:
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return mean, sd


def _fmt(mean_sd: tuple[float, float | None] | None) -> str:
    if mean_sd is None:
        return "—"
    mean, sd = mean_sd
    return f"{mean:.4f} ± {sd:.4f}" if sd is not None else f"{mean:.4f} (one run: no spread)"


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    varied = _varied(runs)
    rows, groups = [], {}
    for r in runs:
        summary = r.get("results", {}).get("summary", {})
        best = summary.get("best", {})
        test = r.get("results", {}).get("test", {})
        flat = _flatten(r.get("config", {}))
        setting = ", ".join(f"{k}={flat.get(k)}" for k in varied)
        value = best.get("value")
        row = {"run": r["_dir"], "seed": r.get("config", {}).get("seed"), "setting": setting,
               "epochs": summary.get("epochs", len(r.get("history", []))), "monitor": best.get("monitor"),
               "best_val": value if isinstance(value, (int, float)) and math.isfinite(value) else None,
               "best_epoch": summary.get("best_epoch"), "test": test.get(metric_name(best.get("monitor"))),
               "test_ci": test.get(f"{metric_name(best.get('monitor'))}_ci"), "alarms": summary.get("alarms", []),
               "interrupted": summary.get("interrupted")}
        rows.append(row)
        groups.setdefault(setting, []).append(row)
    summary_rows = []
    for setting, members in groups.items():
        vals = [m["best_val"] for m in members if m["best_val"] is not None]
        tests = [m["test"] for m in members if m["test"] is not None]
        summary_rows.append({"setting": setting or "(all runs)", "runs": len(members),
                             "seeds": [m["seed"] for m in members], "monitor": members[0]["monitor"],
                             "best_val": _mean_sd(vals) if vals else None,
                             "test": _mean_sd(tests) if tests else None,
                             "test_range": [min(tests), max(tests)] if tests else None})
    return {"runs": rows, "groups": summary_rows, "varied": varied, "metric": metric_name(rows[0]["monitor"])}


def metric_name(monitor: str | None) -> str:
    """`val/accuracy` → `accuracy`: the monitored metric, as the test report names it."""
    return (monitor or "val/accuracy").split("/", 1)[-1]


def plot_curves(runs: list[dict[str, Any]], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_val, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    for r in runs:
        hist = r.get("history", [])
        label = f"{r['_dir']} (seed {r.get('config', {}).get('seed')})"
        epochs = [h.get("epoch", i + 1) for i, h in enumerate(hist)]
        monitor = r.get("results", {}).get("summary", {}).get("best", {}).get("monitor") or "val/accuracy"
        line = ax_val.plot(epochs, [h.get(monitor, float("nan")) for h in hist], marker=".", label=label)
        ax_loss.plot(epochs, [h.get("train/loss", float("nan")) for h in hist], marker=".",
                     color=line[0].get_color(), label=label)
    ax_val.set(xlabel="epoch", ylabel=monitor, title=f"{monitor} per epoch")
    ax_loss.set(xlabel="epoch", ylabel="train loss", title="training loss per epoch")
    for ax in (ax_val, ax_loss):
        ax.grid(alpha=0.3)
    ax_val.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def wide(console):
    """The console itself on a terminal; else (logs, pipes) one 150 columns wide, so tables stay readable."""
    from rich.console import Console

    return console if console.is_terminal else Console(width=150, highlight=False, file=console.file)


def print_report(result: dict[str, Any], folder: Path, console) -> None:
    from rich.table import Table

    table = Table(title=f"signlip report — {folder}")
    for col in ("run", "seed", *(["setting"] if result["varied"] else []), "epochs", "best val (epoch)",
                f"test {result['metric']} [95% CI]", "flags"):
        table.add_column(col, overflow="fold")
    for r in result["runs"]:
        best = f"{r['best_val']:.4f} ({r['best_epoch']})" if r["best_val"] is not None else "—"
        test = (f"{r['test']:.4f} [{r['test_ci'][0]:.3f}–{r['test_ci'][1]:.3f}]" if r["test_ci"] else
                f"{r['test']:.4f}" if r["test"] is not None else "—")
        flags = "; ".join([*(["interrupted: " + str(r["interrupted"])] if r["interrupted"] else []),
                           *(["STUCK AT CHANCE"] if r["alarms"] else [])])
        table.add_row(r["run"], str(r["seed"]), *([r["setting"]] if result["varied"] else []), str(r["epochs"]), best,
                      test, flags)
    console = wide(console)
    console.print(table)
    summary = Table(title="across seeds (mean ± sd)")
    for col in ("setting", "runs", "best " + str(result["groups"][0]["monitor"]), f"test {result['metric']}",
                "test min–max"):
        summary.add_column(col, overflow="fold")
    for g in result["groups"]:
        rng = f"{g['test_range'][0]:.4f}–{g['test_range'][1]:.4f}" if g["test_range"] else "—"
        summary.add_row(g["setting"], str(g["runs"]), _fmt(g["best_val"]), _fmt(g["test"]), rng)
    console.print(summary)
    console.print("best val is the model-selection score (the max over epochs of one split: optimistic); report the "
                  f"test {result['metric']} as mean ± sd over seeds, with the per-run 95% CI for the test-set size.",
                  soft_wrap=True)
