"""The capacity section of a scenario page: each system's knee beside the reference ceilings measured in
the same run, the ladder as a chart, and where the time went at the knee (from results.json alone)."""

from __future__ import annotations

import html as _html
from collections.abc import Sequence
from typing import Any

from harness.report.charts import Spec, align, spec, system_color
from harness.report.metrics import applicable, fmt


def _esc(text: object) -> str:
    return _html.escape(str(text))


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    th = "".join(f"<th>{_esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td class='{'label' if i == 0 else ''}'>{_esc(fmt(v) if i else v)}</td>"
                                    for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _share(x: Any) -> str:
    return "—" if x is None else f"{100 * float(x):.0f} %"


def _knees(runs: Sequence[dict[str, Any]]) -> str:
    rows = []
    for r in runs:
        cap, ref = r["capacity"], r["capacity"].get("reference", {})
        pg = ref.get("postgres_commits_per_s") or {}
        rows.append([r["system"], cap.get("knee_rate"), cap.get("max_sustained_tps"), cap.get("accept_knee_rate"),
                     ref.get("engine_runs_per_s"), _share(cap.get("knee_vs_engine")),
                     " / ".join(f"{pg[k]:g}" for k in sorted(pg, key=int)) or "—",
                     ref.get("generator_req_per_s"), _share(cap.get("knee_vs_generator")),
                     ", ".join(r.get("links", {}).get("proxied", [])) or "none"])
    head = ["system", "knee (offered/s)", "completes at the knee (tasks/s)", "accepts up to (offered/s)",
            "engine ceiling (runs/s, hatchet-loadtest)", "knee / engine ceiling",
            "Postgres commits/s (1 / 4 / 8 clients, pgbench)", "load generator (req/s)", "knee / generator",
            "links through Toxiproxy"]
    return _table(head, rows)


def _breakdown(runs: Sequence[dict[str, Any]]) -> str:
    parts = []
    for r in runs:
        for rate, stages in (r["capacity"].get("where_time_goes") or {}).items():
            knee = float(rate) == float(r["capacity"].get("knee_rate") or -1)
            rows = [[s["stage"], s.get("n"), s.get("p50_ms"), s.get("p99_ms")] for s in stages]
            parts.append(f"<h4>{_esc(r['system'])} at {_esc(rate)}/s ({'the knee' if knee else 'past the knee'})</h4>"
                         + _table(["stage", "tasks", "p50 ms", "p99 ms"], rows))
    return "".join(parts) or "<p class='note'>No step was sustained: no breakdown.</p>"


def _chart(runs: Sequence[dict[str, Any]]) -> Spec:
    curves = [[(s["rate"], s["completed_tps"]) for s in r["capacity"].get("steps", [])] for r in runs]
    offered = sorted({x for c in curves for x, _ in c})
    xs, ys = align([*curves, [(x, x) for x in offered]])
    names = [r["system"] for r in runs]
    return spec("capacity-ladder", "Completions per second at each offered rate", xs, ys, [*names, "offered"],
                [*(system_color(n, i) for i, n in enumerate(names)), "#999999"], y_label="completed tasks/s",
                x_label="offered rate (requests/s, log scale)", x_short="offered/s", log_x=True, points=True,
                dashed=["offered"])


def section(doc: dict[str, Any]) -> tuple[str, list[Spec]]:
    """HTML of the capacity section and its chart (empty when no run measured capacity)."""
    runs = [r for r in doc.get("runs", []) if applicable(r) and r.get("capacity")]
    if not runs:
        return "", []
    chart = _chart(runs)
    errors = [f"{r['system']}: {name}: {detail['error']}" for r in runs
              for name, detail in (r["capacity"].get("reference", {}).get("details") or {}).items()
              if isinstance(detail, dict) and detail.get("error")]
    note = ("<p class='note'>Reference ceilings are measured in the same run, after each system's ladder, on the "
            "same machine: Hatchet's own load tester against the same engine (its Go client and worker), pgbench "
            "single-row INSERT commits against the same Postgres on the path the engine used, and the load "
            "generator against a canned endpoint. Where-the-time-goes rows come from the ledger: the client's "
            "answer, the spans the system recorded (Hatchet: <code>trigger.wait</code> for a trigger thread, "
            "<code>trigger.call</code> in gRPC and the engine), the wait until the first attempt starts (negative "
            "when a worker starts before the answer is back), and that attempt's run.</p>")
    err = "".join(f"<li>{_esc(e)}</li>" for e in errors)
    html = (f"<h2>Capacity</h2>{_knees(runs)}{f'<ul>{err}</ul>' if err else ''}{note}"
            f"<div class='grid' style='--cols:1'><div><div class='chart' id='{chart['id']}' data-chart></div></div>"
            f"</div><h3>Where the time goes</h3>{_breakdown(runs)}")
    return html, [chart]
