"""How long stacks take to start: cold (the shared Postgres and Hatchet engine from nothing) and warm
(one system's own processes on shared servers already running), each until every process is healthy.

Cold includes Toxiproxy, a fresh Postgres data directory (initdb), the engine's migrations and its
REST API; it excludes the one-off build of the engine (``make tools``), cached after the first time.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from harness.ledger import create_ledger
from harness.model.params import Params
from harness.model.spec import find_systems
from harness.runtime.infra import Infra
from harness.runtime.stack import Stack


def _quiet(_: str) -> None:
    pass


def start_times(systems: tuple[str, ...], repeats: int = 3) -> tuple[list[float], dict[str, list[float]]]:
    """Seconds of every cold start, and of every warm start per system (one of each per repeat)."""
    specs = find_systems()
    cold: list[float] = []
    warm: dict[str, list[float]] = {name: [] for name in systems}
    for r in range(repeats):
        with tempfile.TemporaryDirectory(prefix="bench-stack-") as tmp:
            root = Path(tmp)
            infra = Infra(root / "logs")
            try:
                t = time.monotonic()
                infra.acquire(specs["hatchet"], "cold")  # its servers: Postgres, RabbitMQ and the engine
                cold.append(time.monotonic() - t)
                for name in systems:
                    run_dir = root / f"{name}-{r}"
                    stack = Stack(specs[name], run_dir, create_ledger(run_dir / "ledger.db"), infra,
                                  Params().task_config(), f"bench-{r}", _quiet)
                    try:
                        t = time.monotonic()
                        stack.up()
                        warm[name].append(time.monotonic() - t)
                    finally:
                        stack.down()
            finally:
                infra.close()
    return cold, warm
