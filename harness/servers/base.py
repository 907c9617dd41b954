"""The server seam: what a system's server (a broker, an engine, a database) is to the harness.

A system declares its servers in ``system.toml`` (``[[server]]``). A server that is a command line
(Celery's Redis, Hatchet's RabbitMQ) needs nothing more (:class:`harness.servers.command.CommandServer`).
One that needs more (Hatchet's engine: migrations, a tenant, a token, its REST API in a network
namespace, or the user's own engine) names a factory in ``apps/<system>/`` (``plugin =
"apps.hatchet.engine:server"``) returning an object with this small interface. The harness starts
it when a run needs it, reaches it only through links, may fault what :meth:`Server.processes`
returns, asks it for reference ceilings, scrubs its secrets and records its manifest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.backends.base import Proc, ProcessBackend
from harness.model.spec import ServerTemplate

Progress = Callable[[str], None]


class ServerUnusable(ValueError):
    """A server's settings are wrong or what it names does not answer (checked before anything starts): one line,
    exit 2."""


@dataclass
class ServerContext:
    """What a server gets when it starts: where it runs, where its data and logs go, how it reaches its peers."""

    template: ServerTemplate
    """Its declaration."""
    backend: ProcessBackend
    """Runs its processes and one-shot commands (local processes, hosts, containers)."""
    state_dir: Path
    """Private data kept across restarts of this server (a database's files, generated keys): never in a report."""
    log_dir: Path
    """Where its processes log."""
    links: Mapping[str, str] = field(default_factory=dict)
    """Its links by name (``engine->postgres``) and the ``host:port`` each reaches (a Toxiproxy proxy or direct)."""
    peers: Mapping[str, Server] = field(default_factory=dict)
    """The servers its links lead to, by name, started before it (e.g. the Postgres it creates a database in)."""
    grace_s: float = 10.0
    """Graceful-shutdown seconds of its processes."""
    progress: Progress = lambda _: None
    """One-line progress messages."""


class Server(Protocol):
    """One server of a system, whatever it takes to run it."""

    name: str
    """Its declared name (links lead to ``<process>-><name>``)."""

    @property
    def address(self) -> str:
        """``host:port`` its clients reach (a link to it leads here); empty before start."""

    def needs(self) -> list[str]:
        """The links it makes to other servers (``engine->postgres``), started first; none for a user's own engine."""

    def start(self, ctx: ServerContext) -> None:
        """Start (or start again after :meth:`close`, on the same state) and return once it is healthy."""

    def client_env(self, namespace: str, listen: str) -> dict[str, str]:
        """Environment a system process reaching it at ``listen`` (its link) needs; ``namespace`` names the run."""

    def processes(self) -> list[Proc]:
        """Its processes a fault may hit (and the supervisor restarts)."""

    def outside(self) -> dict[str, str]:
        """Processes and links of it that exist but are not the harness's to fault, each with why."""

    def references(self, out_dir: Path, namespace: str, seconds: float) -> dict[str, Any]:
        """Reference ceilings measured now for about ``seconds`` each (capacity runs), e.g. ``{"engine": {...}}``;
        empty when none."""

    def secrets(self) -> list[str]:
        """Strings that must never reach a run directory (a token)."""

    def manifest(self) -> dict[str, Any]:
        """What results.json's manifest says of it (version, source, settings): never a secret."""

    def close(self) -> None:
        """Stop its processes (its state stays until the session ends)."""


class Defaults:
    """What a server that needs nothing special answers to the rest of the interface: no client environment, all of
    it the harness's to fault, no ceilings of its own, no secrets."""

    def client_env(self, namespace: str, listen: str) -> dict[str, str]:
        """Nothing: clients name it through ``{<server>}`` placeholders."""
        return {}

    def outside(self) -> dict[str, str]:
        """All of it is the harness's."""
        return {}

    def references(self, out_dir: Path, namespace: str, seconds: float) -> dict[str, Any]:
        """None of its own."""
        return {}

    def secrets(self) -> list[str]:
        """None."""
        return []


ServerFactory = Callable[[ServerTemplate, Mapping[str, str]], Server]
"""What ``plugin = "module:name"`` names: (declaration, the run's server options such as ``engine=external``) ->
a server not started yet; raises :class:`ServerUnusable` for bad options."""
