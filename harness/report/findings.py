"""The findings page: what ``harness findings check`` found when it re-ran the catalogue's reproductions
(``findings.json``), and the links from scenario pages to the findings their scenario shows.

A scenario page links to a finding whose ``scenario`` is its scenario when a findings.json is found,
nearest first: in the scenario's run directory, then ``findings/latest/`` of the reports directory
holding the run, then ``findings/latest/`` of ``reports/`` (``HARNESS_REPORTS_DIR``). Links go to the
findings page beside that findings.json (``findings.html``, anchored at the finding), relative, so
they work from disk.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.report.render import dom_id, page, web_url
from harness.report.views import Link

FINDINGS_FILE = "findings.json"
"""What ``harness findings check`` writes."""
FINDINGS_PAGE = "findings.html"
"""The page written beside it (not index.html: a run directory's index.html is the run's page)."""
LATEST = Path("findings") / "latest"
"""Where in a reports directory the newest check lives."""
STATUSES = ("reproduced", "not reproduced", "could not run")
"""A finding's status after a check."""


@dataclass(frozen=True)
class Finding:
    """One entry of findings.json, as the page shows it (absent fields empty)."""

    name: str
    """Its catalogue name (the page's anchor)."""
    title: str
    """One line."""
    status: str
    """``reproduced``, ``not reproduced`` or ``could not run``."""
    claim: str = ""
    """What the finding says a system does."""
    mechanism: str = ""
    """Why it does it."""
    systems: str = ""
    """The systems and versions it was checked on, in one line."""
    scenario: str = ""
    """The scenario that shows it."""
    seed: str = ""
    """The seed the reproduction runs with."""
    rate: str = ""
    """How often it reproduced (``2 of 8``)."""
    duration_s: float | None = None
    """How long the check took."""
    detail: str = ""
    """The reproduction's own output or the reason it could not run."""
    sources: list[Link] = field(default_factory=list)
    """(text, href or "") of its source locations: hrefs only for http(s) URLs."""
    upstream: list[Link] = field(default_factory=list)
    """(text, href or "") of its upstream references."""

    @property
    def anchor(self) -> str:
        """Its element id."""
        return f"finding-{dom_id(self.name)}"

    @property
    def css(self) -> str:
        """Its status as a CSS class."""
        return dom_id(self.status) if self.status in STATUSES else "unknown"


def _refs(items: Any) -> list[Link]:
    values = items if isinstance(items, list) else [] if items is None else [items]
    return [(str(v), web_url(v)) for v in values]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _finding(entry: Mapping[str, Any]) -> Finding:
    name = _text(entry.get("name")) or "?"
    systems = entry.get("systems")
    versions = ", ".join(f"{k} {v}" for k, v in systems.items()) if isinstance(systems, Mapping) else _text(systems)
    rate = _text(entry.get("rate")) or (f"{entry['reproduced']} of {entry['tries']}"
                                         if "reproduced" in entry and "tries" in entry else "")
    duration = entry.get("duration_s")
    return Finding(name, _text(entry.get("title")) or name, _text(entry.get("status")) or "unknown",
                   _text(entry.get("claim")), _text(entry.get("mechanism")), versions, _text(entry.get("scenario")),
                   _text(entry.get("seed")), rate, float(duration) if isinstance(duration, int | float) else None,
                   _text(entry.get("detail")), _refs(entry.get("sources")), _refs(entry.get("upstream")))


def findings(doc: Mapping[str, Any]) -> list[Finding]:
    """The entries of a findings.json document (anything that is not an entry is skipped)."""
    return [_finding(e) for e in doc.get("findings") or [] if isinstance(e, Mapping)]


def render_findings(doc: Mapping[str, Any]) -> str:
    """The findings page of a findings.json document."""
    items = findings(doc)
    counts = {s: sum(f.status == s for f in items) for s in STATUSES}
    return page("findings.html.j2", "Findings", checked_at=str(doc.get("checked_at") or "?"), findings=items,
                counts=counts)


def write_findings_page(out_dir: Path, doc: dict[str, Any]) -> Path:
    """Write out_dir/findings.html for a findings.json document; returns its path."""
    path = out_dir / FINDINGS_PAGE
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(render_findings(doc), encoding="utf-8")
    tmp.replace(path)
    return path


def load(path: Path) -> dict[str, Any] | None:
    """A findings.json document (None when missing, unreadable or not one: a page never fails on it)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("findings"), list) else None


def locate(run_dir: Path, reports_dir: Path) -> Path | None:
    """The findings.json a run's pages link to, nearest first (see the module's docstring)."""
    candidates = [run_dir / FINDINGS_FILE, run_dir.parent / LATEST / FINDINGS_FILE,
                  reports_dir / LATEST / FINDINGS_FILE]
    return next((p for p in candidates if p.is_file()), None)


def _links(doc: Mapping[str, Any], path: Path, scenario: str, page_dir: Path) -> list[Link]:
    target = path.parent / FINDINGS_PAGE
    href = Path(os.path.relpath(target.absolute(), page_dir.absolute())).as_posix()
    out = []
    for f in findings(doc):
        if f.scenario == scenario:
            out.append((f"{f.title} ({f.status}{', ' + f.rate if f.rate else ''})", f"{href}#{f.anchor}"))
    return out


def links(path: Path | None, scenario: str, page_dir: Path) -> list[Link]:
    """(title and status, href relative to page_dir) of the findings in path whose scenario is scenario."""
    return by_scenario(path, [scenario], page_dir).get(scenario, [])


def by_scenario(path: Path | None, scenarios: Sequence[str], page_dir: Path) -> dict[str, list[Link]]:
    """links() for each scenario, those with none left out."""
    doc = load(path) if path is not None else None
    if doc is None or path is None:
        return {}
    found = {s: _links(doc, path, s, page_dir) for s in scenarios}
    return {s: v for s, v in found.items() if v}
