"""Losses and duplicates of each scenario and system across runs: the list of runs shows a change between
nightly runs at a glance.

Each (scenario, system) cell is a strip of the last runs, oldest left: the lost and duplicated
counts of each run coloured as the run's matrix colours them, a change from the run before
outlined.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from harness.report.lineup import columns
from harness.report.matrix import cell

LAST_RUNS = 12
"""Runs a strip shows (the trend charts below it show every run)."""


@dataclass(frozen=True)
class Point:
    """One system in one scenario of one run."""

    run: str
    """The run's id."""
    href: str
    """The scenario's page in that run."""
    state: str
    """Its matrix state (:mod:`harness.report.matrix`)."""
    lost: int | None
    """Lost tasks (None: not applicable)."""
    duplicated: int | None
    """Duplicated tasks (None: not applicable)."""
    title: str
    """Tooltip: the run and its counts."""
    changed: bool = False
    """Its counts differ from the run before (where both were measured)."""


@dataclass(frozen=True)
class TrendRow:
    """One scenario across runs."""

    scenario: str
    """Its name."""
    cells: list[list[Point | None]]
    """Per column, per listed run (oldest first): the point, or None where it did not run."""


@dataclass(frozen=True)
class RunDocs:
    """One run as the trends read it."""

    name: str
    """The run's id."""
    href: str
    """Its directory, relative to the list of runs (ends with ``/``)."""
    docs: Sequence[Mapping[str, Any]]
    """Its scenarios' results.json documents."""


def _point(run: RunDocs, doc: Mapping[str, Any], system: str) -> Point | None:
    found = next((r for r in doc.get("runs", []) if r["system"] == system), None)
    if found is None:
        return None
    c = cell(doc, found, system)
    return Point(run.name, f"{run.href}{doc['scenario']}/index.html", c.state, c.lost, c.duplicated,
                 f"run {run.name}\n{c.title}")


def _counts(p: Point) -> tuple[int | None, int | None]:
    return p.lost, p.duplicated


def _mark_changes(points: list[Point | None]) -> list[Point | None]:
    out: list[Point | None] = []
    before: Point | None = None
    for p in points:
        if p is not None and before is not None and _counts(p) != _counts(before) and None not in (p.lost, before.lost):
            p = replace(p, title=p.title + "\nchanged since the run before", changed=True)
        out.append(p)
        before = p if p is not None else before
    return out


def trends(runs: Sequence[RunDocs], last: int = LAST_RUNS) -> tuple[list[str], list[TrendRow], list[str]]:
    """Columns (systems), one row per scenario (by name) and the run ids shown, oldest first."""
    shown = list(runs)[-last:]
    systems = columns([d for r in shown for d in r.docs])
    scenarios = sorted({str(d["scenario"]) for r in shown for d in r.docs})
    rows = []
    for scenario in scenarios:
        docs = [next((d for d in r.docs if d["scenario"] == scenario), None) for r in shown]
        cells = [_mark_changes([None if doc is None else _point(run, doc, system)
                                for run, doc in zip(shown, docs, strict=True)]) for system in systems]
        rows.append(TrendRow(scenario, cells))
    return systems, rows, [r.name for r in shown]
