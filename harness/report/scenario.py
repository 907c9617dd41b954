"""A scenario's page: at a glance, verdict, capacity (knees first), headline, faults, charts over time,
downstream calls, the story of each lost and duplicated task, manifest and raw data
(``templates/scenario.html.j2``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.report import capacity, colors, facts, matrix
from harness.report.charts import Spec, cdf_chart, share_ranges, time_charts
from harness.report.headline import headline
from harness.report.metrics import applicable, ordered_runs
from harness.report.render import dom_id, page
from harness.report.stories import Story
from harness.report.verdict import verdict
from harness.report.views import ScenarioView

TIME_KINDS = [
    ("rates", "Requests and completions per second", True),
    ("e2e", "End-to-end latency over time (request sent → first effect)", True),
    ("api", "API latency over time (request sent → answer)", True),
    ("backlog", "Backlog and attempts in flight", True),
    ("downstream", "Downstream call time: at the client (the job, solid) and at the service (dashed)", True),
    ("instruments", "Harness instruments: downstream service and ledger (is the harness keeping up?)", True),
    # Process sets differ (Hatchet's Postgres dwarfs an API process): each chart scales on its own.
    ("rss", "Resident memory per process", False),
]
"""Kinds of time chart, in page order: heading, and whether systems share the y range."""


@dataclass(frozen=True)
class ChartCell:
    """One system's place in a row of charts: its chart, or why it has none."""

    system: str
    """The system."""
    chart_id: str = ""
    """Its chart's element id ("" when it has none)."""
    note: str = ""
    """Why there is no chart."""


@dataclass(frozen=True)
class ChartRow:
    """One kind of chart, systems side by side."""

    heading: str
    """What the charts show."""
    cells: list[ChartCell]
    """Per system, in page order."""


@dataclass(frozen=True)
class Drill:
    """One block of the drill-down: a system's lost or duplicated tasks, or that it had none."""

    system: str
    """The system."""
    heading: str = ""
    """``native: lost tasks (all 40)``; empty when the system lost and duplicated nothing."""
    stories: list[Story] = field(default_factory=list)
    """The stories told (results.json lists at most 50 of each class)."""
    note: str = ""
    """Why no story is told (no ledger)."""


def _charts(view: ScenarioView, hues: Mapping[str, str]) -> tuple[list[ChartRow], list[Spec], list[str]]:
    """Rows of time charts, every spec (time charts, then distributions), and the distribution charts' ids."""
    sync = dom_id(view.doc["scenario"])
    drawn = [s for s in view.systems if s.series is not None]
    per_system = {s.run["system"]: time_charts(s.series, s.run.get("faults") or [], dom_id(s.run["system"]), sync)
                  for s in drawn if s.series is not None}
    present = {"downstream": any(s.series.call_client_ms or s.series.call_server_ms for s in drawn if s.series),
               "instruments": any(s.series.instruments for s in drawn if s.series)}
    rows, specs = [], []
    for kind, heading, same_y in TIME_KINDS:
        if not present.get(kind, True):
            continue
        group = [per_system[s.run["system"]][kind] for s in drawn]
        share_ranges(group, y=same_y)
        specs += group
        rows.append(ChartRow(heading, [ChartCell(s.run["system"], per_system[s.run["system"]][kind]["id"])
                                       if s.series is not None else ChartCell(s.run["system"], note=s.note)
                                       for s in view.systems]))
    if not drawn:
        return rows, specs, []
    cdfs = [cdf_chart("cdf-e2e", "End-to-end latency distribution",
                      [(s.run["system"], s.series.e2e_cdf) for s in drawn if s.series is not None], hues),
            cdf_chart("cdf-api", "API latency distribution",
                      [(s.run["system"], s.series.api_cdf) for s in drawn if s.series is not None], hues)]
    return rows, specs + cdfs, [c["id"] for c in cdfs]


def _calls(view: ScenarioView) -> dict[str, Any] | None:
    shown = [s for s in view.systems if s.calls is not None]
    if not shown:
        return None
    slowest = []
    for s in shown:
        assert s.calls is not None
        t0 = s.series.t0 if s.series else 0.0
        calls = [(c.client.task_id, f"{c.client.t_start - t0:.2f}", c.breakdown()) for c in s.calls.slowest]
        if calls:
            slowest.append((s.run["system"], calls))
    return {"systems": [s.run["system"] for s in shown],
            "rows": facts.call_rows([s.calls for s in shown if s.calls is not None]),
            "slowest": slowest, "client": (view.doc.get("manifest") or {}).get("downstream_client") or ""}


def _drilldown(view: ScenarioView) -> list[Drill]:
    out = []
    for s in view.systems:
        run = s.run
        if not applicable(run):
            continue
        counts = {"lost": run.get("lost", 0), "duplicated": run.get("duplicated", 0)}
        if not any(counts.values()):
            out.append(Drill(run["system"]))
            continue
        for kind, total in counts.items():
            if not total:
                continue
            mine = [st for st in s.stories if st.verdict == kind]
            shown = f"first {len(mine)} of {total}" if len(mine) < total else f"all {total}"
            out.append(Drill(run["system"], f"{run['system']}: {kind} tasks ({shown})", mine, s.note))
    return out


def render_scenario(view: ScenarioView) -> str:
    """A scenario's page."""
    doc = view.doc
    runs = ordered_runs(doc)
    hues = {**colors.of_docs([doc]), **view.colors}
    chart_rows, specs, cdf_ids = _charts(view, hues)
    cap = capacity.section(doc, hues)
    systems = [r["system"] for r in runs]
    top, params = facts.manifest(doc)
    fact_systems, fact_rows = facts.run_rows(doc)
    head = {"scenario": doc["scenario"], "fault": doc.get("fault", ""), "claim": doc.get("claim", ""),
            "seed": doc.get("seed"), "started": doc.get("started_at", ""),
            "git": (doc.get("manifest") or {}).get("git_sha", "?")}
    context = {
        "head": head, "nav": view.nav, "verdict": verdict(doc), "colors": hues,
        "degraded": [(r["system"], r.get("harness_degraded_reason")) for r in runs if r.get("harness_degraded")],
        "glance": matrix.row(doc, "", systems), "glance_systems": systems, "findings": view.findings,
        "capacity": cap, "headline": headline(doc), "faults": facts.faults(runs),
        "chart_rows": chart_rows, "cdf_ids": cdf_ids, "calls": _calls(view), "drill": _drilldown(view),
        "manifest": top, "params": params, "fact_systems": fact_systems, "fact_rows": fact_rows,
        "files": [(title, links) for title, links in view.files if links],
    }
    charts = [*([cap.chart] if cap and cap.chart else []), *specs]
    return page("scenario.html.j2", f"{doc['scenario']}: {' vs '.join(systems)}", charts, **context)
