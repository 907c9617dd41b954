"""HTML of the report pages, from already-read data (no file or ledger access here).

Three pages: a scenario (headline, charts, drill-down, manifest, raw data), a run (its
scenarios with their verdicts), and the list of every run with trends across runs. Pages with
charts inline their script and style (:mod:`harness.report.assets`): they open with no network.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from harness.report import assets, capacity
from harness.report.calls import CallSummary
from harness.report.charts import Spec, cdf_chart, share_ranges, time_charts, trend_charts
from harness.report.metrics import METRIC_GROUPS, applicable, difference, fmt, judge, ordered_runs, share
from harness.report.series import RunSeries
from harness.report.stories import Story
from harness.report.verdict import verdict

Link = tuple[str, str]
"""(label, href) of a link."""



def esc(text: object) -> str:
    """Text made safe for HTML, quotes included (attributes use them)."""
    return html.escape(str(text))


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


@dataclass
class SystemView:
    """One system's part of a scenario page."""

    run: dict[str, Any]
    """Its results.json entry."""
    series: RunSeries | None = None
    """Its time series (None without a ledger)."""
    stories: list[Story] = field(default_factory=list)
    """Drill-down of its lost and duplicated tasks."""
    note: str = ""
    """Why there are no charts, if there are none."""
    calls: CallSummary | None = None
    """Its downstream calls from both ends (None: no call was made)."""


@dataclass
class ScenarioView:
    """Everything a scenario page shows."""

    doc: dict[str, Any]
    """The results.json document."""
    systems: list[SystemView]
    """Per system, native first."""
    files: list[tuple[str, list[Link]]] = field(default_factory=list)
    """Raw data links, grouped under a heading."""
    nav: list[Link] = field(default_factory=list)
    """Links to the run and the list of runs."""


@dataclass
class RunEntry:
    """One run in the list of runs."""

    name: str
    """Directory name (the run id)."""
    href: str
    """Link to its page."""
    docs: list[dict[str, Any]]
    """Its scenarios' results.json documents."""

    @property
    def started(self) -> str:
        """Start of its first scenario (ISO 8601)."""
        return min((d.get("started_at", "") for d in self.docs), default="")


def _id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)


def _links(links: Sequence[Link]) -> str:
    return " · ".join(f"<a href='{esc(href)}'>{esc(label)}</a>" for label, href in links)


def page(title: str, body: str, charts: Sequence[Spec] = ()) -> str:
    """A whole HTML document; with charts, the data and the chart script are inlined."""
    script = ""
    if charts:
        data = json.dumps({"charts": list(charts)}, separators=(",", ":")).replace("</", "<\\/")
        script = (f"<script type='application/json' id='report-data'>{data}</script>"
                  f"<script>{assets.chart_script()}</script>")
    footer = (f"<p class='note small'>Rendered by <code>harness report</code> from results.json and the ledgers"
              f"{f'; charts by uPlot {esc(assets.uplot_version())}, inlined' if charts else ''}. "
              f"This page loads nothing from the network.</p>")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{esc(title)}</title>"
            f"<style>{assets.style()}</style></head><body>{body}{footer}{script}</body></html>\n")


def _verdict_box(doc: dict[str, Any]) -> str:
    v = verdict(doc)
    degraded = [r for r in ordered_runs(doc) if r.get("harness_degraded")]
    warning = "".join(f"<br><b>Harness degraded ({esc(r['system'])}):</b> {esc(r.get('harness_degraded_reason'))}. "
                      f"These numbers may measure the harness, not the system." for r in degraded)
    return f"<p class='verdict {'bug' if degraded else v.level}'><b>Verdict:</b> {esc(v.text)}{warning}</p>"


