"""HTML reports rendered from results.json alone (so they can be rebuilt without re-running)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

ROWS = [
    ("attempted", "attempted"), ("accepted", "accepted"), ("refused", "refused"),
    ("indeterminate", "indeterminate"), ("recovered", "recovered"), ("completed", "completed"),
    ("lost", "lost"), ("silent_loss", "silent loss"), ("failed", "failed"), ("duplicated", "duplicated"),
    ("retried", "retried"), ("refused_ran", "refused yet ran"), ("unexpected", "unexpected"),
    ("throughput_tps", "throughput (tasks/s)"), ("recovery_s", "recovery (s)"),
]
LATENCIES = [("e2e_latency_ms", "end-to-end"), ("api_latency_ms", "API")]

_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}th{background:#f4f4f4}td:first-child{text-align:left}
.bad{color:#b00020;font-weight:600}.na{color:#888}"""


def _cell(run: dict[str, Any], key: str) -> str:
    if not run.get("applicable", True):
        return '<td class="na">n/a</td>'
    value = run.get(key)
    bad = key in ("lost", "silent_loss", "duplicated", "unexpected", "refused_ran") and bool(value)
    text = "—" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
    return f'<td class="bad">{text}</td>' if bad else f"<td>{text}</td>"


def render_scenario(doc: dict[str, Any]) -> str:
    """A page with one scenario's native-vs-Hatchet table."""
    runs = doc["runs"]
    e = html.escape
    head = "".join(f"<th>{e(r['system'])}</th>" for r in runs)
    body = "".join(f"<tr><td>{e(label)}</td>{''.join(_cell(r, key) for r in runs)}</tr>" for key, label in ROWS)
    for key, label in LATENCIES:
        for pct in ("p50", "p95", "p99", "max"):
            cells = "".join(
                _cell({"applicable": r.get("applicable", True), "v": (r.get(key) or {}).get(pct)}, "v") for r in runs
            )
            body += f"<tr><td>{e(label)} latency {pct} (ms)</td>{cells}</tr>"
    notes = "".join(f"<li>{e(r['system'])}: not applicable ({e(r.get('reason', ''))})</li>"
                    for r in runs if not r.get("applicable", True))
    faults = "".join(
        f"<li>{e(r['system'])}: {e(f['action'])} {e(f['target'])} at {f['at_s']}s, healed at {f['until_s']}s</li>"
        for r in runs for f in r.get("faults", [])
    )
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{e(doc['scenario'])}</title>"
            f"<style>{_CSS}</style></head><body><h1>{e(doc['scenario'])}</h1>"
            f"<p><b>Fault:</b> {e(doc.get('fault', ''))}<br><b>Claim:</b> {e(doc.get('claim', ''))}<br>"
            f"<b>Seed:</b> {doc['seed']} · <b>started</b> {e(doc['started_at'])} · {doc['duration_s']:.0f}s</p>"
            f"<table><tr><th></th>{head}</tr>{body}</table><ul>{notes}{faults}</ul>"
            f"<p><a href='results.json'>results.json</a></p></body></html>")


def write_scenario(out_dir: Path, doc: dict[str, Any]) -> Path:
    """Write out_dir/index.html for one scenario's results."""
    path = out_dir / "index.html"
    path.write_text(render_scenario(doc))
    return path


def write_run_index(root: Path, docs: list[dict[str, Any]]) -> Path:
    """Write root/index.html: every scenario of the run with each system's headline counts."""
    e = html.escape
    rows = ""
    for doc in docs:
        for run in doc["runs"]:
            if not run.get("applicable", True):
                cells = f"<td class='na' colspan='5'>not applicable: {e(run.get('reason', ''))}</td>"
            else:
                keys = ("accepted", "completed", "lost", "duplicated", "throughput_tps")
                cells = "".join(_cell(run, k) for k in keys)
            rows += (f"<tr><td><a href='{e(doc['scenario'])}/index.html'>{e(doc['scenario'])}</a></td>"
                     f"<td>{e(run['system'])}</td>{cells}</tr>")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>run {e(root.name)}</title>"
            f"<style>{_CSS}</style></head><body><h1>Run {e(root.name)}</h1><table><tr><th>scenario</th>"
            f"<th>system</th><th>accepted</th><th>completed</th><th>lost</th><th>duplicated</th>"
            f"<th>throughput (tasks/s)</th></tr>{rows}</table></body></html>")
    path = root / "index.html"
    path.write_text(page)
    return path


def text_table(doc: dict[str, Any]) -> str:
    """The native-vs-Hatchet comparison as a plain-text table for terminals and test output."""
    runs = doc["runs"]
    width = 22
    lines = [f"{doc['scenario']} (seed {doc['seed']})".ljust(width) + "".join(r["system"].rjust(14) for r in runs)]

    def fmt(run: dict[str, Any], value: Any) -> str:
        if not run.get("applicable", True):
            return "n/a".rjust(14)
        return ("-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)).rjust(14)

    for key, label in ROWS:
        lines.append(label.ljust(width) + "".join(fmt(r, r.get(key)) for r in runs))
    for key, label in LATENCIES:
        for pct in ("p50", "p99"):
            lines.append(f"{label} {pct} ms".ljust(width) + "".join(fmt(r, (r.get(key) or {}).get(pct)) for r in runs))
    return "\n".join(lines)
