"""The plain facts of a scenario page as rows of text: its faults with their recovery, the downstream calls
from both ends, each system's run (stack start, drain, memory) and the manifest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.report.calls import CallSummary
from harness.report.metrics import applicable, fmt, ordered_runs

Rows = list[tuple[str, list[str]]]
"""(label, one value per system) rows."""


@dataclass(frozen=True)
class FaultLine:
    """One injection, as the faults list tells it."""

    system: str
    """The system it hit."""
    what: str
    """Action and target (``kill api``)."""
    at: str
    """Injection time, seconds into the measured load."""
    rest: str
    """When it healed and how recovery went."""


def recovery_text(fault: Mapping[str, Any]) -> str:
    """How the fault's recovery was measured and what came out (see harness.analysis.checker)."""
    if "recovery_s" not in fault or fault.get("action") == "skipped":
        return ""
    rec, kind = fault.get("recovery_s"), fault.get("recovery_kind", "rate")
    if kind == "catch-up":  # healed after the load ended: recovery is the backlog getting done
        return ("; some task accepted before the heal never ran" if rec is None
                else f"; every task accepted before the heal done {fmt(rec)} s after it")
    return ("; completions never got back to 90 % of the pre-fault rate" if rec is None
            else f"; completions back to 90 % of the pre-fault rate {fmt(rec)} s after the heal")


def faults(runs: Sequence[Mapping[str, Any]]) -> list[FaultLine]:
    """Every injection of every system, in system order."""
    out = []
    for r in runs:
        for f in r.get("faults") or []:
            until = "never healed" if f.get("until_s") is None else f"healed at {fmt(f['until_s'])} s"
            out.append(FaultLine(r["system"], f"{f['action']} {f['target']}", fmt(f["at_s"]),
                                 f"{until}{recovery_text(f)}"))
    return out


def _ms_triple(lat: Any) -> str:
    return "—" if not lat.n else f"{fmt(lat.p50)} / {fmt(lat.p99)} / {fmt(lat.max)}"


def call_rows(shown: Sequence[CallSummary]) -> Rows:
    """Downstream calls from both ends, one value per system that made calls."""
    return [
        ("calls (the jobs' side)", [fmt(c.calls) for c in shown]),
        ("answered 2xx", [fmt(c.ok) for c in shown]),
        ("by outcome", [", ".join(f"{k} {v}" for k, v in c.outcomes.items()) for c in shown]),
        ("client time p50 / p99 / max (ms)", [_ms_triple(c.client_ms) for c in shown]),
        ("server time p50 / p99 / max (ms)", [_ms_triple(c.server_ms) for c in shown]),
        ("outside the server p50 / p99 / max (ms)", [_ms_triple(c.outside_ms) for c in shown]),
        ("recorded by the service only", [fmt(c.server_only) for c in shown]),
    ]


def _rss(run: Mapping[str, Any], process: str) -> str:
    m = (run.get("rss_mb") or {}).get(process)
    return f"{fmt(m['start'])} → {fmt(m['max'])} → {fmt(m['end'])}" if m else "—"


def degraded(run: Mapping[str, Any]) -> str:
    """Whether the harness kept up, with its instruments' peaks outside fault windows (harness.analysis.instruments)."""
    if "harness_degraded" not in run:
        return "not checked"
    peaks = (run.get("harness_instruments") or {}).get("peaks") or {}
    seen = ", ".join(f"{k} {fmt(v)}" for k, v in peaks.items()) or "no instrument samples"
    return f"yes: {run.get('harness_degraded_reason')}" if run["harness_degraded"] else f"no (peaks: {seen})"


def run_rows(doc: Mapping[str, Any]) -> tuple[list[str], Rows]:
    """Per-system facts of the run (stack start, drain, memory): the systems, and one row per fact."""
    runs = [r for r in ordered_runs(doc) if applicable(r)]
    rows: Rows = [
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
        ("harness degraded", [degraded(r) for r in runs]),
    ]
    for server in sorted({s for r in runs for s, m in (r.get("servers") or {}).items() if m.get("settings")}):
        rows.append((f"server {server}: settings (source)",
                     ["; ".join(f"{k} = {v}" for k, v in ((r.get("servers") or {}).get(server) or {})
                                .get("settings", {}).items()) or "—" for r in runs]))
    for proc in sorted({p for r in runs for p in (r.get("rss_mb") or {})}):
        rows.append((f"RSS {proc} (MiB: start → peak → end)", [_rss(r, proc) for r in runs]))
    return [r["system"] for r in runs], rows


def manifest(doc: Mapping[str, Any]) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """The run's facts (scenario, seed, versions, command, host...) and its parameters."""
    items = dict(doc.get("manifest") or {})
    params = items.pop("params", {}) or {}
    top = [("scenario", doc.get("scenario")), ("seed", doc.get("seed")), ("started at", doc.get("started_at")),
           ("wall time (s)", doc.get("duration_s")), *items.items()]
    return top, list(params.items())
