"""Hatchet's engine as a server plug-in (``plugin = "apps.hatchet.engine:server"`` in system.toml).

:func:`server` returns the harness's own engine (:class:`HatchetEngine`, built by set-up from the
pinned module), or the user's (:class:`apps.hatchet.external.ExternalHatchet`, ``--engine external``).

The built engine runs as its production set-up runs it: ``hatchet-engine`` plus ``hatchet-api``,
on its own Postgres database and the message queue system.toml names (RabbitMQ for ``hatchet``;
the Postgres queue for ``hatchet-lite``), every setting in system.toml's ``settings`` with its
source. Set-up steps (migrations, tenant seeding, token minting) are one-shot commands run through
the backend like every process. The REST API binds every interface, so it runs in a private
network namespace (:mod:`harness.backends.netns`) whose only way out is relays: its port bridged
to 127.0.0.1, and one relay per server it reaches (its database, its queue).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from apps.hatchet import ceilings, tools
from apps.hatchet.external import ExternalHatchet, select_engine
from harness.backends import netns
from harness.backends.base import Health, Proc, free_port, stop_all
from harness.model.paths import PROJECT_ROOT
from harness.model.spec import ServerTemplate
from harness.runtime.ceilings import postgres_commits_per_s
from harness.servers.base import Server, ServerContext, ServerUnusable
from harness.servers.postgres import PostgresServer, pg_bin
from harness.tools import ToolMissing

TENANT = "707d0855-80ab-4e1f-a156-f1c4546cbf52"
"""The tenant ``hatchet-admin quickstart`` seeds."""
BASE_SETTINGS = {
    "SERVER_AUTH_COOKIE_DOMAIN": "localhost",
    "SERVER_AUTH_COOKIE_INSECURE": "true",
    "SERVER_GRPC_INSECURE": "true",
    "SERVER_HEALTHCHECK": "false",  # its health server would bind every interface
    "SERVER_SECURITY_CHECK_ENABLED": "false",
    "SERVER_LOGGER_LEVEL": "warn",
    "SERVER_LOGGER_FORMAT": "console",
    "DATABASE_LOGGER_LEVEL": "warn",
    "DATABASE_LOGGER_FORMAT": "console",
}
"""Settings of every engine here that are wiring, not tuning (system.toml's ``settings`` hold the tuning)."""


class HatchetEngine:
    """A real Hatchet engine (``hatchet-engine`` and ``hatchet-api`` at the pinned tag) started by the harness."""

    def __init__(self, template: ServerTemplate, built: bool = True) -> None:
        self.name = template.name
        """Its declared name (``engine``)."""
        self.built = built
        """Its programs run from set-up's builds (else a backend finds them in images by name: Docker)."""
        self.template = template
        """Its declaration: links (its database, its queue) and settings."""
        self.engine: Proc | None = None
        """The engine process."""
        self.api: list[Proc] = []
        """The REST API in its private network namespace, and its bridge (empty when not root)."""
        self.api_url = ""
        """Base URL of the REST API (the token's server URL), through the bridge."""
        self.host = ""
        """The address the engine binds."""
        self.grpc_port = 0
        """gRPC port (workers and the API reach it directly, or through a link a fault may target)."""
        self.token = ""
        """API token for tenant :data:`TENANT` (a secret: never logged)."""
        self.database = ""
        """Its database on its Postgres."""
        self.links: dict[str, str] = {}
        """Its links as of the last start (``engine->postgres`` -> host:port)."""
        self._ctx: ServerContext | None = None
        self._api_port = 0

    @property
    def address(self) -> str:
        """host:port of its gRPC endpoint."""
        return f"{self.host}:{self.grpc_port}" if self.grpc_port else ""

    def _bin(self, name: str) -> Path:
        return tools.bin_path(name, built=self.built)

    def needs(self) -> list[str]:
        """Its database and queue links (system.toml ``links``)."""
        return self.template.link_names()

    def _target_address(self, ctx: ServerContext, target: str, via: str) -> str:
        """Where ``via`` (a process of this server) reaches target: its link if it has one, else the server."""
        link = f"{via}->{target}"
        return ctx.links.get(link) or ctx.peers[target].address

    def _settings(self, places: Mapping[str, str]) -> dict[str, str]:
        """The engine's environment, its peers (``{postgres}``, ``{mq}`` in system.toml) at places."""
        return {**BASE_SETTINGS, **{k: v.format(database=self.database, **places)
                                    for k, v in self.template.settings.items()},
                "SERVER_PORT": str(self._api_port), "SERVER_URL": self.api_url,
                "SERVER_GRPC_PORT": str(self.grpc_port), "SERVER_GRPC_BIND_ADDRESS": self.host,
                "SERVER_GRPC_BROADCAST_ADDRESS": self.address}

    def start(self, ctx: ServerContext) -> None:
        """First start: database, migrations, tenant, token, then the engine and its API. Later (after
        :meth:`close`, e.g. on other links): the engine and its API again, on the same database and token."""
        self._ctx = ctx
        first = not self.token
        if first:
            self.host = ctx.backend.address(self.name)
            self.grpc_port, self._api_port = free_port(), free_port()
            self.api_url = f"http://{self.host}:{self._api_port}"  # the bridge's: the token's server URL names it
            self.database = "hatchet_" + re.sub(r"[^a-z0-9]+", "_", ctx.state_dir.name.lower())
            db = next(p for p in ctx.peers.values() if isinstance(p, PostgresServer))
            assert db.postgres is not None
            db.postgres.create_database(self.database)
        self.links = dict(ctx.links)
        env = self._settings({target: self._target_address(ctx, target, self.name) for target in ctx.peers})
        config = ctx.state_dir / "config"
        if first:
            ctx.state_dir.mkdir(parents=True, exist_ok=True)
            self._once(ctx, "hatchet-migrate", [str(self._bin("hatchet-migrate"))], env)
            self._once(ctx, "hatchet-admin", [str(self._bin("hatchet-admin")), "quickstart", "--skip", "certs",
                                              "--generated-config-dir", str(config), "--overwrite=false"], env)
            out = self._once(ctx, "hatchet-token", [str(self._bin("hatchet-admin")), "token", "create",
                                                    "--config", str(config), "--tenant-id", TENANT], env, secret=True)
            self.token = out.strip().splitlines()[-1].strip() if out.strip() else ""
            if not self.token.startswith("ey"):
                raise RuntimeError("hatchet-admin token create printed no token")
        self.engine = ctx.backend.process(
            name="engine", argv=[str(self._bin("hatchet-engine")), "--config", str(config)], env=env,
            log_path=ctx.log_dir / "engine.log", roles=("engine",), health=Health(tcp=(self.host, self.grpc_port)),
            stop_grace_s=10)
        self.engine.start()
        self.engine.wait_healthy(60)
        if netns.available():
            self._start_api(ctx, config)
        elif first:
            ctx.progress("not root: Hatchet's REST API is not started (it binds every interface); workers cannot"
                         " pause themselves on SIGTERM")

    def _once(self, ctx: ServerContext, name: str, argv: list[str], env: dict[str, str], secret: bool = False) -> str:
        """A set-up step through the backend (its output, a token included, is never logged when secret)."""
        return ctx.backend.run_once(name=name, argv=argv, env=env, log_path=ctx.log_dir / f"{name}.log",
                                    log_stdout=not secret).check(name)

    def _start_api(self, ctx: ServerContext, config: Path) -> None:
        """The REST API (workers pause through it on SIGTERM) in its namespace, with a relay to each peer."""
        sock = ctx.state_dir / "api.sock"
        relays: dict[str, tuple[int, Path, str]] = {}  # peer -> (port inside, relay socket, address outside)
        for target in ctx.peers:
            relays[target] = (free_port(), ctx.state_dir / f"relay-{target}.sock",
                              self._target_address(ctx, target, "engine-api"))
        env = self._settings({target: f"127.0.0.1:{port}" for target, (port, _, _) in relays.items()})
        forward = [arg for port, relay, _ in relays.values() for arg in ("--forward", f"{port}={relay}")]
        relay = [arg for _, path, out in relays.values() for arg in ("--relay", f"{path}={out}")]
        netns_cmd = [sys.executable, "-m", "harness.backends.netns"]
        bridge = ctx.backend.process(
            name="engine-api-bridge",
            argv=[*netns_cmd, "outside", "--unix", str(sock), "--host", self.host, "--port", str(self._api_port),
                  *relay],
            log_path=ctx.log_dir / "engine-api-bridge.log", roles=("engine-api",),
            health=Health(log="bridge listening"), cwd=PROJECT_ROOT, stop_grace_s=2)
        api = ctx.backend.process(
            name="engine-api",
            argv=[*netns_cmd, "inside", "--unix", str(sock), "--port", str(self._api_port), *forward, "--",
                  str(self._bin("hatchet-api")), "--config", str(config)],
            env=env, log_path=ctx.log_dir / "engine-api.log", roles=("engine-api",),
            health=Health(http=f"{self.api_url}/api/ready"), cwd=PROJECT_ROOT, stop_grace_s=10)
        self.api = [bridge, api]
        for proc in self.api:  # the relays listen before the API dials its database and queue through them
            proc.start()
            proc.wait_healthy(60)

    def client_env(self, namespace: str, listen: str) -> dict[str, str]:
        """What every Hatchet SDK process needs: the engine through its link, the token, the run's namespace."""
        return {"HATCHET_CLIENT_HOST_PORT": listen, "HATCHET_CLIENT_TOKEN": self.token,
                "HATCHET_CLIENT_TLS_STRATEGY": "none", "HATCHET_CLIENT_NAMESPACE": namespace}

    def processes(self) -> list[Proc]:
        """The engine, then its API processes."""
        return [p for p in (self.engine, *self.api) if p]

    def outside(self) -> dict[str, str]:
        """All of it is the harness's."""
        return {}

    def references(self, out_dir: Path, namespace: str, seconds: float) -> dict[str, Any]:
        """The engine's ceiling (Hatchet's own load tester) and its database's commits on the engine's path,
        with the engine's pending work at the time."""
        env = self.client_env(namespace, self.address)
        pending = self.pending_work()
        out: dict[str, Any] = {"engine": {**ceilings.engine_runs_per_s(env, out_dir, seconds=round(seconds)),
                                          "pending_before": pending}}
        db_link = next((link for link in self.links if link.endswith("->postgres")), "")
        if db_link:
            host, _, port = self.links[db_link].rpartition(":")
            out["postgres"] = {**postgres_commits_per_s(pg_bin("psql").parent, host, int(port), out_dir,
                                                        seconds=max(1, round(seconds / 4))),
                               "path": f"{db_link} ({'Toxiproxy' if self._proxied(db_link) else 'direct'})"}
        return out

    def _proxied(self, link: str) -> bool:
        ctx = self._ctx
        return ctx is not None and ctx.links.get(link) != ctx.peers[self.template.link_target(link)].address

    def pending_work(self) -> dict[str, int] | str:
        """Runs the engine has not finished, from its database (what a ceiling measured now competes with)."""
        ctx = self._ctx
        db = next((p for p in (ctx.peers.values() if ctx else ()) if isinstance(p, PostgresServer)), None)
        if db is None or db.postgres is None:
            return "unknown"
        return ceilings.pending_runs(pg_bin("psql"), db.postgres.host, db.postgres.port, self.database)

    def secrets(self) -> list[str]:
        """The token."""
        return [self.token] if self.token else []

    def manifest(self) -> dict[str, Any]:
        """Version, where it comes from, and every setting system.toml gives it with its source (placeholders as
        written)."""
        return {"hatchet_engine": tools.VERSION,
                "engine_source": "built from the pinned module by set-up, started by the harness",
                "settings": self.template.stated()}

    def close(self) -> None:
        """Stop the API, then the engine (its database and token stay for a later start)."""
        stop_all(self.api)
        self.api = []
        if self.engine:
            self.engine.stop()


def server(template: ServerTemplate, options: Mapping[str, str]) -> Server:
    """The plug-in factory: the user's engine with ``--engine external`` (checked now), else the harness's own."""
    external = select_engine(options.get("engine"), os.environ)
    if external is not None:
        return ExternalHatchet.for_template(external, template)
    if options.get("backend") == "docker":  # its programs come from images: no Go build needed here
        return HatchetEngine(template, built=False)
    try:
        tools.bin_path("hatchet-engine")
    except ToolMissing as exc:
        raise ServerUnusable(str(exc)) from None
    return HatchetEngine(template)
