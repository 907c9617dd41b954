"""The servers of a session: Toxiproxy, and every system's servers with the links between them.

A run asks for its system's servers (:meth:`Infra.acquire`); the infra starts what is not running
yet, in dependency order (a server's links lead to servers started before it), each link through
Toxiproxy when a fault of the scenario may target it (``engine->postgres``, ``*->mq``), else direct.
A shared server (``shared = true``) is started once and kept for every run of the session whose
system declares the same server (``hatchet`` and ``hatchet-naive`` on one engine); a run may ask
for a private copy of one (its own engine, when its fault hits it while other runs go on). A
server whose links must change for a run (a proxy now, or none) is restarted on the new path, on
the same state. Other servers live for one run (:meth:`Infra.release`).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.backends import reaper
from harness.backends.base import Proc, ProcessBackend
from harness.backends.local import LocalBackend
from harness.model.links import proxied
from harness.model.spec import ServerTemplate, SystemSpec
from harness.servers.base import Server, ServerContext
from harness.servers.registry import Prepared, make
from harness.servers.toxiproxy import Link, Toxiproxy, start_server

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class Running:
    """A started server with its links."""

    server: Server
    """The server."""
    template: ServerTemplate
    """Its declaration."""
    key: tuple[Any, ...]
    """What it is shared by (its declaration, its peers, and its owner when it is not shared)."""
    ident: str
    """Short unique id in the session (its state directory and proxy names)."""
    links: dict[str, Link | str] = field(default_factory=dict)
    """Its links to peers by name: a Toxiproxy link, or the peer's address when direct."""
    log_dir: Path = Path()
    """Where its processes log."""
    owners: set[str] = field(default_factory=set)
    """Runs using it now."""

    def proxied(self) -> dict[str, Link]:
        """Its links that go through Toxiproxy."""
        return {name: link for name, link in self.links.items() if isinstance(link, Link)}


@dataclass
class Acquired:
    """The servers one run uses, by name, and their links."""

    servers: dict[str, Running] = field(default_factory=dict)
    """By declared name."""

    def processes(self) -> list[Proc]:
        """Every process of them (fault targets)."""
        return [p for r in self.servers.values() for p in r.server.processes()]

    def proxied(self) -> dict[str, Link]:
        """Their proxied links, by link name (``engine->postgres``)."""
        return {name: link for r in self.servers.values() for name, link in r.proxied().items()}

    def direct(self) -> list[str]:
        """Their links that are direct connections."""
        return [name for r in self.servers.values() for name, link in r.links.items() if not isinstance(link, Link)]

    def outside(self) -> dict[str, str]:
        """What of them is not the harness's to fault, with why."""
        return {k: v for r in self.servers.values() for k, v in r.server.outside().items()}


