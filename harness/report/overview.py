"""The pages above scenarios: a run's page (the scenario-by-system matrix) and the list of every run (losses
and duplicates across runs, then trend charts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.report import colors, matrix
from harness.report.charts import Spec, trend_charts
from harness.report.lineup import columns
from harness.report.render import dom_id, page, when
from harness.report.trends import RunDocs, trends
from harness.report.views import Link, RunEntry

NEEDS_A_LOOK = ("bug", "broken", "lost", "unshown")
"""Matrix states the list of runs names per run."""
NAMED = 6
"""Most of them named per run."""


def _warnings(entries: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    return [f"Harness degraded ({r['system']}) in {doc['scenario']}: {r.get('harness_degraded_reason') or ''}. "
            f"These numbers may measure the harness, not the system."
            for _, doc in entries for r in doc.get("runs", []) if r.get("harness_degraded")]


def render_run_index(name: str, entries: Sequence[tuple[str, Mapping[str, Any]]], files: Sequence[Link],
                     nav: Sequence[Link], hues: Mapping[str, str] | None = None,
                     findings: Mapping[str, Sequence[Link]] | None = None) -> str:
    """A run's page: the matrix of its scenarios (href, results.json) by system, then its facts and shared logs."""
    systems, rows = matrix.matrix(entries, findings)
    first = entries[0][1] if entries else {}
    manifest = first.get("manifest") or {}
    started = min((str(d.get("started_at", "")) for _, d in entries), default="")
    facts = [("git", manifest.get("git_sha")), ("host", manifest.get("host")), ("command", manifest.get("command")),
             ("started", started)]
    line = " · ".join(str(v) for v in (f"git {str(manifest.get('git_sha') or '?')[:12]}", manifest.get("host"),
                                       when(started) if started else "") if v)
    return page("run.html.j2", f"Run {name}", name=name, nav=list(nav), systems=systems, rows=rows,
                colors={**colors.of_docs([d for _, d in entries]), **(hues or {})}, warnings=_warnings(entries),
                facts=facts, facts_line=line, files=list(files))


def _attention(run: RunEntry) -> str:
    _, rows = matrix.matrix([("", d) for d in run.docs])
    named = [f"{c.system} {c.word} in {r.scenario}" for r in rows for c in r.cells if c.state in NEEDS_A_LOOK]
    more = f" and {len(named) - NAMED} more" if len(named) > NAMED else ""
    return "; ".join(named[:NAMED]) + more


def render_reports_index(runs: Sequence[RunEntry]) -> str:
    """The list of every run: per scenario and system the lost and duplicated counts across runs, the runs newest
    first, and per scenario the trend of lost tasks and throughput as charts."""
    newest = sorted(runs, key=lambda r: r.started, reverse=True)
    oldest = list(reversed(newest))
    hues = colors.of_docs([d for r in oldest for d in r.docs])
    systems, rows, shown = trends([RunDocs(r.name, r.href.rsplit("/", 1)[0] + "/", r.docs) for r in oldest])
    listed = [{"name": r.name, "href": r.href, "started": r.started, "scenarios": len(r.docs),
               "sha": str((r.docs[0].get("manifest") or {}).get("git_sha", "?"))[:12] if r.docs else "?",
               "attention": _attention(r)} for r in newest]
    by_scenario: dict[str, list[tuple[int, dict[str, dict[str, Any]]]]] = {}
    for number, run in enumerate(oldest, start=1):
        for d in run.docs:
            by_scenario.setdefault(d["scenario"], []).append((number, {r["system"]: r for r in d["runs"]}))
    specs: list[Spec] = []
    pairs = []
    order = columns([d for r in oldest for d in r.docs])
    for scenario, points in sorted(by_scenario.items()):
        pair = trend_charts(f"trend-{dom_id(scenario)}", scenario, [r.name for r in oldest], points, order, hues)
        specs += pair
        pairs.append([s["id"] for s in pair])
    return page("runs.html.j2", "All runs", specs, count=len(runs), systems=systems, rows=rows, shown=shown,
                colors=hues, runs=listed, trend_charts=pairs)