def headline_table(doc: dict[str, Any]) -> str:
    """Systems side by side, with the better and worse value of each comparable row marked."""
    runs = ordered_runs(doc)
    live = [r for r in runs if applicable(r)]
    ref = live[0] if live else None
    others = live[1:]
    head = "".join(f"<th>{esc(r['system'])}</th>" for r in runs)
    head += "".join(f"<th class='diff'>{esc(o['system'])} vs {esc(live[0]['system'])}</th>" for o in others)
    rows = []
    for title, metrics in METRIC_GROUPS:
        rows.append(f"<tr class='group'><td colspan='{1 + len(runs) + len(others)}'>{esc(title)}</td></tr>")
        for m in metrics:
            values = [m.value(r) if applicable(r) else None for r in runs]
            marks = judge(m, values)
            cells = []
            for run, value, mark in zip(runs, values, marks, strict=True):
                if not applicable(run):
                    cells.append("<td class='na'>n/a</td>")
                    continue
                classes = " ".join(c for c in (mark, "bad" if m.bad and value else "") if c)
                pct = share(value, run.get("accepted")) if m.of_accepted else ""
                extra = f"<span class='share'>{pct}</span>" if pct else ""
                cells.append(f"<td class='{classes}'>{esc(fmt(value))}{extra}</td>")
            if ref:
                cells += [f"<td class='diff'>{esc(difference(m.value(ref), m.value(o)))}</td>" for o in others]
            rows.append(f"<tr><td class='label'>{esc(m.label)}</td>{''.join(cells)}</tr>")
    notes = "".join(f"<li>{esc(r['system'])}: not applicable ({esc(r.get('reason') or '')})</li>"
                    for r in runs if not applicable(r))
    legend = ("<p class='note'>Green: the better system on that row; red: the worse. Bold red: a nonzero count "
              "that must be zero for a reliable system. Shares are of accepted tasks. Differences: counts as "
              "signed differences, times and rates as ratios.</p>")
    return (f"<table><tr><th class='label'>metric</th>{head}</tr>{''.join(rows)}</table>"
            f"{f'<ul>{notes}</ul>' if notes else ''}{legend}")


def _recovery_text(fault: dict[str, Any]) -> str:
    """How the fault's recovery was measured and what came out (see harness.analysis.checker)."""
    if "recovery_s" not in fault or fault.get("action") == "skipped":
        return ""
    rec, kind = fault.get("recovery_s"), fault.get("recovery_kind", "rate")
    if kind == "catch-up":  # healed after the load ended: recovery is the backlog getting done
        return ("; some task accepted before the heal never ran" if rec is None
                else f"; every task accepted before the heal done {fmt(rec)} s after it")
    return ("; completions never got back to 90 % of the pre-fault rate" if rec is None
            else f"; completions back to 90 % of the pre-fault rate {fmt(rec)} s after the heal")


def _faults_list(runs: Sequence[dict[str, Any]]) -> str:
    items = []
    for r in runs:
        for f in r.get("faults") or []:
            until = "never healed" if f.get("until_s") is None else f"healed at {fmt(f['until_s'])} s"
            recovery = _recovery_text(f)
            items.append(f"<li>{esc(r['system'])}: <b>{esc(f['action'])} {esc(f['target'])}</b> at {fmt(f['at_s'])} s, "
                         f"{until}{recovery}</li>")
    return f"<ul>{''.join(items)}</ul>" if items else "<p class='note'>No fault was injected.</p>"


def _chart_cell(spec: Spec) -> str:
    return f"<div><div class='chart' id='{esc(spec['id'])}' data-chart></div></div>"


def _charts(view: ScenarioView) -> tuple[str, list[Spec]]:
    sync = _id(view.doc["scenario"])
    drawn = [s for s in view.systems if s.series is not None]
    per_system = {s.run["system"]: time_charts(s.series, s.run.get("faults") or [], _id(s.run["system"]), sync)
                  for s in drawn if s.series is not None}
    specs: list[Spec] = []
    cols = max(1, len(view.systems))
    parts = []
    present = {"downstream": any(s.series.call_client_ms or s.series.call_server_ms for s in drawn if s.series),
               "instruments": any(s.series.instruments for s in drawn if s.series)}
    for kind, heading, same_y in TIME_KINDS:
        if not present.get(kind, True):
            continue
        group = [per_system[s.run["system"]][kind] for s in drawn]
        share_ranges(group, y=same_y)
        specs += group
        cells = [_chart_cell(per_system[s.run["system"]][kind]) if s.series is not None
                 else f"<div class='note'>{esc(s.run['system'])}: {esc(s.note)}</div>" for s in view.systems]
        parts.append(f"<h3>{esc(heading)}</h3><div class='grid' style='--cols:{cols}'>{''.join(cells)}</div>")
    cdfs = [cdf_chart("cdf-e2e", "End-to-end latency distribution",
                      [(s.run["system"], s.series.e2e_cdf) for s in drawn if s.series is not None]),
            cdf_chart("cdf-api", "API latency distribution",
                      [(s.run["system"], s.series.api_cdf) for s in drawn if s.series is not None])]
    if drawn:
        specs += cdfs
        parts.append("<h3>Latency distribution (accepted tasks)</h3>"
                     f"<div class='grid' style='--cols:2'>{''.join(_chart_cell(c) for c in cdfs)}</div>")
    note = ("<p class='note'>Shaded bands are fault windows (from injection to heal), labelled with the fault. "
            "Hover a chart to read values; the charts of one scenario share the cursor. Drag to zoom, "
            "double-click to reset. Charts of one kind share their y range across systems, memory excepted.</p>")
    return note + "".join(parts), specs


