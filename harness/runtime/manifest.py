"""The manifest of results.json: what makes a run reproducible (versions, machine, parameters, set-up)."""

from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

from apps.common.job import CLIENT_SETTINGS
from harness import tools
from harness.model.env import ENV_BACKEND
from harness.model.params import Params
from harness.model.paths import PROJECT_ROOT
from harness.model.spec import SystemSpec


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


def manifest(params: Params, specs: Iterable[SystemSpec], ledger: dict[str, Any] | None = None,
             servers: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Versions, machine and parameters of a run, where its ledger lived, and what its servers say of themselves
    (an engine's version and source); each system's ``versions`` (``hatchet_sdk``, ``celery``) by its system.toml."""
    return {
        "python": platform.python_version(),
        **{key: _version(dist) for spec in specs for key, dist in spec.versions.items()},
        **(servers or {}),
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


