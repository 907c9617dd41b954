"""Which systems a page shows, in which columns, and what each scenario's claim expects of them.

Every table across scenarios (the run's matrix, the trends across runs) puts a system in the same
column on every row: the reference system first, then each base system followed by its variants,
in the order they first appear in results.json (the order of a scenario that ran them all).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from harness.report.colors import REFERENCE

Expectation = Literal["keeps", "loses", ""]
"""What a scenario's claim says of a system: it loses nothing accepted, it loses some, or nothing."""


def base_of(run: Mapping[str, Any], names: Iterable[str] = ()) -> str:
    """The base system of a run's system (itself for a base system).

    ``runs[].base`` says it; results.json written before it existed name variants ``<base>-<variant>``,
    so a name whose prefix is another system in names counts as that system's variant.
    """
    name = str(run["system"])
    if "base" in run:
        return str(run["base"] or name)
    known = set(names)
    head, sep, _ = name.partition("-")
    return head if sep and head in known else name


def expectation(doc: Mapping[str, Any], run: Mapping[str, Any]) -> Expectation:
    """What the scenario's claim (``expect`` in results.json) says of a run's system; a variant without an
    entry of its own takes its base system's."""
    expect = doc.get("expect") or {}
    names = [str(r["system"]) for r in doc.get("runs", [])]
    value = expect.get(run["system"]) or expect.get(base_of(run, names)) or ""
    return "keeps" if value == "keeps" else "loses" if value == "loses" else ""


def columns(docs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every system of the documents, in column order: the reference, then each base system followed by
    its variants, bases and variants in order of first appearance (documents in order, runs in results.json
    order)."""
    seen: dict[str, int] = {}
    runs: dict[str, Mapping[str, Any]] = {}
    for doc in docs:
        for run in doc.get("runs", []):
            name = str(run["system"])
            seen.setdefault(name, len(seen))
            runs.setdefault(name, run)
    group = {name: base_of(run, seen) for name, run in runs.items()}
    first = {g: min(seen[n] for n, b in group.items() if b == g) for g in set(group.values())}
    return sorted(seen, key=lambda n: (group[n] != REFERENCE, first[group[n]], n != group[n], seen[n]))