class Infra:
    """Servers of a session: Toxiproxy always, every system's servers on demand."""

    def __init__(self, log_dir: Path, progress: Progress = _quiet, backend: ProcessBackend | None = None,
                 prepared: Prepared | None = None) -> None:
        self.log_dir = log_dir
        """Where the shared servers log."""
        self.backend: ProcessBackend = backend or LocalBackend()
        """Runs every server of the session (local processes by default)."""
        self.prepared = prepared or Prepared()
        """Servers made and checked before the session (the user's engine, ...), and the run's server options."""
        self.load_processes = 0
        """Locust worker processes of the measured load (0: one process); placed with the rest."""
        self.state_dir = Path(tempfile.mkdtemp(prefix="harness-state-"))
        """Private state (database files, engine keys); removed at close, or by the reaper if the harness dies."""
        reaper.remove_with_run(self.state_dir)
        os.chmod(self.state_dir, 0o755)  # Postgres runs as another user below it
        self.progress = progress
        """Callback for one-line progress messages."""
        self.toxiproxy_process: Proc | None = None
        """The Toxiproxy server."""
        self.toxiproxy: Toxiproxy | None = None
        """Client of the Toxiproxy server."""
        self.running: dict[tuple[Any, ...], Running] = {}
        """Started servers by key."""
        self._lock = threading.RLock()  # runs of one scenario may acquire side by side
        self._ids = itertools.count(1)

    def ensure_toxiproxy(self) -> Toxiproxy:
        """The Toxiproxy server, started on first need."""
        with self._lock:
            if self.toxiproxy is None:
                self.toxiproxy_process, self.toxiproxy = start_server(self.backend, self.log_dir)
            return self.toxiproxy

    def started_here(self, template: ServerTemplate) -> bool:
        """Whether the harness starts template's processes (not a user's own engine)."""
        return self.prepared.started_here(template)

    def place(self, spec: SystemSpec) -> None:
        """Tell the backend where spec's processes run (hosts: :mod:`harness.backends.hosts`; one machine: nowhere)."""
        self.backend.place(spec.units(self.load_processes, self.started_here))

    def needed(self, spec: SystemSpec) -> list[ServerTemplate]:
        """spec's servers a run starts: those its processes link to, and theirs, peers first."""
        by_name = {t.name: t for t in spec.servers}
        order: list[ServerTemplate] = []

        def visit(name: str) -> None:
            template = by_name[name]
            if template in order:
                return
            for link in self.prepared.get(template).needs():
                visit(template.link_target(link))
            order.append(template)

        for name in dict.fromkeys(s for p in spec.processes for s in p.links if s in by_name):
            visit(name)
        return order

    def outside(self, spec: SystemSpec) -> dict[str, str]:
        """Processes and links of spec's servers that exist but are not the harness's to fault, with why."""
        return {k: v for t in spec.servers for k, v in self.prepared.get(t).outside().items()}

    def acquire(self, spec: SystemSpec, owner: str, patterns: Sequence[str] = (),
                private: Collection[str] = (), log_dir: Path | None = None) -> Acquired:
        """Start (or reuse) spec's servers for one run; ``patterns``: link patterns a fault may target (those links
        go through Toxiproxy); ``private``: shared servers this run gets a copy of (a fault hits them); ``log_dir``:
        where the servers only this run uses log (default: the session's logs, where shared servers log)."""
        got = Acquired()
        with self._lock:
            order = self.needed(spec)
            mine = self._own(order, private)
            for template in order:
                peers = {template.link_target(link): got.servers[template.link_target(link)]
                         for link in self.prepared.get(template).needs()}
                own = template.name in mine
                key = (template.identity(), tuple(sorted((n, r.key) for n, r in peers.items())),
                       owner if own else "")
                running = self.running.get(key)
                if running is None:
                    server = make(template, self.prepared.options) if own else self.prepared.get(template)
                    running = Running(server, template, key, f"s{next(self._ids)}-{template.name}",
                                      log_dir=log_dir if own and log_dir else self.log_dir)
                    self._start(running, peers, patterns)
                    self.running[key] = running
                elif self._links_differ(running, patterns):
                    self.progress(f"restarting {template.name}: its links change for this run")
                    running.server.close()
                    self._unlink(running)
                    self._start(running, peers, patterns)
                running.owners.add(owner)
                got.servers[template.name] = running
        return got

    def _own(self, order: list[ServerTemplate], private: Collection[str]) -> set[str]:
        """The servers a run gets copies of: those not shared, those asked for, every server those link to (an
        engine of its own gets its own database and queue: two engines on one RabbitMQ would take each other's
        messages), and every server linking to one of them (one object cannot serve two sets of peers)."""
        deps = {t.name: {t.link_target(link) for link in self.prepared.get(t).needs()} for t in order}
        mine = {t.name for t in order if not t.shared or t.name in private}
        while True:
            grown = mine | {d for name in mine for d in deps[name]} | {n for n, ds in deps.items() if ds & mine}
            if grown == mine:
                return mine
            mine = grown

    def _links_differ(self, running: Running, patterns: Sequence[str]) -> bool:
        return any(isinstance(link, Link) != proxied(name, patterns) for name, link in running.links.items())

    def _start(self, running: Running, peers: dict[str, Running], patterns: Sequence[str]) -> None:
        """Make the server's links (proxied where a pattern matches), then start it."""
        for name in running.server.needs():
            upstream = peers[running.template.link_target(name)].server.address
            if proxied(name, patterns):
                running.links[name] = self.ensure_toxiproxy().create(
                    name, upstream, listen_host=self.backend.shared_address, owner=running.ident)
            else:
                running.links[name] = upstream
        via = [n for n, link in running.links.items() if isinstance(link, Link)]
        self.progress(f"starting {running.template.name}" + (f" (through Toxiproxy: {', '.join(via)})" if via else ""))
        ctx = ServerContext(
            template=running.template, backend=self.backend, state_dir=self.state_dir / running.ident,
            log_dir=running.log_dir, links={n: link.listen if isinstance(link, Link) else link
                                         for n, link in running.links.items()},
            peers={name: r.server for name, r in peers.items()}, progress=self.progress)
        running.server.start(ctx)

    def _unlink(self, running: Running) -> None:
        for link in running.proxied().values():
            if self.toxiproxy is not None:
                self.toxiproxy.destroy(link.proxy)
        running.links.clear()

    def release(self, owner: str) -> None:
        """The run ``owner`` is over: stop the servers only it used (its own), keep the shared ones. Those that depend
        on others go first (started last), as in :meth:`close`: a Postgres asked to stop while its engine is still
        connected waits out its whole grace (smart shutdown) before it is killed."""
        with self._lock:
            for key, running in reversed(list(self.running.items())):
                running.owners.discard(owner)
                if key[-1] == owner:
                    self._stop(running)
                    del self.running[key]

    def _stop(self, running: Running) -> None:
        try:
            running.server.close()
        finally:
            self._unlink(running)
            shutil.rmtree(self.state_dir / running.ident, ignore_errors=True)

    def references(self, spec: SystemSpec, out_dir: Path, namespace: str, seconds: float) -> dict[str, Any]:
        """Reference ceilings of spec's servers (each server's ``references``), measured on fresh copies of them
        started for the purpose and stopped after: never on a server holding another run's work, and what the
        measurement leaves queued goes with them. A user's own engine is measured as it is."""
        owner = f"reference-{namespace}"
        try:
            got = self.acquire(spec, owner, private=[t.name for t in spec.servers], log_dir=out_dir / "logs")
            out: dict[str, Any] = {}
            for running in got.servers.values():
                out.update(running.server.references(out_dir, namespace, seconds))
            return out
        finally:
            self.release(owner)

    def manifest(self) -> dict[str, Any]:
        """What the manifest says of the servers that ran (versions, sources; never a secret). Their settings differ
        between systems (hatchet, hatchet-lite), so they are stated per system (``runs[].servers``), not here."""
        out: dict[str, Any] = {}
        for running in self.running.values():
            out.update({k: v for k, v in running.server.manifest().items() if k != "settings"})
        return out

    def secrets(self) -> list[str]:
        """Strings that must never appear in a run directory."""
        with self._lock:
            return [s for r in self.running.values() for s in r.server.secrets()]

    def close(self) -> None:
        """Stop every server (those others depend on last), then Toxiproxy; remove the private state."""
        try:
            for running in reversed(list(self.running.values())):
                try:
                    self._stop(running)
                except Exception as exc:  # noqa: BLE001 - stop the rest whatever one did
                    self.progress(f"stopping {running.template.name} failed: {exc}")
            self.running.clear()
        finally:
            try:
                if self.toxiproxy_process:
                    self.toxiproxy_process.stop()
            finally:
                self.backend.close()
                shutil.rmtree(self.state_dir, ignore_errors=True)
