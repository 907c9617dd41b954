"""Load: the clients that submit tasks and write the client history.

A :class:`LoadDriver` sends a :class:`LoadPlan` to a system's API and records one ``Op`` per
request in the ledger: ``ok`` on 2xx, ``fail`` on a definite refusal (4xx/5xx, connection
refused), ``info`` when no answer came (timeout, reset after sending). Both drivers are open-loop
senders: request i is due at start + ``plan.due_s(i)`` whatever the answers, and its latency counts
from that intended time, so a stalled server cannot hide its stall (coordinated omission).
:class:`LocustDriver` (the default for measured load) runs Locust headless in a subprocess with
``harness/loadgen/locustfile.py``; :class:`AsyncDriver` is asyncio and httpx in a thread (fast to
start: the runner's warm-up uses it).
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Protocol

import httpx

from harness.backends.base import Health, HealthTimeout, Proc, ProcessBackend, free_port, stop_all
from harness.backends.local import LocalBackend
from harness.ledger import ENV_LEDGER, ENV_SYSTEM, Ledger
from harness.model.env import ENV_SHAPE
from harness.model.history import Op, Outcome
from harness.model.load import START_LINE, LoadPlan
from harness.model.paths import PROJECT_ROOT

LOCUSTFILE = Path(__file__).parent / "loadgen" / "locustfile.py"
"""The harness's locustfile (``locust -f harness/loadgen/locustfile.py --host URL``)."""


