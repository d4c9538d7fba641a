"""One row of the doctor's verdict table (its own module, so that audit, probes and picture share it without
importing the package that runs them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Check:
    section: str
    name: str
    status: str  # pass | warn | fail | info | skip | inconclusive (too little data to judge)
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


def few(items: list[str], n: int = 3) -> str:
    """The first `n` items and how many more: details name examples, doctor.json holds the full lists."""
    return ", ".join(items[:n]) + (f" … (+{len(items) - n})" if len(items) > n else "")
