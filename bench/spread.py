"""How much the harness's numbers spread: the baseline scenario repeated, per system, on one session.

The coefficient of variation (standard deviation over mean) of throughput and latency over the
repeats says how far apart two runs of the same scenario may land on this machine by noise alone.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from harness.front.catalog import discover
from harness.model.spec import find_systems
from harness.session import Session


def _quiet(_: str) -> None:
    pass


def baseline_repeats(systems: tuple[str, ...], repeats: int = 5) -> dict[str, list[dict[str, Any]]]:
    """Per system, the results.json entry of each baseline repeat (default parameters, seed 1)."""
    scenario, specs = discover()["baseline"], find_systems()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in systems}
    with tempfile.TemporaryDirectory(prefix="bench-spread-") as tmp, Session(root=Path(tmp), progress=_quiet) as s:
        for i in range(repeats):
            doc = s.run(scenario, [specs[n] for n in systems], scenario.params(), out_dir=Path(tmp) / f"baseline-{i}")
            for entry in doc["runs"]:
                runs[entry["system"]].append(entry)
    return runs
