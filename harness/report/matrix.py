"""The run's overview: one row per scenario, one column per system, each cell what the system lost of
what it accepted, coloured by what the scenario's claim expects of it.

States of a cell (its CSS class and the word its row's verdict uses):

========== ============================================ ==========================
state      when                                          shown
========== ============================================ ==========================
held       claim: loses nothing; lost 0                  green
broken     claim: loses nothing; lost some               red
claimed    claim: loses some; lost some                  neutral (grey-blue)
unshown    claim: loses some; lost 0                     amber (the claim not shown)
dup        lost 0 but duplicated (no claim, or keeps)    amber hint
lost       no claim; lost some                           red text
clean      no claim; lost 0, no duplicate                plain
bug        identities broken (a harness bug)             red, struck
na         not applicable, or not run in the scenario    grey "n/a"
========== ============================================ ==========================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.report.lineup import columns, expectation
from harness.report.metrics import applicable, fmt, share

WORDS = {"held": "held", "broken": "broken", "claimed": "lost as claimed", "unshown": "claimed loss not shown",
         "lost": "lost", "clean": "lost none", "bug": "harness bug"}
"""What a row's verdict says of a system in each state (``dup`` depends on the claim)."""


@dataclass(frozen=True)
class Cell:
    """One system in one scenario."""

    system: str
    """Its name (the column)."""
    state: str
    """See the module's table."""
    lost: int | None = None
    """Accepted tasks never run (None: n/a)."""
    accepted: int | None = None
    """Tasks the system accepted."""
    duplicated: int | None = None
    """Tasks run more than once."""
    retried: int | None = None
    """Tasks with more than one attempt."""
    title: str = ""
    """Tooltip: why n/a, the claim's expectation, the counts in full, a degraded harness."""
    degraded: bool = False
    """The harness found itself the bottleneck in this run: its numbers may measure the harness."""
    expect: str = ""
    """What the claim expects of the system: ``keeps``, ``loses`` or ""."""

    @property
    def word(self) -> str:
        """The verdict's word for this system ("" when n/a)."""
        if self.state == "dup":
            return "held, with duplicates" if self.expect == "keeps" else "duplicates"
        return WORDS.get(self.state, "")


@dataclass(frozen=True)
class Row:
    """One scenario."""

    scenario: str
    """Its name."""
    href: str
    """Its page."""
    fault: str
    """What was done to the systems."""
    claim: str
    """What the scenario's claim says."""
    cells: list[Cell]
    """One per column, in column order."""
    findings: list[tuple[str, str]] = field(default_factory=list)
    """(title, href) of known findings this scenario shows."""

    @property
    def verdict(self) -> str:
        """The row in one line: each system's word (held, broken, ...)."""
        words = [f"{c.system} {c.word}" for c in self.cells if c.word]
        return ", ".join(words) + "." if words else "nothing applicable."

    @property
    def level(self) -> str:
        """The row's worst state: ``bug``, ``broken``, ``lost``, ``unshown``, ``dup`` or ``ok``."""
        states = {c.state for c in self.cells}
        return next((s for s in ("bug", "broken", "lost", "unshown", "dup") if s in states), "ok")


def _expects(value: str) -> str:
    return {"keeps": "the claim: loses nothing accepted", "loses": "the claim: loses some accepted tasks"}.get(
        value, "no claim on losses")


def cell(doc: Mapping[str, Any], run: Mapping[str, Any] | None, system: str) -> Cell:
    """A system's cell in a scenario (run None: the system was not in it)."""
    if run is None:
        return Cell(system, "na", title=f"{system} did not run in this scenario")
    if not applicable(run):
        return Cell(system, "na", title=f"not applicable: {run.get('reason') or 'no reason given'}")
    expect = expectation(doc, run)
    lost, dup = int(run.get("lost") or 0), int(run.get("duplicated") or 0)
    accepted = int(run.get("accepted") or 0)
    broken = run.get("identities_broken") or []
    if broken:
        state = "bug"
    elif expect == "keeps":
        state = "broken" if lost else "dup" if dup else "held"
    elif expect == "loses":
        state = "claimed" if lost else "unshown"
    else:
        state = "lost" if lost else "dup" if dup else "clean"
    lines = [f"{system}: lost {fmt(lost)} of {fmt(accepted)} accepted"
             + (f" ({share(lost, accepted)})" if lost else ""),
             f"duplicated {fmt(dup)}, retried {fmt(run.get('retried') or 0)}, refused {fmt(run.get('refused') or 0)}, "
             f"unanswered {fmt(run.get('indeterminate') or 0)}", _expects(expect)]
    if broken:
        lines.append("harness bug, identities broken: " + "; ".join(map(str, broken)))
    degraded = bool(run.get("harness_degraded"))
    if degraded:
        lines.append(f"harness degraded: {run.get('harness_degraded_reason') or ''}")
    return Cell(system, state, lost, accepted, dup, int(run.get("retried") or 0), "\n".join(lines), degraded, expect)


def row(doc: Mapping[str, Any], href: str, systems: Sequence[str],
        findings: Sequence[tuple[str, str]] = ()) -> Row:
    """A scenario's row over the given columns."""
    by_name = {r["system"]: r for r in doc.get("runs", [])}
    return Row(str(doc["scenario"]), href, str(doc.get("fault", "")), str(doc.get("claim", "")),
               [cell(doc, by_name.get(s), s) for s in systems], list(findings))


def matrix(entries: Sequence[tuple[str, Mapping[str, Any]]],
           findings: Mapping[str, Sequence[tuple[str, str]]] | None = None) -> tuple[list[str], list[Row]]:
    """The columns and rows of (href, results.json) entries, rows in entry order."""
    systems = columns([doc for _, doc in entries])
    found = findings or {}
    return systems, [row(doc, href, systems, found.get(str(doc["scenario"]), ())) for href, doc in entries]