def _ms_triple(lat: Any) -> str:
    return "—" if not lat.n else f"{fmt(lat.p50)} / {fmt(lat.p99)} / {fmt(lat.max)}"


def _calls(view: ScenarioView) -> str:
    """Downstream calls from both ends, systems side by side, and each system's slowest calls."""
    shown = [s for s in view.systems if s.calls is not None]
    if not shown:
        return ""
    rows: list[tuple[str, list[str]]] = [
        ("calls (the jobs' side)", [fmt(s.calls.calls) for s in shown if s.calls]),
        ("answered 2xx", [fmt(s.calls.ok) for s in shown if s.calls]),
        ("by outcome", [", ".join(f"{k} {v}" for k, v in s.calls.outcomes.items()) for s in shown if s.calls]),
        ("client time p50 / p99 / max (ms)", [_ms_triple(s.calls.client_ms) for s in shown if s.calls]),
        ("server time p50 / p99 / max (ms)", [_ms_triple(s.calls.server_ms) for s in shown if s.calls]),
        ("outside the server p50 / p99 / max (ms)", [_ms_triple(s.calls.outside_ms) for s in shown if s.calls]),
        ("recorded by the service only", [fmt(s.calls.server_only) for s in shown if s.calls]),
    ]
    head = "".join(f"<th>{esc(s.run['system'])}</th>" for s in shown)
    body = "".join(f"<tr><td class='label'>{esc(label)}</td>{''.join(f'<td>{esc(v)}</td>' for v in values)}</tr>"
                   for label, values in rows)
    slow = []
    for s in shown:
        assert s.calls is not None
        items = "".join(f"<li><code>{esc(c.client.task_id)}</code> at "
                        f"{c.client.t_start - (s.series.t0 if s.series else 0):.2f} s, {esc(c.breakdown())}</li>"
                        for c in s.calls.slowest)
        slow.append(f"<p>{esc(s.run['system'])}: slowest calls</p><ul class='small'>{items}</ul>" if items else "")
    client = (view.doc.get("manifest") or {}).get("downstream_client")
    note = ("<p class='note'>Client time: the job's call, request sent to answer or error, through its link "
            "(Toxiproxy when the scenario may fault it). Server time: the downstream service's, request received "
            "to answer sent, its ledger commit included. Outside the server: the link and its faults, the network, "
            "the client's connection pool and event loop. "
            f"The client{': ' + esc(client) if client else ' is httpx (the job code)'}; it is the same code in "
            "every system, so its limits (a burst beyond its pool waits for a connection) weigh on every system "
            "that calls at once.</p>")
    return f"<table><tr><th class='label'></th>{head}</tr>{body}</table>{''.join(slow)}{note}"


def _story_html(story: Story) -> str:
    rows = "".join(f"<tr class='{'fault' if s.fault else ''}'><td>{s.t_s:.3f}</td><td class='text'>{esc(s.what)}</td>"
                   f"<td class='text mono'>{esc(s.detail)}</td></tr>" for s in story.steps)
    calls = "".join(f"<li>downstream call, {esc(line)}</li>" for line in story.calls)
    calls = f"<ul class='small'>{calls}</ul>" if calls else ""
    return (f"<details><summary><code>{esc(story.task_id)}</code> {esc(story.verdict)}: {esc(story.summary)}</summary>"
            f"{calls}<table><tr><th>t (s)</th><th class='label'>what</th><th class='label'>detail</th></tr>{rows}"
            f"</table></details>")


def _drilldown(view: ScenarioView) -> str:
    parts = []
    for s in view.systems:
        run = s.run
        if not applicable(run):
            continue
        counts = {"lost": run.get("lost", 0), "duplicated": run.get("duplicated", 0)}
        if not any(counts.values()):
            parts.append(f"<p>{esc(run['system'])}: no lost and no duplicated task.</p>")
            continue
        for kind, total in counts.items():
            if not total:
                continue
            mine = [st for st in s.stories if st.verdict == kind]
            shown = f"first {len(mine)} of {total}" if len(mine) < total else f"all {total}"
            parts.append(f"<h3>{esc(run['system'])}: {kind} tasks ({shown})</h3>")
            stories = "".join(_story_html(st) for st in mine)
            parts.append(f"<div class='stories'>{stories}</div>" if stories else f"<p class='note'>{esc(s.note)}</p>")
    return "".join(parts)


