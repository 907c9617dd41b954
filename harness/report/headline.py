"""The headline table of a scenario page: every results.json count and latency, systems side by side, the
better and worse value of each comparable row marked, and each system's difference from the reference."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.report.metrics import METRIC_GROUPS, Metric, applicable, difference, fmt, judge, ordered_runs, share

LADDER_MEAN = "throughput: mean over the whole ladder (tasks/s; not capacity, see the knees)"
"""The throughput row's label on a capacity page: over a rising ladder, the mean measures how long it ran."""


@dataclass(frozen=True)
class Value:
    """One system's value on a row."""

    text: str
    """The value as shown ("n/a" where the scenario did not apply)."""
    classes: str = ""
    """``better``, ``worse``, ``bad`` (a nonzero count that must be zero), ``na``."""
    share: str = ""
    """Share of accepted tasks, for counts of them."""


@dataclass(frozen=True)
class Line:
    """One metric."""

    label: str
    """Row label."""
    values: list[Value]
    """Per system, in column order."""
    diffs: list[str]
    """Per other system: its difference from the reference."""


@dataclass(frozen=True)
class Headline:
    """The whole table."""

    systems: list[str]
    """Columns, the reference first."""
    diff_heads: list[str]
    """Difference columns ("hatchet vs native")."""
    groups: list[tuple[str, list[Line]]]
    """Rows under their group heading."""
    not_applicable: list[str] = field(default_factory=list)
    """Systems the scenario did not apply to, with the reason."""


def _label(metric: Metric, doc: Mapping[str, Any]) -> str:
    if metric.key == "throughput_tps" and any(r.get("capacity") for r in doc.get("runs", [])):
        return LADDER_MEAN
    return metric.label


def headline(doc: Mapping[str, Any]) -> Headline:
    """The headline of one results.json."""
    runs = ordered_runs(doc)
    live = [r for r in runs if applicable(r)]
    ref, others = (live[0], live[1:]) if live else (None, [])
    groups = []
    for title, metrics in METRIC_GROUPS:
        lines = []
        for m in metrics:
            raw = [m.value(r) if applicable(r) else None for r in runs]
            values = []
            for run, value, mark in zip(runs, raw, judge(m, raw), strict=True):
                if not applicable(run):
                    values.append(Value("n/a", "na"))
                    continue
                classes = " ".join(c for c in (mark, "bad" if m.bad and value else "") if c)
                values.append(Value(fmt(value), classes, share(value, run.get("accepted")) if m.of_accepted else ""))
            diffs = [difference(m.value(ref), m.value(o)) for o in others] if ref else []
            lines.append(Line(_label(m, doc), values, diffs))
        groups.append((title, lines))
    return Headline([r["system"] for r in runs], [f"{o['system']} vs {ref['system']}" for o in others if ref],
                    groups, [f"{r['system']}: not applicable ({r.get('reason') or ''})" for r in runs
                             if not applicable(r)])
