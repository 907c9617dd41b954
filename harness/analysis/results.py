"""results.json: what a scenario run measured, with the manifest that makes it reproducible.

The schema is shared/DESIGN.md's; extra fields are additions, never renames. Reports are
rendered from results.json and the ledgers alone, so they can be rebuilt later.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.model.params import Params
from harness.model.scenario import Scenario

RESULTS_FILE = "results.json"
"""Name of the results file in a scenario's output directory."""
REDACTED = "[REDACTED]"
"""What a secret is replaced with in logs."""


def build(scenario: Scenario, params: Params, runs: list[dict[str, Any]], started_at: float,
          duration_s: float, manifest: dict[str, Any]) -> dict[str, Any]:
    """The whole results.json document of one scenario run (``manifest``: :func:`harness.runtime.manifest.manifest`)."""
    return {
        "scenario": scenario.name,
        "fault": scenario.fault,
        "claim": scenario.claim,
        "expect": dict(scenario.expect),
        "seed": params.seed,
        "started_at": datetime.fromtimestamp(started_at, UTC).isoformat(),
        "duration_s": round(duration_s, 3),
        "manifest": {**manifest,
                     # Links through Toxiproxy, per system: only those a fault of the scenario may target.
                     "proxied_links": {r["system"]: r["links"]["proxied"] for r in runs if "links" in r}},
        "runs": runs,
    }


def write(out_dir: Path, results: dict[str, Any]) -> Path:
    """Write results.json atomically (a reader never sees half a file)."""
    path = out_dir / RESULTS_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def load(path: Path) -> dict[str, Any]:
    """Read a results.json (a directory holding one is accepted too)."""
    path = path / RESULTS_FILE if path.is_dir() else path
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def redact(run_dir: Path, secrets: list[str]) -> int:
    """Replace every secret in the text files under run_dir; returns how many files changed."""
    secrets = [s for s in secrets if s]
    if not secrets:
        return 0
    changed = 0
    for path in run_dir.rglob("*"):
        if not path.is_file() or path.suffix in (".db", ".db-wal", ".db-shm", ".png"):
            continue
        data = path.read_bytes()
        new = data
        for secret in secrets:
            new = new.replace(secret.encode(), REDACTED.encode())
        if new != data:
            path.write_bytes(new)
            changed += 1
    return changed