def _kv_table(items: Sequence[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><td class='label'>{esc(k)}</td><td class='text mono'>{esc(v)}</td></tr>" for k, v in items)
    return f"<table>{rows}</table>"


def _rss(run: dict[str, Any], process: str) -> str:
    m = (run.get("rss_mb") or {}).get(process)
    return f"{fmt(m['start'])} → {fmt(m['max'])} → {fmt(m['end'])}" if m else "—"


def _degraded(run: dict[str, Any]) -> str:
    """Whether the harness kept up, with its instruments' peaks outside fault windows (harness.analysis.instruments)."""
    if "harness_degraded" not in run:
        return "not checked"
    peaks = (run.get("harness_instruments") or {}).get("peaks") or {}
    seen = ", ".join(f"{k} {fmt(v)}" for k, v in peaks.items()) or "no instrument samples"
    return f"yes: {run.get('harness_degraded_reason')}" if run["harness_degraded"] else f"no (peaks: {seen})"


def _run_facts(doc: dict[str, Any]) -> str:
    """Per-system facts of the run (stack start, drain, memory), systems side by side."""
    runs = [r for r in ordered_runs(doc) if applicable(r)]
    rows: list[tuple[str, list[str]]] = [
        ("stack up (s)", [fmt(r.get("stack_up_s")) for r in runs]),
        ("drain (s)", [fmt(r.get("drain_s")) for r in runs]),
        ("drain ended by", [str(r.get("drain_end", "—")) for r in runs]),
        ("drain quiet time (s)", [fmt(r.get("drain_quiet_s")) + (f" ({r['drain_why']})" if r.get("drain_why") else "")
                                  for r in runs]),
        ("crashes (restarted by the supervisor)", [fmt(r.get("crashes")) for r in runs]),
        ("links through Toxiproxy", [", ".join((r.get("links") or {}).get("proxied", [])) or "none" for r in runs]),
        ("own settings (variant)", [", ".join(f"{k}={v}" for k, v in (r.get("params") or {}).items()) or "—"
                                    for r in runs]),
        ("ledger", [str(r.get("ledger", "—")) for r in runs]),
        ("identities broken", ["; ".join(r.get("identities_broken") or []) or "none" for r in runs]),
        ("harness degraded", [_degraded(r) for r in runs]),
    ]
    for proc in sorted({p for r in runs for p in (r.get("rss_mb") or {})}):
        rows.append((f"RSS {proc} (MiB: start → peak → end)", [_rss(r, proc) for r in runs]))
    head = "".join(f"<th>{esc(r['system'])}</th>" for r in runs)
    body = "".join(f"<tr><td class='label'>{esc(label)}</td>{''.join(f'<td>{esc(v)}</td>' for v in values)}</tr>"
                   for label, values in rows)
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


def _manifest(doc: dict[str, Any]) -> str:
    manifest = dict(doc.get("manifest") or {})
    params = manifest.pop("params", {}) or {}
    top = [("scenario", doc.get("scenario")), ("seed", doc.get("seed")), ("started at", doc.get("started_at")),
           ("wall time (s)", doc.get("duration_s")), *manifest.items()]
    return (f"<div class='grid manifest' style='--cols:3'><div><h3>Run</h3>{_kv_table(top)}</div>"
            f"<div><h3>Parameters</h3>{_kv_table(list(params.items()))}</div>"
            f"<div><h3>Per system</h3>{_run_facts(doc)}</div></div>")


def _file_list(links: Sequence[Link]) -> str:
    return f"<ul class='files'>{''.join(f'<li>{_links([link])}</li>' for link in links)}</ul>"


def _files(groups: Sequence[tuple[str, list[Link]]]) -> str:
    return "".join(f"<h3>{esc(title)}</h3>{_file_list(links)}" for title, links in groups if links)


def render_scenario(view: ScenarioView) -> str:
    """A scenario's page: headline, charts, drill-down, manifest and raw data."""
    doc = view.doc
    charts_html, specs = _charts(view)
    calls_html = _calls(view)
    capacity_html, capacity_specs = capacity.section(doc)
    body = (f"<nav>{_links(view.nav)}</nav><h1>{esc(doc['scenario'])}</h1>"
            f"<p><b>Fault:</b> {esc(doc.get('fault', ''))}<br><b>Claim:</b> {esc(doc.get('claim', ''))}<br>"
            f"<b>Seed</b> {esc(doc.get('seed'))} · <b>started</b> {esc(doc.get('started_at', ''))} · "
            f"<b>git</b> <code>{esc((doc.get('manifest') or {}).get('git_sha', '?'))}</code></p>"
            f"{_verdict_box(doc)}<h2>Headline</h2>{headline_table(doc)}{capacity_html}"
            f"<h2>Faults</h2>{_faults_list(ordered_runs(doc))}"
            f"<h2>Over time</h2>{charts_html}"
            f"{'<h2>Downstream calls: where the time went</h2>' + calls_html if calls_html else ''}"
            f"<h2>Lost and duplicated tasks</h2>{_drilldown(view)}"
            f"<h2>Manifest</h2>{_manifest(doc)}<h2>Raw data</h2>{_files(view.files)}")
    return page(f"{doc['scenario']}: {' vs '.join(r['system'] for r in ordered_runs(doc))}", body,
                [*capacity_specs, *specs])


def _summary_cells(doc: dict[str, Any]) -> str:
    cells = []
    for r in ordered_runs(doc):
        if not applicable(r):
            cells.append(f"<td class='na text'>{esc(r['system'])}: n/a</td>")
            continue
        lost = f"<span class='{'bad' if r.get('lost') else ''}'>lost {fmt(r.get('lost'))}</span>"
        dup = f"<span class='{'bad' if r.get('duplicated') else ''}'>dup {fmt(r.get('duplicated'))}</span>"
        cells.append(f"<td class='text'><b>{esc(r['system'])}</b> accepted {fmt(r.get('accepted'))}, {lost}, {dup}, "
                     f"{fmt(r.get('throughput_tps'))} tasks/s</td>")
    return "".join(cells)


def render_run_index(name: str, entries: Sequence[tuple[str, dict[str, Any]]], files: Sequence[Link],
                     nav: Sequence[Link]) -> str:
    """A run's page: each scenario (href, results.json) with its verdict and headline counts."""
    rows = "".join(f"<tr><td class='label'><a href='{esc(href)}'>{esc(doc['scenario'])}</a></td>"
                   f"<td class='text'>{_verdict_box(doc)}</td>{_summary_cells(doc)}</tr>" for href, doc in entries)
    first = entries[0][1] if entries else {}
    manifest = first.get("manifest") or {}
    facts = [("git", manifest.get("git_sha")), ("host", manifest.get("host")), ("command", manifest.get("command")),
             ("started", min((d.get("started_at", "") for _, d in entries), default=""))]
    body = (f"<nav>{_links(nav)}</nav><h1>Run {esc(name)}</h1>{_kv_table(facts)}"
            f"<h2>Scenarios</h2><table><tr><th class='label'>scenario</th><th class='label'>verdict</th>"
            f"<th class='label' colspan='2'>systems</th></tr>{rows}</table>"
            f"<h2>Logs of the shared servers</h2>{_file_list(files)}")
    return page(f"Run {name}", body)


def _when(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return iso


def render_reports_index(runs: Sequence[RunEntry]) -> str:
    """The list of every run, newest first, and per scenario the trend of lost tasks and throughput."""
    newest = sorted(runs, key=lambda r: r.started, reverse=True)
    rows = []
    for run in newest:
        scen = "".join(f"<tr><td class='label'>{esc(d['scenario'])}</td>{_summary_cells(d)}</tr>" for d in run.docs)
        sha = str((run.docs[0].get("manifest") or {}).get("git_sha", "?")) if run.docs else "?"
        rows.append(f"<tr><td class='label'><a href='{esc(run.href)}'>{esc(run.name)}</a></td>"
                    f"<td class='text'>{esc(_when(run.started))}</td>"
                    f"<td class='mono'>{esc(sha[:12])}</td><td class='text'><table>{scen}</table></td></tr>")
    oldest = list(reversed(newest))
    by_scenario: dict[str, list[tuple[int, dict[str, dict[str, Any]]]]] = {}
    for number, run in enumerate(oldest, start=1):
        for d in run.docs:
            by_scenario.setdefault(d["scenario"], []).append((number, {r["system"]: r for r in d["runs"]}))
    specs: list[Spec] = []
    trend = []
    for scenario, points in sorted(by_scenario.items()):
        pair = trend_charts(f"trend-{_id(scenario)}", scenario, [r.name for r in oldest], points)
        specs += pair
        trend.append(f"<div class='grid' style='--cols:2'>{''.join(_chart_cell(s) for s in pair)}</div>")
    body = (f"<h1>All runs</h1><p class='note'>{len(runs)} run(s), newest first.</p>"
            f"<table><tr><th class='label'>run</th><th class='label'>started</th><th>git</th>"
            f"<th class='label'>scenarios</th></tr>"
            f"{''.join(rows)}</table><h2>Trends across runs</h2>"
            f"<p class='note'>Each point is one run of the scenario; runs are numbered from the oldest "
            f"(hover a point for the run's id).</p>{''.join(trend)}")
    return page("All runs", body, specs)
