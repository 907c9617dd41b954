"""``harness findings``: the findings catalogue (``findings/``), listed or re-checked."""

from __future__ import annotations

from pathlib import Path

from harness.front.options import UsageError


def command(action: str, names: list[str], out: Path | None) -> int:
    """List the catalogue, or re-run the reproductions of the named findings (all by default)."""
    raise UsageError("the findings catalogue is not built yet")
