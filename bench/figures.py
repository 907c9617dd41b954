"""A benchmark figure (repeated measurements, their median, its goal) and the machine it was measured on."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil


@dataclass
class Figure:
    """One measured quantity: every repeat, the median reported, and the goal it is held to (if any)."""

    name: str
    """What was measured."""
    unit: str
    """Unit of the values."""
    runs: list[float]
    """One value per repeat."""
    at_least: float | None = None
    """Goal: the median must be at least this."""
    at_most: float | None = None
    """Goal: the median must be at most this."""
    note: str = ""
    """How it was measured, in a few words."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Further numbers (percentiles, per-system values)."""

    @property
    def median(self) -> float:
        """The reported value: the median of the repeats (the machine is shared, so single runs are noisy)."""
        return statistics.median(self.runs)

    @property
    def goal(self) -> str:
        """The goal as text (empty: no goal)."""
        if self.at_least is not None:
            return f">= {self.at_least:g} {self.unit}"
        return f"<= {self.at_most:g} {self.unit}" if self.at_most is not None else ""

    @property
    def met(self) -> bool | None:
        """Whether the median meets the goal (None: no goal)."""
        if self.at_least is not None:
            return self.median >= self.at_least
        return self.median <= self.at_most if self.at_most is not None else None

    def as_json(self) -> dict[str, Any]:
        """The figure as a JSON object."""
        return {"name": self.name, "unit": self.unit, "median": self.median, "runs": self.runs, "goal": self.goal,
                "met": self.met, "note": self.note, **self.extra}

    def line(self) -> str:
        """One line for the terminal."""
        verdict = {True: "met", False: "MISSED", None: ""}[self.met]
        runs = ", ".join(f"{r:.4g}" for r in self.runs)
        return f"{self.name:<64} {self.median:>10.4g} {self.unit:<8} {self.goal:<16} {verdict:<6} [{runs}]"


def cv(values: list[float]) -> float:
    """Coefficient of variation (sample standard deviation over mean), 0 for fewer than two values."""
    if len(values) < 2 or statistics.fmean(values) == 0:
        return 0.0
    return statistics.stdev(values) / statistics.fmean(values)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
               platform.processor())
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
