"""A session: the runs of one command (``harness run`` or one pytest session) under one run id.

It owns the shared servers (started on first need, stopped at close, also on Ctrl-C), gives
each scenario its directory ``reports/<run-id>/<scenario>/``, and at close writes the run's
index page and points ``reports/latest`` at it.
"""

from __future__ import annotations

import os
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import report
from harness.analysis import results
from harness.backends.base import RUN_MARKER, ProcessBackend
from harness.backends.hosts import Hosts, HostsBackend
from harness.backends.local import LocalBackend
from harness.ledger import LedgerStore
from harness.load.drivers import LocustDriver
from harness.model.env import ENV_BACKEND
from harness.model.params import Params
from harness.model.paths import REPORTS_DIR
from harness.model.scenario import Scenario
from harness.model.spec import SystemSpec
from harness.runner import DriverFactory, Progress, run_scenario
from harness.runtime.infra import Infra
from harness.runtime.ledgers import open_store
from harness.servers.registry import Prepared


def new_run_id() -> str:
    """Sortable, unique id of a run: UTC time plus a few random hex digits."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)




class BackendUnavailable(RuntimeError):
    """The chosen backend cannot run here (e.g. no Docker engine reachable): one line for the user."""


def container_backend(name: str, run_id: str, progress: Progress) -> ProcessBackend | None:
    """The backend of a session that runs servers in containers (None: local processes). The Docker SDK is
    imported only when Docker is asked for."""
    if name == "process":
        return None
    if name == "docker":
        from harness.backends.docker import DockerBackend, DockerUnavailable
        from harness.backends.images import ImageError

        try:
            return DockerBackend.create(run_id, progress)
        except (DockerUnavailable, ImageError) as exc:
            raise BackendUnavailable(f"--backend docker: {exc}") from None
    raise BackendUnavailable(f"--backend {name!r}: expected process or docker")


def point_latest(root: Path) -> None:
    """Point ``reports/latest`` at the run directory root (atomically)."""
    tmp = REPORTS_DIR / f".latest-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(root.name, target_is_directory=True)
    tmp.replace(REPORTS_DIR / "latest")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def progress_line(k: int, n: int, name: str, elapsed_s: float) -> str:
    """``scenario k of n: NAME (elapsed, estimate left)``: the estimate is the mean of the scenarios done so far."""
    head = f"scenario {k} of {n}: {name}" if n else f"scenario {k}: {name}"
    if k <= 1 or not n:
        return f"{head} (elapsed {_clock(elapsed_s)})"
    left = elapsed_s / (k - 1) * (n - k + 1)
    return f"{head} (elapsed {_clock(elapsed_s)}, about {_clock(left)} left)"


def _print(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Session:
    """Shared servers and output directories for several scenario runs."""

    def __init__(self, root: Path | None = None, progress: Progress = _print,
                 driver_factory: DriverFactory | None = None, prepared: Prepared | None = None,
                 ledger: str = "sqlite", hosts: int = 0, load_processes: int = 0, backend: str = "process",
                 parallel: bool = False, run_id: str | None = None) -> None:
        self.run_id = run_id or new_run_id()
        """Id of this session's run (given: one run written by several processes, pytest-xdist's workers)."""
        containers = container_backend(backend, self.run_id, progress)  # first: if unusable, nothing is made
        self.root = root or REPORTS_DIR / self.run_id
        """Directory of this run (``reports/<run-id>`` unless given)."""
        self.progress = progress
        """One-line progress callback."""
        self.root.mkdir(parents=True, exist_ok=True)
        os.environ[RUN_MARKER] = str(self.root.resolve())  # inherited by every process started below
        self.backend: ProcessBackend = containers or (HostsBackend(Hosts(hosts)) if hosts else LocalBackend())
        """Runs every server of the session: on this machine, placed on network hosts (``--hosts N``), or in
        containers (``--backend docker``)."""
        os.environ[ENV_BACKEND] = self.backend.name  # results.json's manifest says which
        self.driver_factory: DriverFactory = driver_factory or (
            lambda: LocustDriver(processes=load_processes, backend=self.backend))
        """Makes the load driver of each system run."""
        self.infra = Infra(self.root / "logs", progress, backend=self.backend, prepared=prepared)
        """Servers shared by every scenario of the session."""
        self.infra.load_processes = load_processes
        if hosts:
            self.backend.place([])  # the hosts exist from here on (the ledger's server listens on their bridge)
        self.ledgers: LedgerStore = open_store(ledger, self.root / "logs" / "ledger", progress,
                                               listen=self.backend.shared_address)
        """Where each run's fresh ledger is made (``--ledger``: sqlite files, or schemas of a Postgres server)."""
        self.results: list[dict[str, Any]] = []
        """results.json documents written so far."""
        self.parallel = parallel
        """Run a scenario's systems side by side where its verdict rests on counts (``--parallel``)."""
        self.planned = 0
        """Scenarios this session will run (0: unknown), for the progress line."""
        self.begun = 0
        """Scenarios begun so far (failed ones included)."""
        self.started = time.monotonic()
        """When the session started (elapsed time on the progress line)."""

    def run(self, scenario: Scenario, systems: list[SystemSpec], params: Params,
            out_dir: Path | None = None) -> dict[str, Any]:
        """Run one scenario; results land in out_dir (default ``<root>/<scenario>``)."""
        out = out_dir or self.root / scenario.name
        self.begun += 1
        self.progress(progress_line(self.begun, self.planned, scenario.name, time.monotonic() - self.started))
        doc = run_scenario(scenario, systems, params, out, self.infra, self.run_id, self.progress, self.driver_factory,
                           ledgers=self.ledgers, parallel=self.parallel)
        self.results.append(doc)
        return doc

    def close(self) -> None:
        """Stop the shared servers, write the run index (and reports/index.html), point reports/latest here."""
        secrets = self.infra.secrets() + self.ledgers.secrets()
        try:
            try:
                self.infra.close()
            finally:
                self.ledgers.close()
        finally:
            # The shared servers' logs are linked from reports too: scrub them once they are complete.
            results.redact(self.root, secrets)
            if self.results and not (self.root / "results.json").exists():  # else root is a scenario's page
                in_reports = self.root.parent == REPORTS_DIR
                # A run in reports/ also refreshes the list of every run.
                report.write_run_index(self.root, self.results, REPORTS_DIR if in_reports else None)
                if in_reports:
                    point_latest(self.root)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
