"""The headline metrics of a scenario run, how to read them and how to compare systems.

One list of :class:`Metric` serves the HTML table, the terminal table and the verdict, so the
three never disagree on what a number means or which way is better.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Better = Literal["lower", "higher"] | None


@dataclass(frozen=True)
class Metric:
    """One row of the comparison: where its value is in a results.json run, and how to judge it."""

    key: str
    """Field of the run (``lost``), or ``field.sub`` for a latency percentile (``e2e_latency_ms.p50``)."""
    label: str
    """Row label."""
    better: Better = None
    """Which way is better when systems differ (None: neither, e.g. how many were sent)."""
    bad: bool = False
    """Any nonzero value is a failure to show loudly (a lost task, a duplicate)."""
    of_accepted: bool = False
    """Also shown as a share of accepted tasks."""

    def value(self, run: dict[str, Any]) -> Any:
        """The metric's value in a run (None when absent)."""
        head, _, sub = self.key.partition(".")
        value = run.get(head)
        if sub:
            value = value.get(sub) if isinstance(value, dict) else None
        return value


def _latency(field: str, label: str, pcts: Sequence[str] = ("p50", "p95", "p99", "max")) -> list[Metric]:
    return [Metric(f"{field}.{p}", f"{label} {p} (ms)", "lower") for p in pcts]


METRIC_GROUPS: list[tuple[str, list[Metric]]] = [
    ("Tasks", [
        Metric("attempted", "attempted"),
        Metric("accepted", "accepted"),
        Metric("refused", "refused", "lower"),
        Metric("indeterminate", "indeterminate (no answer)", "lower"),
        Metric("recovered", "recovered (no answer, yet ran)"),
        Metric("completed", "completed", of_accepted=True),
        Metric("lost", "lost", "lower", bad=True, of_accepted=True),
        Metric("silent_loss", "silent loss", "lower", bad=True, of_accepted=True),
        Metric("failed", "failed (system knows)", "lower", of_accepted=True),
        Metric("duplicated", "duplicated", "lower", bad=True, of_accepted=True),
        Metric("retried", "retried", of_accepted=True),
        Metric("refused_ran", "refused yet ran", "lower", bad=True),
        Metric("unexpected", "unexpected", "lower", bad=True),
    ]),
    ("Throughput and latency", [
        Metric("throughput_tps", "throughput (tasks/s)", "higher"),
        *_latency("e2e_latency_ms", "end-to-end"),
        *_latency("api_latency_ms", "API"),
        Metric("api_latency_unloaded_ms.p50", "API p50 unloaded (ms)", "lower"),
    ]),
    ("Recovery and resources", [
        Metric("recovery_s", "recovery (s)", "lower"),
        Metric("pending_max", "peak backlog (tasks)"),
        Metric("in_flight_max", "peak in flight (attempts)"),
    ]),
]
"""The rows of the comparison, grouped, in display order."""
METRICS: list[Metric] = [m for _, group in METRIC_GROUPS for m in group]
"""Every row of the comparison, in display order."""

TEXT_KEYS = ("attempted", "accepted", "refused", "indeterminate", "recovered", "completed", "lost", "silent_loss",
             "failed", "duplicated", "retried", "refused_ran", "unexpected", "throughput_tps",
             "e2e_latency_ms.p50", "e2e_latency_ms.p99", "api_latency_ms.p50", "api_latency_ms.p99", "recovery_s")
"""Rows of the terminal table."""


def applicable(run: Mapping[str, Any]) -> bool:
    """Whether the scenario meant something for this run's system."""
    return bool(run.get("applicable", True))


def ordered_runs(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The runs of a results.json, native first: it is the reference the others are compared with."""
    return sorted(doc["runs"], key=lambda r: r["system"] != "native")


def fmt(value: Any) -> str:
    """A number as the tables show it: integers whole, others with 3 significant digits or so."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ")
    if abs(value) >= 100:
        return f"{value:,.0f}".replace(",", " ")
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def share(part: Any, whole: Any) -> str:
    """part as a percentage of whole (empty when whole is zero or absent)."""
    if not isinstance(part, int | float) or not isinstance(whole, int | float) or not whole:
        return ""
    return f"{100 * part / whole:.1f} %"


def judge(metric: Metric, values: Sequence[Any]) -> list[str]:
    """For each system's value: ``better``, ``worse`` or ``""`` (equal, not comparable or no direction)."""
    nums = [v for v in values if isinstance(v, int | float)]
    if metric.better is None or len(nums) < 2 or min(nums) == max(nums):
        return ["" for _ in values]
    best, worst = (min(nums), max(nums)) if metric.better == "lower" else (max(nums), min(nums))
    return ["better" if v == best else "worse" if v == worst else "" for v in values]


def difference(reference: Any, value: Any) -> str:
    """How value differs from the reference system's: a signed count, or a ratio for rates and times."""
    if not isinstance(reference, int | float) or not isinstance(value, int | float):
        return ""
    if isinstance(reference, int) and isinstance(value, int):
        delta = value - reference
        return "=" if delta == 0 else f"{delta:+,}".replace(",", " ").replace("-", "−")
    if reference == value:
        return "="
    if reference <= 0 or value <= 0:
        return f"{value - reference:+.2f}".replace("-", "−")
    return f"×{value / reference:.2f}"


def text_table(doc: dict[str, Any]) -> str:
    """The comparison as a plain-text table for terminals and test output: one column per system, aligned.

    Every column is as wide as its longest cell (labels left-aligned, values right-aligned), so long
    labels, long values and any number of systems keep the columns in line.
    """
    runs = ordered_runs(doc)
    by_key = {m.key: m for m in METRICS}
    rows = [[f"{doc['scenario']} (seed {doc['seed']})", *(r["system"] for r in runs)]]
    for key in TEXT_KEYS:
        metric = by_key[key]
        rows.append([metric.label.replace(" (ms)", " ms"),
                     *((fmt(metric.value(r)) if applicable(r) else "n/a") for r in runs)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        (row[0].ljust(widths[0]) + "".join("  " + cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)))
        .rstrip()
        for row in rows
    )
