"""What every reproduction shares: its command line, its result, the library version it runs on, its stack.

A reproduction is ``python -m findings.repro.NAME [--tries N] [--sdk DIST==VERSION] [--json PATH]
[--logs DIR] [--dry-run]``. It starts only what it needs through the harness's own APIs (the
infra's servers, Toxiproxy links, managed processes the reaper kills if it dies), prints one line
per try and a last line such as ``lost 2 of 8``, writes its :class:`CheckResult` as JSON, and exits
0 (reproduced), 1 (not reproduced) or 2 (could not run). ``--dry-run`` prints its plan and starts
nothing.

Client processes (Hatchet workers and triggers) run on the Python of the library version asked
for: the project's venv when it is the lock's, else ``.venv-sdk/<dist>-<version>`` (``make
sdk-versions``); a version without its venv cannot run, and says so.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.backends.base import Health, Proc

__all__ = ["Args", "CannotRun", "CeleryStack", "HatchetStack", "Health", "Processes", "Runtime", "celery_stack",
           "client_module", "engine_version", "hatchet_stack", "log_has", "main", "parse", "publisher", "read_lines",
           "runtime", "runtimes", "say", "versions_of", "wait_until"]
from harness.model.finding import EXIT_CODES, CheckResult, FindingError, requirement_parts, venv_dir
from harness.model.paths import PROJECT_ROOT
from harness.runtime.infra import Infra


class CannotRun(Exception):
    """The reproduction cannot run here (a version's venv, a tool, a server missing): its message says why."""


@dataclass(frozen=True)
class Args:
    """A reproduction's options."""

    tries: int
    """Tries to make."""
    sdk: tuple[str, ...]
    """Library versions to run on (``hatchet-sdk==1.43.1``); empty: the finding's default."""
    json: Path | None
    """Where to write the result."""
    logs: Path
    """Where processes log (a temporary directory unless given)."""
    dry_run: bool
    """Print the plan only."""


def parse(argv: Sequence[str] | None, doc: str, tries: int) -> Args:
    """Read the common options."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tries", type=int, default=tries, help=f"tries (default {tries})")
    ap.add_argument("--sdk", action="append", default=[], metavar="DIST==VERSION",
                    help="run the clients on this library version (its venv from `make sdk-versions`); repeatable")
    ap.add_argument("--json", type=Path, default=None, help="write the result here")
    ap.add_argument("--logs", type=Path, default=None, help="process logs here (default: a temporary directory)")
    ap.add_argument("--dry-run", action="store_true", help="print the plan; start nothing")
    ns = ap.parse_args(argv)
    if ns.tries < 1:
        ap.error("--tries must be at least 1")
    for requirement in ns.sdk:
        try:
            requirement_parts(requirement)
        except FindingError as exc:
            ap.error(str(exc))
    # Without --logs the logs live in a temporary directory made (and removed) by main() around the run.
    return Args(ns.tries, tuple(ns.sdk), ns.json, ns.logs or Path(), ns.dry_run)


Plan = Callable[[Args], list[str]]
Run = Callable[[Args], list[CheckResult]]
"""A reproduction's run: one result per library version it ran on (the first is the headline)."""


def main(argv: Sequence[str] | None, doc: str, tries: int, plan: Plan, run: Run) -> int:
    """Parse, plan or run, print the results, write their JSON (``{"results": [...]}``); the exit status is the
    first result's (0 reproduced, 1 not reproduced, 2 could not run)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # stoppable when started with SIGINT ignored
    args = parse(argv, doc, tries)
    if args.dry_run:
        lines = plan(args)
        for line in lines:
            print(line)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"plan": lines, "tries": args.tries, "sdk": list(args.sdk)}) + "\n")
        return 0
    t0 = time.monotonic()
    with contextlib.ExitStack() as stack:
        if args.logs == Path():  # no --logs: the processes' logs are the check's own and go with it
            args = replace(args, logs=Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="finding-"))))
        results = _run(args, run, t0)
    for result in results:
        print(result.line(), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"results": [r.as_json() for r in results]}, indent=2) + "\n")
    return EXIT_CODES[results[0].status]


def _run(args: Args, run: Run, t0: float) -> list[CheckResult]:
    try:
        return run(args)
    except CannotRun as exc:
        return [CheckResult.cannot_run(str(exc), time.monotonic() - t0)]
    except Exception as exc:  # noqa: BLE001 - whatever broke, the check reports it as could not run, with why
        traceback.print_exc()
        return [CheckResult.cannot_run(f"{type(exc).__name__}: {exc}", time.monotonic() - t0)]


def say(line: str) -> None:
    """One progress line, timestamped, flushed."""
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


# -- the library version a client runs on -----------------------------------------------------------------------


def installed(dist: str) -> str:
    """The version of dist in the project's venv ("" when absent)."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


@dataclass(frozen=True)
class Runtime:
    """A Python that has a given version of a library."""

    dist: str
    """The library (``hatchet-sdk``)."""
    version: str
    """Its version there."""
    python: str
    """The interpreter."""

    @property
    def label(self) -> str:
        """``hatchet-sdk 1.43.1``."""
        return f"{self.dist} {self.version}"


def runtime(requirement: str) -> Runtime:
    """The Python to run clients on for ``dist==version``: the project's venv when it has that version, else its
    ``make sdk-versions`` venv; CannotRun when neither has it."""
    dist, version = requirement_parts(requirement)
    if installed(dist) == version:
        return Runtime(dist, version, sys.executable)
    python = venv_dir(requirement) / "bin" / "python"
    if not python.exists():
        raise CannotRun(f"{dist} {version} has no environment here: run `make sdk-versions "
                        f"SDK_VERSIONS={requirement}` (makes {venv_dir(requirement).relative_to(PROJECT_ROOT)})")
    probe = subprocess.run([str(python), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
                           capture_output=True, text=True, timeout=60)
    if probe.returncode != 0 or probe.stdout.strip() != version:
        raise CannotRun(f"{venv_dir(requirement)} does not have {dist} {version} ({probe.stdout.strip() or 'none'}): "
                        f"re-run `make sdk-versions SDK_VERSIONS={requirement}`")
    return Runtime(dist, version, str(python))


def runtimes(args: Args, dist: str, default: Sequence[str] = ()) -> list[Runtime]:
    """The runtimes asked for (``--sdk`` for dist), else the default list, else the lock's version."""
    wanted = [r for r in args.sdk if requirement_parts(r)[0] == dist] or list(default)
    return [runtime(r) for r in wanted] if wanted else [Runtime(dist, installed(dist), sys.executable)]


# -- processes ---------------------------------------------------------------------------------------------------


@dataclass
class Processes:
    """Client processes of a reproduction, each a managed process in its own group (the reaper kills them if the
    reproduction dies); :meth:`close` kills whatever is left."""

    logs: Path
    """Where they log."""
    started: list[Proc] = field(default_factory=list)
    """Every process started."""

    def start(self, name: str, argv: list[str], env: Mapping[str, str] | None = None,
              health: Health | None = None, wait_s: float = 60.0) -> Proc:
        """Start argv (in the project's directory) and wait for its health check, if any."""
        from harness.backends.local import LocalBackend

        proc = LocalBackend().process(name=name, argv=argv, log_path=self.logs / f"{name}.log", env=dict(env or {}),
                                      health=health, cwd=PROJECT_ROOT, stop_grace_s=5)
        proc.start()
        self.started.append(proc)
        if health is not None:
            proc.wait_healthy(wait_s)
        return proc

    def close(self) -> None:
        """Kill every process still running."""
        for proc in self.started:
            with contextlib.suppress(Exception):
                proc.kill()


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines a client wrote (the last one may be cut off: skipped)."""
    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            out.append(json.loads(line))
    return out


def log_has(path: Path, needle: str) -> bool:
    """True when path (a process log) contains needle."""
    try:
        return needle in path.read_text(errors="replace")
    except OSError:
        return False


def wait_until(cond: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
    """Poll cond until true or timeout; True if it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


# -- Hatchet's stack ---------------------------------------------------------------------------------------------


@dataclass
class HatchetStack:
    """Postgres and a Hatchet engine started through the harness's infra, with the engine's links."""

    infra: Any
    """The :class:`harness.runtime.infra.Infra` that started them."""
    engine: Any
    """The :class:`apps.hatchet.engine.HatchetEngine`."""
    postgres: Any
    """The :class:`harness.servers.postgres.Postgres` under it."""
    links: dict[str, Any]
    """Its proxied links by name (``engine->postgres``), :class:`harness.servers.toxiproxy.Link`."""
    processes: Processes
    """Client processes."""

    def client_env(self, namespace: str, via: str = "") -> dict[str, str]:
        """A Hatchet client's environment (token, address, namespace), through a proxied link of its own when
        ``via`` names one (a Toxiproxy link to the engine made with :meth:`client_link`)."""
        listen = self.client_links[via].listen if via else self.engine.address
        return {**self.engine.client_env(namespace, listen), "PYTHONPATH": str(PROJECT_ROOT),
                "PYTHONUNBUFFERED": "1"}

    client_links: dict[str, Any] = field(default_factory=dict)
    """Links from clients to the engine made by :meth:`client_link`."""

    def client_link(self, name: str) -> Any:
        """A Toxiproxy link from clients to the engine (``trigger->engine``), for toxics on that path."""
        link = self.infra.ensure_toxiproxy().create(name, self.engine.address)
        self.client_links[name] = link
        return link

    def set_link(self, name: str, enabled: bool) -> None:
        """Cut (False) or heal (True) a proxied link: connections dropped, new ones refused while cut."""
        link = self.links.get(name) or self.client_links[name]
        self.infra.ensure_toxiproxy().set_enabled(link.proxy, enabled)

    def toxic(self, name: str, toxic: str, kind: str, attributes: dict[str, Any], stream: str = "downstream") -> None:
        """Add a toxic (``latency``: ``{"latency": ms}``) to a proxied link."""
        link = self.links.get(name) or self.client_links[name]
        self.infra.ensure_toxiproxy().add_toxic(link.proxy, toxic, kind, attributes, stream=stream)

    def untoxic(self, name: str, toxic: str) -> None:
        """Remove a toxic from a proxied link."""
        link = self.links.get(name) or self.client_links[name]
        self.infra.ensure_toxiproxy().remove_toxic(link.proxy, toxic)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query on the engine's database, straight to Postgres (not through the engine's link)."""
        import psycopg

        url = self.postgres.url(self.engine.database)
        with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
            return list(conn.execute(sql, params).fetchall())


@contextlib.contextmanager
def hatchet_stack(logs: Path, system: str = "hatchet-lite", patterns: Sequence[str] = (),
                  settings: Mapping[str, str] | None = None) -> Iterator[HatchetStack]:
    """Postgres and the pinned Hatchet engine of ``system`` (``hatchet-lite``: the Postgres message queue;
    ``hatchet``: RabbitMQ), their links proxied where ``patterns`` match (``engine->postgres``), the engine's
    settings overridden by ``settings``; everything stopped on exit."""
    from apps.hatchet import tools
    from harness.model.spec import find_systems
    from harness.tools import ToolMissing

    try:
        tools.bin_path("hatchet-engine")
    except ToolMissing as exc:
        raise CannotRun(f"{exc} (run `make tools`)") from None
    spec = find_systems()[system]
    if settings:
        spec = replace(spec, servers=tuple(replace(t, settings={**t.settings, **settings}) if t.name == "engine"
                                           else t for t in spec.servers))
    with contextlib.ExitStack() as stack:
        infra = Infra(logs, progress=say)
        stack.callback(infra.close)
        processes = Processes(logs)
        stack.callback(processes.close)
        t0 = time.monotonic()
        got = infra.acquire(spec, "finding", patterns)
        engine = got.servers["engine"].server
        say(f"{system} stack up in {time.monotonic() - t0:.0f} s (engine {engine.address}, logs {logs})")
        db: Any = got.servers["postgres"].server  # a harness.servers.postgres.PostgresServer
        yield HatchetStack(infra, engine, db.postgres, got.proxied(), processes)


def engine_version() -> str:
    """The pinned engine's tag."""
    from apps.hatchet import tools

    return tools.VERSION


def client_module() -> str:
    """The module clients run as (``python -m``): the Hatchet clients of the reproductions."""
    return "findings.repro.clients.hatchet"


# -- Celery's stack ----------------------------------------------------------------------------------------------


@dataclass
class CeleryStack:
    """Celery's Redis broker started through the harness's infra, a ledger for the workers' attempts, and workers."""

    infra: Any
    """The :class:`harness.runtime.infra.Infra` that started the broker."""
    broker: str
    """``host:port`` of Redis."""
    ledger: Any
    """The run's :class:`harness.ledger.Ledger` (SQLite): every attempt's start and effect."""
    processes: Processes
    """The workers."""
    python: Runtime
    """The Python the workers run on (the lock's kombu, or another version's venv)."""
    task_config: dict[str, Any]
    """The workers' :class:`apps.common.contract.TaskConfig` (slots, timeouts: the visibility timeout follows)."""

    def worker_env(self, name: str, broker: str = "") -> dict[str, str]:
        """A worker's environment as apps/celery/system.toml gives it, its broker at ``broker`` (a link)."""
        from harness.model.env import ENV_LEDGER, ENV_PROCESS, ENV_SYSTEM, ENV_TASK_CONFIG

        return {"CELERY_BROKER_URL": f"redis://{broker or self.broker}/0", ENV_LEDGER: self.ledger.url,
                ENV_SYSTEM: "celery", ENV_PROCESS: name, ENV_TASK_CONFIG: json.dumps(self.task_config),
                "PYTHONPATH": str(PROJECT_ROOT)}

    def worker(self, name: str, broker: str = "", loglevel: str = "WARNING", wait_s: float = 90.0) -> Proc:
        """Start a prefork worker of the recommended configuration (apps/celery/tasks.py), healthy."""
        return self.processes.start(name, [self.python.python, "-m", "celery", "-A", "apps.celery.tasks", "worker",
                                           "--hostname", f"{name}@finding", "--pool", "prefork", "--loglevel",
                                           loglevel], self.worker_env(name, broker),
                                    Health(log="celery worker ready"), wait_s=wait_s)

    def versions(self) -> dict[str, str]:
        """Celery's, kombu's and redis-py's versions where the workers run."""
        return versions_of(self.python.python, ("celery", "kombu", "redis"))

    def started(self) -> set[str]:
        """Task ids with at least one attempt started (the ledger)."""
        return {e.task_id for e in self.ledger.events("start")}

    def redis(self) -> Any:
        """A redis-py client of the broker (straight, not through a link)."""
        import redis

        host, _, port = self.broker.rpartition(":")
        return redis.Redis(host=host, port=int(port), socket_timeout=5)


def versions_of(python: str, dists: Sequence[str]) -> dict[str, str]:
    """The versions of dists in the environment of python."""
    if python == sys.executable:
        return {d: installed(d) for d in dists}
    code = ("import importlib.metadata as m, json, sys; "
            "print(json.dumps({d: m.version(d) for d in sys.argv[1:]}))")
    out = subprocess.run([python, "-c", code, *dists], capture_output=True, text=True, timeout=60, check=True)
    return {str(k): str(v) for k, v in json.loads(out.stdout).items()}


@contextlib.contextmanager
def celery_stack(args: Args, task_config: Mapping[str, Any]) -> Iterator[CeleryStack]:
    """Redis as apps/celery/system.toml declares it (AOF, fsync every second), started by the infra; a SQLite
    ledger; the workers' Python (``--sdk kombu==X`` or ``celery==X``: that version's venv); everything stopped on
    exit. The calling process can publish with :func:`publisher`."""
    import shutil

    from harness.ledger import create_ledger
    from harness.model.spec import find_systems

    if shutil.which("redis-server") is None:
        raise CannotRun("redis-server is not installed (run `make servers`)")
    wanted = [r for r in args.sdk if requirement_parts(r)[0] in ("kombu", "celery")]
    py = runtime(wanted[0]) if wanted else Runtime("kombu", installed("kombu"), sys.executable)
    with contextlib.ExitStack() as stack:
        infra = Infra(args.logs, progress=say)
        stack.callback(infra.close)
        processes = Processes(args.logs)
        stack.callback(processes.close)
        got = infra.acquire(find_systems()["celery"], "finding")
        broker = got.servers["broker"].server.address
        ledger = create_ledger(args.logs / "ledger.db")
        say(f"Redis up at {broker} (AOF, fsync every second); workers on {py.label}")
        yield CeleryStack(infra, broker, ledger, processes, py, dict(task_config))


def publisher(st: CeleryStack) -> Callable[[str, float], None]:
    """A function sending one ``job`` (sleep ``seconds``) with task id ``task_id`` to the broker, from this process
    (apps/celery/tasks.py reads the broker's URL when first imported)."""
    os.environ.update(st.worker_env("publisher"))
    from apps.celery.tasks import job

    def send(task_id: str, seconds: float) -> None:
        job.apply_async(args=({"task_id": task_id, "kind": "sleep", "params": {"duration_s": seconds}},),
                        task_id=task_id)

    return send
