"""`signlip report <sweep folder>`: a positional folder, no Hydra config; one line + exit 2 on bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from signlip.errors import SignlipError


def main(argv: list[str]) -> None:
    from signlip.run_logger import console
    from signlip.sweep import load_runs, plot_curves, print_report, summarise

    if any(a in ("-h", "--help") for a in argv):
        print("usage: signlip report <sweep folder>\n  reads every run.json under the folder (a `signlip train -m "
              "seed=1,2,3` sweep), prints the runs and mean ± sd across seeds, writes report_curves.png and "
              "report.json there")
        return
    if len(argv) != 1:
        print("signlip: error: usage: signlip report <sweep folder>  (e.g. outputs/multirun/landmark_gru/<date>)",
              file=sys.stderr)
        sys.exit(2)
    folder = Path(argv[0].split("=", 1)[1] if argv[0].startswith("dir=") else argv[0]).expanduser()
    try:
        runs = load_runs(folder)
        result = summarise(runs)
        png = plot_curves(runs, folder / "report_curves.png")
        (folder / "report.json").write_text(json.dumps(result, indent=2, default=str))
    except SignlipError as exc:
        print(f"signlip: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        print(f"signlip: error: cannot write the report into {folder} ({exc.strerror or exc}) — check its permissions",
              file=sys.stderr)
        sys.exit(2)
    print_report(result, folder, console)
    console.print(f"learning curves: {png}\nsummary: {folder / 'report.json'}", soft_wrap=True)
