"""What a page shows, read from results.json and the ledgers by :mod:`harness.report.build` and handed to
the page renderers (no file or ledger access after this)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.report.calls import CallSummary
from harness.report.series import RunSeries
from harness.report.stories import Story

Link = tuple[str, str]
"""(label, href) of a link."""


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
    colors: dict[str, str] = field(default_factory=dict)
    """Each system's colour (those of the whole run when it was rebuilt as one); missing ones from the page's."""
    findings: list[Link] = field(default_factory=list)
    """Known findings this scenario shows: (title and status, href)."""


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
