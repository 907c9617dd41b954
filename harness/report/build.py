"""Writing report pages: read results.json and the ledgers, write index.html files and exports.

Layout (see reports/README.md): a run directory holds ``logs/`` (shared servers) and one
directory per scenario, or is itself the scenario's directory (``--out`` with one scenario). A
scenario directory holds results.json and per system ``ledger.db`` and ``logs/``. A reports
directory holds run directories. Nothing here runs a system: every page can be rebuilt later.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.analysis import results
from harness.ledger import open_ledger, sqlite_url
from harness.model.paths import PROJECT_ROOT
from harness.report import colors, findings
from harness.report.calls import CLIENT, SERVER, summarize
from harness.report.export import HISTORY_FILE, write_history
from harness.report.metrics import applicable, ordered_runs
from harness.report.overview import render_reports_index, render_run_index
from harness.report.scenario import render_scenario
from harness.report.series import read_series
from harness.report.stories import stories
from harness.report.views import Link, RunEntry, ScenarioView, SystemView

REPORTS_DIR = Path(os.environ.get("HARNESS_REPORTS_DIR", PROJECT_ROOT / "reports"))
"""Home of run directories (``HARNESS_REPORTS_DIR`` overrides ``reports/``)."""
INDEX = "index.html"
"""Name of every page."""
LOCUST_CSV = ("*_stats.csv", "*_stats_history.csv", "*_failures.csv", "*_exceptions.csv")
"""Locust's CSV reports, wherever the load driver wrote them."""


class ReportInputError(ValueError):
    """A directory holds nothing to report on (no results.json), or a results.json is unreadable."""


def _write(path: Path, text: str) -> Path:
    # Atomic, and safe when two sessions refresh the same list of runs at once.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def _rel(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()


def _run_dir_of(scenario_dir: Path) -> Path:
    """The run a scenario directory belongs to: itself when it holds the shared servers' ``logs/``
    (``--out`` with one scenario), else its parent when that does."""
    if (scenario_dir / "logs").is_dir() or not (scenario_dir.parent / "logs").is_dir():
        return scenario_dir
    return scenario_dir.parent


def _shared_logs(scenario_dir: Path) -> Path | None:
    """The shared servers' logs of the run a scenario directory belongs to (None if there are none)."""
    logs = _run_dir_of(scenario_dir) / "logs"
    return logs if logs.is_dir() else None


def _log_links(logs: Path | None, base: Path) -> list[Link]:
    """Links from a page in base to the files of a logs directory in base or its parent."""
    if logs is None:
        return []
    prefix = "" if logs.parent == base else "../"
    return [(p.name, f"{prefix}logs/{p.name}") for p in sorted(logs.iterdir()) if p.is_file()]


def _locust_files(scenario_dir: Path) -> list[Link]:
    """Locust's reports: anything in a ``locust*`` directory or named ``locust*``, and its CSV files."""
    found = []
    for p in sorted(scenario_dir.rglob("*")):
        parts = p.relative_to(scenario_dir).parts
        if not p.is_file() or "logs" in parts:
            continue
        if any(part.lower().startswith("locust") for part in parts) or any(p.match(g) for g in LOCUST_CSV):
            found.append((_rel(p, scenario_dir), _rel(p, scenario_dir)))
    return found


def _system_view(scenario_dir: Path, run: dict[str, Any]) -> tuple[SystemView, list[Link]]:
    """A system's charts and stories from its ledger, and links to its raw data (exporting its history)."""
    system = run["system"]
    if not applicable(run):
        return SystemView(run, note="not applicable"), []
    path = scenario_dir / run.get("ledger", f"{system}/ledger.db")
    if not path.exists():
        note = f"no ledger at {_rel(path, scenario_dir)}: charts and drill-down unavailable"
        return SystemView(run, note=note), []
    ledger = open_ledger(sqlite_url(path))
    try:
        series = read_series(ledger, system)
        told = stories(ledger, series.t0, run.get("lost_ids") or [], run.get("duplicated_ids") or [],
                       run.get("faults") or [], series.end_s)
        calls = summarize(ledger.spans(CLIENT), ledger.spans(SERVER))
        history = write_history(ledger, series.t0, path.parent / HISTORY_FILE)
    finally:
        ledger.close()
    logs = path.parent / "logs"
    links = [("history (JSON lines: ops, events, faults, samples)", _rel(history, scenario_dir)),
             ("ledger (SQLite)", _rel(path, scenario_dir)),
             *[(f"log: {p.name}", _rel(p, scenario_dir)) for p in sorted(logs.glob("*")) if p.is_file()]]
    return SystemView(run, series=series, stories=told, calls=calls), links


def _listed(run_dir: Path) -> bool:
    """Whether a run directory sits in a reports directory whose index.html lists it."""
    parent = run_dir.resolve().parent
    return parent == REPORTS_DIR.resolve() or (parent / INDEX).exists()


def _nav(scenario_dir: Path) -> list[Link]:
    run_dir = _run_dir_of(scenario_dir)
    nav = [] if run_dir == scenario_dir else [(f"run {run_dir.name}", f"../{INDEX}")]
    up = "../" * (1 + len(nav))
    return [("all runs", f"{up}{INDEX}"), *nav] if _listed(run_dir) else nav


def _findings_json(run_dir: Path) -> Path | None:
    return findings.locate(run_dir, REPORTS_DIR)


