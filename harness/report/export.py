"""History export: a system's whole ledger as JSON lines, readable without SQLite.

One record per line, in time order: client operations (``op``), effect-log records
(``event``), faults (``fault``) and samples (``sample``). Each carries its absolute time ``t``
(epoch seconds) and ``t_s``, seconds since the start of the measured load, the report's x axis.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from harness.analysis.results import REDACTED
from harness.ledger import Ledger

HISTORY_FILE = "history.jsonl"
"""Name of the export in a system's run directory."""
_JWT = re.compile(r"eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}")


def history_records(ledger: Ledger, t0: float) -> list[dict[str, Any]]:
    """Every record of the ledger as plain dicts, in time order."""
    records: list[dict[str, Any]] = []
    records += [{"record": "op", "t": o.invoke_t, **o._asdict()} for o in ledger.ops()]
    records += [{"record": "event", **e._asdict()} for e in ledger.events()]
    records += [{"record": "fault", "t": f.t_start, "t_start": f.t_start, "t_end": f.t_end, "action": f.action,
                 "target": f.target, "detail": f.detail} for f in ledger.faults()]
    records += [{"record": "sample", **s._asdict()} for s in ledger.samples()]
    records.sort(key=lambda r: r["t"])
    for r in records:
        r["t_s"] = round(r["t"] - t0, 6)
    return records


def scrub_tokens(text: str) -> str:
    """Replace anything shaped like a JWT (Hatchet's tokens are JWTs) with the redaction mark.

    The export is written after the run's logs were redacted, and a rebuild later knows no
    secrets at all, so it scrubs by shape.
    """
    return _JWT.sub(REDACTED, text)


def write_history(ledger: Ledger, t0: float, path: Path) -> Path:
    """Write the export atomically; returns its path."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w") as out:
        for record in history_records(ledger, t0):
            out.write(scrub_tokens(json.dumps(record, separators=(",", ":"))) + "\n")
    tmp.replace(path)
    return path
