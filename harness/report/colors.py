"""One colour per system, the same in every chart and table of every page.

A system's colour is its own: ``color`` in its system.toml, carried in results.json as
``runs[].color``. A system without one gets a deterministic pick keyed by its name from a
colour-blind safe palette (Okabe and Ito's colours first, then Paul Tol's "muted" set), the
reference system a fixed one (orange). The systems shown together (a run, the list of runs) are coloured
together, so no two of them share a colour.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

REFERENCE = "native"
"""The system every other is compared with (see :func:`harness.report.metrics.ordered_runs`)."""
REFERENCE_COLOR = "#e69f00"
"""Its colour when results.json gives none: Okabe-Ito orange, as its system.toml says."""
OKABE_ITO = ("#0072b2", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000", "#f0e442", "#e69f00")
"""Okabe and Ito's colour-blind safe set: the first four are where names land; vermillion (next to the reference's
orange), black (heavy beside the others) and yellow (faint on white) come after them."""
FIRST = 4
"""How many of them a name's slot falls among."""
TOL_MUTED = ("#332288", "#999933", "#882255", "#44aa99", "#ddcc77", "#cc6677", "#aa4499")
"""Paul Tol's "muted" colours least like Okabe-Ito's, for runs with more systems than those."""
PALETTE = (*OKABE_ITO[:7], *TOL_MUTED)
"""Every colour a system without one of its own may get, in order of preference after its slot."""
_HEX = re.compile(r"#[0-9a-fA-F]{6}")


def _valid(color: Any) -> str:
    return color.lower() if isinstance(color, str) and _HEX.fullmatch(color) else ""


def _preference(name: str) -> list[str]:
    # crc32, not hash(): Python salts str hashes per process, and colours must not change between pages.
    start = zlib.crc32(name.encode()) % FIRST
    return [*PALETTE[start:FIRST], *PALETTE[:start], *PALETTE[FIRST:]]


def _extra(name: str, used: set[str]) -> str:
    """A colour beyond the palette (more systems than colours): derived from the name, distinct from used."""
    salt = 0
    while True:
        color = f"#{zlib.crc32(f'{name}:{salt}'.encode()) & 0xFFFFFF:06x}"
        if color not in used:
            return color
        salt += 1


def assign(systems: Iterable[tuple[str, Any]]) -> dict[str, str]:
    """Colours of systems shown together, from (name, colour given in results.json or "") pairs.

    Given colours win (the first system to claim one keeps it); the reference system gets its
    fixed colour; every other takes its name's palette slot, or the next free one, in name order,
    so a system keeps its colour on every page where no other system competes for its slot.
    """
    given: dict[str, str] = {}
    for name, color in systems:
        if name not in given or not given[name]:
            given[name] = _valid(color)
    out: dict[str, str] = {}
    used: set[str] = set()
    for name, color in given.items():
        if color and color not in used:
            out[name] = color
            used.add(color)
    if REFERENCE in given and REFERENCE not in out and REFERENCE_COLOR not in used:
        out[REFERENCE] = REFERENCE_COLOR
        used.add(REFERENCE_COLOR)
    for name in sorted(n for n in given if n not in out):
        color = next((c for c in _preference(name) if c not in used), None) or _extra(name, used)
        out[name] = color
        used.add(color)
    return out


def of_docs(docs: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Colours of every system in these results.json documents, assigned together."""
    return assign((r["system"], r.get("color", "")) for d in docs for r in d.get("runs", []))
