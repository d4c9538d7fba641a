"""Run output: rich console and progress bars, TensorBoard, a CSV of epoch metrics and the run manifest JSON.

Only rank 0 logs; other ranks get a `RunLogger(enabled=False)` that does nothing.
"""

from __future__ import annotations

import csv
import json
import platform
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

console = Console(stderr=False, highlight=False)


@contextmanager
def progress_bar(description: str, total: int, enabled: bool = True) -> Iterator[Callable[[], None]]:
    """A rich progress bar over `total` items, shown only on a terminal; yields `advance()`."""
    columns = [TextColumn(f"[bold]{description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, disable=not (enabled and console.is_terminal)) as progress:
        task = progress.add_task(description, total=total)
        yield lambda: progress.advance(task)


def environment_info() -> dict[str, Any]:
    import torch

    info = {"python": sys.version.split()[0], "platform": platform.platform(), "torch": torch.__version__,
            "cpu_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    for name in ("numpy", "hydra", "omegaconf", "torchvision", "mediapipe", "cv2"):
        module = sys.modules.get(name)
        if module is not None:
            info[name] = getattr(module, "__version__", "?")
    return info


class RunLogger:
    """Everything a run writes besides checkpoints, into `run_dir`."""

    def __init__(self, run_dir: str | Path, enabled: bool = True, tensorboard: bool = True, progress: bool = True,
                 log_name: str | None = None):
        """`log_name`: also write every console line (not the progress bars) to `run_dir/<log_name>`, plain text."""
        self.enabled = enabled
        self.run_dir = Path(run_dir)
        self.tb = None
        self.log: Console | None = None
        self.log_path: Path | None = None
        self.csv_path = self.run_dir / "metrics.csv"
        self._csv_fields: list[str] | None = None
        self.progress: Progress | None = None
        self._tasks: dict[str, Any] = {}
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if log_name:
            self.log_path = self.run_dir / log_name
            self.log = Console(file=self.log_path.open("a", encoding="utf-8"), width=150, color_system=None,
                               highlight=False, force_terminal=False, emoji=False)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.run_dir / "tensorboard"))
        if progress and console.is_terminal:
            self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=console,
                                     transient=False)

    # --- console -----------------------------------------------------------------------------------------
    def print(self, *args: Any, **kwargs: Any) -> None:
        if self.enabled:
            kwargs.setdefault("soft_wrap", True)  # long lines (paths, epoch summaries) stay whole in logs
            console.print(*args, **kwargs)
            if self.log is not None:
                self.log.print(*args, **kwargs)
                self.log.file.flush()  # a crashed or killed run keeps every line it printed

    def start_bar(self, key: str, description: str, total: int) -> None:
        if self.progress is None:
            return
        if not self._tasks:
            self.progress.start()
        if key in self._tasks:
            self.progress.reset(self._tasks[key], total=total, description=description, rate="")
        else:
            self._tasks[key] = self.progress.add_task(description, total=total, rate="")

    def advance_bar(self, key: str, rate: str = "") -> None:
        if self.progress is not None and key in self._tasks:
            self.progress.update(self._tasks[key], advance=1, rate=rate)

    def close_bars(self) -> None:
        if self.progress is not None and self._tasks:
            self.progress.stop()
            self._tasks.clear()

    # --- metrics -------------------------------------------------------------------------------------------
    def log_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        row = {"epoch": epoch, **metrics}
        if self.tb is not None:
            for key, value in metrics.items():
                self.tb.add_scalar(key, value, epoch)
        write_header = self._csv_fields is None and not self.csv_path.exists()
        if self._csv_fields is None:
            self._csv_fields = list(row)
        with self.csv_path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self._csv_fields, extrasaction="ignore")
            if write_header:
                writer.writeheader()
            writer.writerow(row)

    def log_history(self, history: list[dict[str, float]]) -> None:
        """Start metrics.csv (and TensorBoard) over with the epochs a resumed run inherits from its checkpoint."""
        if not self.enabled:
            return
        self.csv_path.unlink(missing_ok=True)
        self._csv_fields = None
        for row in history:
            self.log_epoch(int(row["epoch"]), {k: v for k, v in row.items() if k != "epoch"})

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        """A (C, H, W) float image in [0, 1] to TensorBoard."""
        if self.tb is not None:
            self.tb.add_image(tag, image, step)

    def write_json(self, name: str, data: dict[str, Any]) -> Path | None:
        if not self.enabled:
            return None
        path = self.run_dir / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str))
        tmp.replace(path)
        return path

    def summary_table(self, title: str, rows: list[tuple[str, str]]) -> None:
        if not self.enabled:
            return
        table = Table(title=title, show_header=False)
        table.add_column(style="bold")
        table.add_column()
        for key, value in rows:
            table.add_row(key, value)
        self.print(table, soft_wrap=False)

    def close(self) -> None:
        self.close_bars()
        if self.tb is not None:
            self.tb.close()
        if self.log is not None:
            self.log.file.close()
            self.log = None
