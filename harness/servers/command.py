"""A server that is a command line (``[[server]]`` with ``command``): Celery's Redis, Hatchet's RabbitMQ.

Its placeholders are filled at start: ``{host}`` and ``{port}`` (picked free, kept across restarts),
``{ports.NAME}`` for each extra port it declares, ``{state_dir}`` (its private data, kept across
restarts), ``{here}`` (its system.toml's directory), ``{python}``, ``{name}``, ``{grace_s}``, and
``{<server>}`` for each server it links to.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

from harness.backends.base import Health, Proc, free_port
from harness.model.spec import ServerTemplate
from harness.servers.base import Defaults, ServerContext


def health_of(health: dict[str, str], subst: dict[str, Any]) -> Health:
    """A health check (a ``health`` table of system.toml) with its placeholders filled."""
    h = {k: v.format(**subst) for k, v in health.items()}
    tcp = (str(subst.get("host", "127.0.0.1")), int(h["tcp"])) if "tcp" in h else None
    return Health(http=h.get("http"), tcp=tcp, log=h.get("log"))


class CommandServer(Defaults):
    """One process started from its declared command line."""

    def __init__(self, template: ServerTemplate) -> None:
        self.name = template.name
        """Its declared name."""
        self.template = template
        """Its declaration."""
        self.process: Proc | None = None
        """Its process, once started."""
        self.host = ""
        """The address it binds."""
        self.port = 0
        """Its main port (``{port}``)."""
        self.ports: dict[str, int] = {}
        """Its extra ports by name (``{ports.NAME}``)."""

    @property
    def address(self) -> str:
        """``host:port`` of its main port."""
        return f"{self.host}:{self.port}" if self.port else ""

    def needs(self) -> list[str]:
        """Its declared links."""
        return self.template.link_names()

    def start(self, ctx: ServerContext) -> None:
        """Start the command (ports picked on the first start, kept after) and wait until healthy."""
        if not self.port:
            self.host = ctx.backend.address(self.name)
            # Picked on this machine's loopback: a host's address exists only inside its namespace.
            self.port = free_port()
            self.ports = {name: free_port() for name in self.template.ports}
        ctx.state_dir.mkdir(parents=True, exist_ok=True)
        subst: dict[str, Any] = {
            "python": sys.executable, "name": self.name, "host": self.host, "port": str(self.port),
            "grace_s": f"{ctx.grace_s:g}", "state_dir": str(ctx.state_dir), "here": self.template.here,
            "ports": SimpleNamespace(**{k: str(v) for k, v in self.ports.items()}),
            **{self.template.link_target(link): address for link, address in ctx.links.items()},
        }
        self.process = ctx.backend.process(
            name=self.name, argv=[a.format(**subst) for a in self.template.command],
            env={k: v.format(**subst) for k, v in self.template.env.items()},
            log_path=ctx.log_dir / f"{self.name}.log", roles=self.template.roles,
            health=health_of(self.template.health, subst), cwd=ctx.state_dir, stop_grace_s=ctx.grace_s + 1,
        )
        self.process.start()
        took = self.process.wait_healthy(60)
        ctx.progress(f"  {self.name} (server) healthy in {took:.1f}s")

    def processes(self) -> list[Proc]:
        """Its one process."""
        return [self.process] if self.process else []

    def manifest(self) -> dict[str, Any]:
        """Its command line as run, and its settings with their sources."""
        return {"command": " ".join(self.template.command), "settings": self.template.stated()}

    def close(self) -> None:
        """Stop its process."""
        if self.process is not None:
            self.process.stop()
