"""results.json: what a scenario run measured, with the manifest that makes it reproducible.

The schema is shared/DESIGN.md's; extra fields are additions, never renames. Reports are
rendered from results.json and the ledgers alone, so they can be rebuilt later.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from apps.common.job import CLIENT_SETTINGS
from harness import tools
from harness.scenario import Params, Scenario
from harness.spec import PROJECT_ROOT

RESULTS_FILE = "results.json"
"""Name of the results file in a scenario's output directory."""
REDACTED = "[REDACTED]"
"""What a secret is replaced with in logs."""
ENV_BACKEND = "HARNESS_BACKEND"
"""Set by the session: what ran the servers (``process`` or ``docker``), for the manifest."""


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_sha() -> str:
    """Commit of the checkout (with ``-dirty`` when it has uncommitted changes)."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def manifest(params: Params, ledger: dict[str, Any] | None = None) -> dict[str, Any]:
    """Versions, machine and parameters of a run, and where its ledger lived."""
    return {
        "python": platform.python_version(),
        "hatchet_sdk": _version("hatchet-sdk"),
        "hatchet_engine": tools.HATCHET_VERSION,
        "fastapi": _version("fastapi"),
        "locust": _version("locust"),
        "toxiproxy": tools.TOXIPROXY_VERSION,
        "backend": os.environ.get(ENV_BACKEND, "process"),
        "git_sha": git_sha(),
        "host": f"{platform.node()} ({platform.system()} {platform.machine()}, {os.cpu_count()} cores)",
        "command": " ".join(sys.argv),
        "params": dataclasses.asdict(params),
        "ledger": ledger or {"backend": "sqlite"},
        **({"downstream_client": CLIENT_SETTINGS} if params.downstream else {}),
    }


def build(scenario: Scenario, params: Params, runs: list[dict[str, Any]], started_at: float,
          duration_s: float, ledger: dict[str, Any] | None = None) -> dict[str, Any]:
    """The whole results.json document of one scenario run."""
    return {
        "scenario": scenario.name,
        "fault": scenario.fault,
        "claim": scenario.claim,
        "seed": params.seed,
        "started_at": datetime.fromtimestamp(started_at, UTC).isoformat(),
        "duration_s": round(duration_s, 3),
        "manifest": {**manifest(params, ledger),
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