def write_scenario(out_dir: Path, doc: dict[str, Any], hues: dict[str, str] | None = None) -> Path:
    """Write out_dir/index.html for one scenario's results, and each system's history export.

    hues: the colours of the whole run's systems, so a system has one colour on every page of it
    (default: those of this scenario's systems).
    """
    files: list[tuple[str, list[Link]]] = [("Results", [("results.json", results.RESULTS_FILE)])]
    systems = []
    for run in ordered_runs(doc):
        system, links = _system_view(out_dir, run)
        systems.append(system)
        files.append((f"{run['system']}: history, ledger and logs", links))
    files.append(("Locust's reports", _locust_files(out_dir)))
    shared = _shared_logs(out_dir)
    files.append(("Shared servers' logs", _log_links(shared, out_dir)))
    known = findings.links(_findings_json(_run_dir_of(out_dir)), doc["scenario"], out_dir)
    view = ScenarioView(doc, systems, files, _nav(out_dir), hues or colors.of_docs([doc]), known)
    return _write(out_dir / INDEX, render_scenario(view))


def write_run_index(root: Path, docs: list[dict[str, Any]], reports_dir: Path | None = None) -> Path:
    """Write root/index.html listing the run's scenarios; with reports_dir, refresh its list of runs too."""
    entries = [(f"{d['scenario']}/{INDEX}", d) for d in docs]
    nav = [("all runs", f"../{INDEX}")] if _listed(root) else []
    known = findings.by_scenario(_findings_json(root), [d["scenario"] for d in docs], root)
    page = render_run_index(root.name, entries, _log_links(_shared_logs(root), root), nav, findings=known)
    path = _write(root / INDEX, page)
    if reports_dir is not None:
        write_reports_index(reports_dir)
    return path


def _is_results(doc: Any) -> bool:
    """Whether doc has the shape every page relies on: a scenario name, and runs each naming its system."""
    if not isinstance(doc, dict) or not isinstance(doc.get("scenario"), str):
        return False
    runs = doc.get("runs")
    return isinstance(runs, list) and all(isinstance(r, dict) and isinstance(r.get("system"), str) for r in runs)


def _load(scenario_dir: Path) -> dict[str, Any]:
    path = scenario_dir / results.RESULTS_FILE
    try:
        doc = results.load(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportInputError(f"{path}: unreadable ({exc})") from None
    if not _is_results(doc):
        raise ReportInputError(f"{path}: not a results.json (no scenario name, or runs without a system)")
    return doc


def scenario_dirs(run_dir: Path) -> list[Path]:
    """The scenario directories of a run: itself if it holds results.json, else its children that do."""
    if (run_dir / results.RESULTS_FILE).is_file():
        return [run_dir]
    return sorted(d for d in run_dir.iterdir() if d.is_dir() and (d / results.RESULTS_FILE).is_file())


def run_dirs(reports_dir: Path) -> list[Path]:
    """The run directories in a reports directory (``latest`` and other links left out)."""
    return sorted(d for d in reports_dir.iterdir() if d.is_dir() and not d.is_symlink() and scenario_dirs(d))


def write_reports_index(reports_dir: Path) -> Path:
    """Write reports_dir/index.html: every run, newest first, with trends per scenario."""
    entries = []
    for run in run_dirs(reports_dir):
        dirs = scenario_dirs(run)
        href = f"{run.name}/{INDEX}"
        entries.append(RunEntry(run.name, href, [_load(d) for d in dirs]))
    return _write(reports_dir / INDEX, render_reports_index(entries))


def write_findings_pages(directory: Path) -> list[Path]:
    """Rewrite the findings page beside each findings.json of directory and of its ``findings/*/`` (links like
    ``latest`` left out); an unreadable findings.json is skipped."""
    found = [directory / findings.FINDINGS_FILE]
    top = directory / "findings"
    if top.is_dir():
        found += [d / findings.FINDINGS_FILE for d in sorted(top.iterdir()) if d.is_dir() and not d.is_symlink()]
    written = []
    for path in found:
        doc = findings.load(path) if path.is_file() else None
        if doc is not None:
            written.append(findings.write_findings_page(path.parent, doc))
    return written


def _rebuild_run(run_dir: Path, reports_dir: Path | None) -> list[Path]:
    dirs = scenario_dirs(run_dir)
    docs = [_load(d) for d in dirs]
    hues = colors.of_docs(docs)  # one colour per system across the run's pages
    written = write_findings_pages(run_dir) if dirs != [run_dir] else []
    written += [write_scenario(d, doc, hues) for d, doc in zip(dirs, docs, strict=True)]
    if dirs != [run_dir]:
        written.append(write_run_index(run_dir, docs, reports_dir))
    elif reports_dir is not None:
        written.append(write_reports_index(reports_dir))
    return written


def classify_dir(path: Path) -> str:
    """``scenario``, ``run`` or ``reports``: what a directory given to ``harness report`` holds."""
    if not path.is_dir():
        raise ReportInputError(f"{path}: no such directory")
    if (path / results.RESULTS_FILE).is_file():
        return "scenario"
    if scenario_dirs(path):
        return "run"
    if run_dirs(path):
        return "reports"
    raise ReportInputError(f"{path}: no results.json in it, its subdirectories or theirs")


def rebuild(paths: Iterable[Path]) -> list[Path]:
    """Rebuild every page under each path (a scenario, run or reports directory); returns the pages written.

    Every path is checked before anything is written. A run in REPORTS_DIR also refreshes its
    list of runs.
    """
    kinds = [(p, classify_dir(p)) for p in paths]
    for path, kind in kinds:
        for run in run_dirs(path) if kind == "reports" else [path]:
            for d in scenario_dirs(run):
                _load(d)
    written: list[Path] = []
    for path, kind in kinds:
        if kind == "reports":
            written += write_findings_pages(path)
            for run in run_dirs(path):
                written += _rebuild_run(run, None)
            written.append(write_reports_index(path))
            continue
        in_reports = path.resolve().parent == REPORTS_DIR.resolve()
        written += _rebuild_run(path, REPORTS_DIR if in_reports else None)
    return written