class LoadDriver(Protocol):
    """Something that sends a plan and records the client history (built-in, Locust, ...)."""

    def start(self, base_url: str, plan: LoadPlan, ledger: Ledger, system: str) -> None:
        """Begin sending in the background."""

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every request has an outcome; False on timeout."""

    def stop(self) -> None:
        """Stop sending early (outstanding requests still get an outcome)."""


NEVER_SENT: tuple[type[BaseException], ...] = (
    httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,  # httpx (AsyncDriver)
    ConnectionRefusedError, socket.gaierror,  # plain sockets (geventhttpclient under Locust)
)
"""Errors raised before the request left the client: the server surely never saw it."""


def classify_status(status: int) -> Outcome:
    """``ok`` for an answer in 2xx (accepted), else ``fail`` (a definite refusal)."""
    return "ok" if 200 <= status < 300 else "fail"


def classify_exception(exc: BaseException) -> Outcome:
    """``fail`` when the request surely never reached the server, else ``info`` (it may have run).

    A timeout counts as ``info`` even when it happened while connecting under Locust, whose
    client does not tell connect and read timeouts apart: unsure is ``info``.
    """
    return "fail" if isinstance(exc, NEVER_SENT) else "info"


class AsyncDriver:
    """Built-in open-loop driver: asyncio and httpx in a background thread."""

    def __init__(self, client_name: str = "builtin") -> None:
        self.client_name = client_name
        """Recorded as the ``client`` of every op."""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._error: BaseException | None = None

    def start(self, base_url: str, plan: LoadPlan, ledger: Ledger, system: str) -> None:
        """Send plan to base_url from a background thread."""
        self._stop.clear()

        def run() -> None:
            try:
                asyncio.run(self._send_all(base_url, plan, ledger, system))
            except BaseException as exc:  # noqa: BLE001 - surfaced by wait()
                self._error = exc

        self._thread = threading.Thread(target=run, name=f"load-{system}", daemon=True)
        self._thread.start()

    async def _send_all(self, base_url: str, plan: LoadPlan, ledger: Ledger, system: str) -> None:
        limits = httpx.Limits(max_connections=2000, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=base_url, timeout=plan.timeout_s, limits=limits) as client:
            start = time.time()
            pending: set[asyncio.Task[None]] = set()
            for i in range(plan.count):
                if self._stop.is_set():
                    break
                intended = start + plan.due_s(i)
                delay = intended - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(self._one(client, plan.task_id(i), intended, plan, ledger, system))
                pending.add(task)
                task.add_done_callback(pending.discard)
            if pending:
                await asyncio.gather(*pending)

    async def _one(self, client: httpx.AsyncClient, task_id: str, intended: float, plan: LoadPlan,
                   ledger: Ledger, system: str) -> None:
        body = {"task_id": task_id, "kind": plan.kind, "params": plan.params}
        status: int | None = None
        error: str | None = None
        outcome: Outcome
        try:
            resp = await client.post("/tasks", json=body)
            status = resp.status_code
            outcome = classify_status(status)
            if outcome == "fail":
                error = resp.text[:200]
        except httpx.HTTPError as exc:
            outcome, error = classify_exception(exc), type(exc).__name__
        ledger.record_op(Op(task_id, system, plan.kind, plan.phase, intended, time.time(), outcome, status, error,
                            self.client_name))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the sender thread finished; re-raise its error."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._error is not None:
            raise RuntimeError(f"load driver failed: {self._error!r}") from self._error
        return not self._thread.is_alive()

    def stop(self) -> None:
        """Stop sending new requests."""
        self._stop.set()


def processes_args(processes: int) -> list[str]:
    """Locust options for ``processes`` local workers (none for 0), their master on a free loopback port."""
    if not processes:
        return []
    port = str(free_port())
    return ["--processes", str(processes), "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
            "--master-port", port]


def worker_names(processes: int) -> list[str]:
    """Names of the Locust worker processes of a distributed load (``locust-1``...), placed like any server."""
    return [f"locust-{k}" for k in range(1, processes + 1)]


class LocustDriver:
    """Open-loop load from Locust, headless in a subprocess with the harness's locustfile.

    Locust is never imported here: gevent's monkey-patching would break asyncio and gRPC in the
    harness. Its CSV stats, HTML and JSON reports, plan and log land in ``out_dir`` (default
    ``locust/`` next to the ledger, i.e. ``<run_dir>/<system>/locust/``), named after the phase.
    """

    START_TIMEOUT_S = 60.0
    """Longest wait for Locust to start and fix the open loop's start time."""

    def __init__(self, processes: int = 0, out_dir: Path | None = None, backend: ProcessBackend | None = None) -> None:
        self.processes = processes
        """Locust worker processes (``--processes N``); 0: one process, no master."""
        self.backend: ProcessBackend = backend or LocalBackend()
        """Where Locust runs (this machine, or the load generator's host when the run has several)."""
        self.out_dir = out_dir
        """Where Locust's files go (None: ``locust/`` next to the ledger)."""
        self.process: Proc | None = None
        """The Locust process (its group holds the workers, or it is the master of distributed ones), once started."""
        self.workers: list[Proc] = []
        """Worker processes on other hosts (a distributed load), once started."""
        self._master_port = 0
        self.stem: Path | None = None
        """Path prefix of this run's Locust files (``<out_dir>/<phase>``)."""
        self._plan: LoadPlan | None = None
        self._ledger: Ledger | None = None
        self._stopped = False
        self._finished = False
        self._deadline = 0.0

    @property
    def distributed(self) -> bool:
        """Workers on other hosts than the master (the run has hosts): a master and worker processes of its own."""
        return bool(self.processes) and self.backend.address("locust-1") != self.backend.address("locust")

    def command(self, base_url: str, plan: LoadPlan, stem: Path) -> list[str]:
        """The Locust command line for plan (headless, open loop, reports at stem.*)."""
        argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", base_url,
                "--plan", plan.to_json(), "--csv", str(stem), "--html", f"{stem}.html", "--json-file", str(stem),
                "--only-summary", "--exit-code-on-error", "0", "--loglevel", "INFO"]
        if self.distributed:
            self._master_port = free_port()
            return [*argv, "--master", "--master-bind-host", self.backend.address("locust"), "--master-bind-port",
                    str(self._master_port), "--expect-workers", str(self.processes)]
        return argv + processes_args(self.processes)

    def worker_command(self, plan: LoadPlan) -> list[str]:
        """One Locust worker of a distributed load, reaching its master across the run's network."""
        return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host",
                self.backend.address("locust"), "--master-port", str(self._master_port), "--plan", plan.to_json(),
                "--loglevel", "INFO"]

    def start(self, base_url: str, plan: LoadPlan, ledger: Ledger, system: str) -> None:
        """Start Locust and return when the open loop's first request is due."""
        if plan.count == 0:
            return  # nothing to send: Locust would end before announcing a start
        out = self.out_dir or ledger.path.parent / "locust"
        out.mkdir(parents=True, exist_ok=True)
        stem, n = out / plan.phase, 1
        while stem.with_suffix(".log").exists():  # the same phase twice: keep both runs' files
            n += 1
            stem = out / f"{plan.phase}-{n}"
        stem.with_suffix(".plan.json").write_text(plan.to_json() + "\n")
        self.stem, self._plan, self._ledger = stem, plan, ledger
        env = {ENV_LEDGER: ledger.url, ENV_SYSTEM: system, ENV_SHAPE: "open", "PYTHONPATH": str(PROJECT_ROOT),
               "PYTHONUNBUFFERED": "1"}
        self.process = self.backend.process(
            name="locust",
            argv=self.command(base_url, plan, stem),
            env=env,
            log_path=stem.with_suffix(".log"),
            roles=("load",),
            health=Health(log=START_LINE),
            cwd=PROJECT_ROOT,
            stop_grace_s=plan.timeout_s + 10,  # in-flight requests time out, then the history is flushed
        )
        self.process.start()
        if self.distributed:  # each worker on its host, connecting to the master (which starts once all are in)
            self.workers = [self.backend.process(name=name, argv=self.worker_command(plan), env=env,
                                                 log_path=stem.with_name(f"{stem.name}-{name}.log"), roles=("load",),
                                                 cwd=PROJECT_ROOT, stop_grace_s=plan.timeout_s + 10)
                            for name in worker_names(self.processes)]
            for worker in self.workers:
                worker.start()
        # Past this, Locust is stuck (it ends by itself once every request had its timeout): kill it.
        self._deadline = time.monotonic() + self.START_TIMEOUT_S + plan.due_s(plan.count - 1) + plan.timeout_s \
            + self.process.stop_grace_s
        try:
            self.process.wait_healthy(self.START_TIMEOUT_S)
        except HealthTimeout as exc:
            self.process.kill()
            stop_all(self.workers, grace_s=0)
            raise RuntimeError(f"locust did not start: {exc}\n{self._log_tail()}") from None
        found = re.findall(START_LINE + r" ([0-9.]+)", self.process.log_path.read_text(errors="replace"))
        time.sleep(max(0.0, float(found[-1]) - time.time()))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until Locust exited; raise if it failed or sent another count than planned."""
        proc = self.process
        if proc is None or proc.incarnation == 0:
            return True
        remaining = self._deadline - time.monotonic()
        if not proc.wait(max(0.0, remaining if timeout is None else min(timeout, remaining))):
            if time.monotonic() < self._deadline:
                return False
            proc.kill()
        if not self._finished:
            self._finished = True
            proc.stop(grace_s=0)  # reaps the group and tells the reaper
            stop_all(self.workers, grace_s=5)  # they quit with their master; stragglers are killed
            code = proc.exit_code()
            if code != 0:
                raise RuntimeError(f"locust exited with status {code} (log: {proc.log_path})\n{self._log_tail()}")
            assert self._plan is not None and self._ledger is not None
            sent = self._ledger.count_ops(self._plan.phase, self._plan.id_prefix)
            if not self._stopped and sent != self._plan.count:
                raise RuntimeError(f"locust recorded {sent} requests of the {self._plan.count} planned "
                                   f"(log: {proc.log_path})")
        return True

    def stop(self) -> None:
        """Stop sending: Locust quits on SIGTERM once its in-flight requests have an outcome."""
        self._stopped = True
        if self.process is not None and self.process.alive():
            self.process.signal(signal.SIGTERM)
            self._deadline = min(self._deadline, time.monotonic() + self.process.stop_grace_s)
        elif self.workers:
            stop_all(self.workers, grace_s=5)

    def _log_tail(self, lines: int = 15) -> str:
        if self.process is None or not self.process.log_path.exists():
            return ""
        return "\n".join(self.process.log_path.read_text(errors="replace").splitlines()[-lines:])
