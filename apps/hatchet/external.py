"""An engine the user already runs (self-hosted, several replicas, Hatchet Cloud): the second engine source.

Selected with ``--engine external``; the engine is named by the SDK's own settings
(``HATCHET_CLIENT_TOKEN``, ``HATCHET_CLIENT_HOST_PORT``, ``HATCHET_CLIENT_TLS_STRATEGY``,
``HATCHET_CLIENT_SERVER_URL`` and the SDK's other ``HATCHET_CLIENT_*`` variables; the token alone
names both addresses). The harness then starts only what it owns (apps, workers, the downstream,
Toxiproxy links in front of the engine's address so link faults still apply), uses one fresh
namespace per scenario run (refusing one that already has workflows there), and never deletes or
cancels anything. Faults that need the engine's process or database are not applicable.

Before anything starts, :meth:`ExternalHatchet.from_env` checks the settings, the gRPC address,
and the token against the REST API, within a few seconds: a bad token or an unreachable engine is
one line and exit 2, before any load is sent. The token is a secret: it lives in memory and in the
environments of the processes that need it, and is scrubbed from every file of the run.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apps.hatchet import ceilings
from harness.backends.base import Proc
from harness.model.spec import ServerTemplate
from harness.servers.base import ServerContext, ServerUnusable

PREFIX = "HATCHET_CLIENT_"
"""The SDK's settings: every variable with this prefix is passed to the processes (namespace excepted)."""
CHECK_TIMEOUT_S = 5.0
"""Each pre-flight check's timeout (three checks: well within 15 s)."""


class EngineUnusable(ServerUnusable):
    """The external engine's settings are missing or wrong, or it does not answer: one line, exit 2."""


def _claims(token: str) -> dict[str, Any]:
    try:
        part = token.split(".")[1]
        data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        return data
    except (IndexError, ValueError) as exc:
        raise EngineUnusable("HATCHET_CLIENT_TOKEN is not a Hatchet API token (a JWT)") from exc


def _get(url: str, token: str | None) -> Any:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=CHECK_TIMEOUT_S) as resp:
        return json.loads(resp.read() or b"null")


@dataclass
class ExternalHatchet:
    """A Hatchet engine outside the harness, used through its own client settings."""

    address: str
    """host:port of its gRPC endpoint (what links and processes connect to)."""
    server_url: str
    """Base URL of its REST API."""
    tenant: str
    """Tenant the token belongs to."""
    version: str
    """Version the engine reports."""
    token: str = field(repr=False)
    """API token (a secret: never logged)."""
    settings: dict[str, str] = field(default_factory=dict, repr=False)
    """The user's other HATCHET_CLIENT_* settings (TLS strategy, ...), passed on unchanged."""
    template: ServerTemplate | None = None
    """Its declaration in the system (the processes and links that are not the harness's to fault)."""
    name: str = "engine"
    """Its declared name."""
    _checked: set[str] = field(default_factory=set, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ExternalHatchet:
        """The engine env names, checked: settings, gRPC reachable, token accepted by the REST API."""
        token = env.get(f"{PREFIX}TOKEN", "")
        if not token:
            raise EngineUnusable("--engine external needs HATCHET_CLIENT_TOKEN (and, unless the token names them, "
                                 "HATCHET_CLIENT_HOST_PORT and HATCHET_CLIENT_SERVER_URL)")
        claims = _claims(token)
        address = env.get(f"{PREFIX}HOST_PORT") or str(claims.get("grpc_broadcast_address") or "")
        server_url = (env.get(f"{PREFIX}SERVER_URL") or str(claims.get("server_url") or "")).rstrip("/")
        tenant = str(claims.get("sub") or "")
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not server_url.startswith(("http://", "https://")) or not tenant:
            raise EngineUnusable(f"external engine: gRPC address {address!r}, REST URL {server_url!r}: set "
                                 "HATCHET_CLIENT_HOST_PORT=host:port and HATCHET_CLIENT_SERVER_URL=http(s)://...")
        try:
            socket.create_connection((host, int(port)), timeout=CHECK_TIMEOUT_S).close()
        except OSError as exc:
            raise EngineUnusable(f"external engine: cannot reach its gRPC endpoint {address} ({exc})") from None
        try:
            version = str((_get(f"{server_url}/api/v1/version", None) or {}).get("version") or "unknown")
            _get(f"{server_url}/api/v1/tenants/{tenant}/workflows?limit=1", token)
        except urllib.error.HTTPError as exc:
            why = "the token was refused" if exc.code in (401, 403) else f"HTTP {exc.code}"
            raise EngineUnusable(f"external engine: {why} by its REST API at {server_url}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise EngineUnusable(f"external engine: its REST API at {server_url} does not answer ({exc})") from None
        settings = {k: v for k, v in env.items() if k.startswith(PREFIX) and k not in
                    (f"{PREFIX}TOKEN", f"{PREFIX}HOST_PORT", f"{PREFIX}NAMESPACE", f"{PREFIX}SERVER_URL")}
        return cls(address=address, server_url=server_url, tenant=tenant, version=version, token=token,
                   settings=settings)

    @classmethod
    def for_template(cls, engine: ExternalHatchet, template: ServerTemplate) -> ExternalHatchet:
        """engine as the server template declares it."""
        return dataclasses.replace(engine, template=template, name=template.name)

    def needs(self) -> list[str]:
        """Nothing of the system's: the user's engine has its own database and queue."""
        return []

    def start(self, ctx: ServerContext) -> None:
        """Nothing to start: the engine is the user's (checked before the run)."""

    def check_namespace(self, namespace: str) -> None:
        """Refuse a namespace that already holds workflows: this run must not meet anyone else's."""
        try:
            rows = (_get(f"{self.server_url}/api/v1/tenants/{self.tenant}/workflows?limit=1000", self.token)
                    or {}).get("rows") or []
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise EngineUnusable(f"external engine: cannot list its workflows ({exc})") from None
        taken = [r.get("name") for r in rows if str(r.get("name", "")).lower().startswith(namespace.lower())]
        if taken:
            raise EngineUnusable(f"external engine: namespace {namespace!r} already holds {taken[0]!r}: not unique")

    def client_env(self, namespace: str, listen: str) -> dict[str, str]:
        """What every SDK process of a run needs: the user's settings, the token, this run's namespace (refused
        once if it already holds workflows), the engine through listen (a link, or the engine itself)."""
        if namespace not in self._checked:
            self.check_namespace(namespace)  # a user's engine: never share a namespace
            self._checked.add(namespace)
        env = {**self.settings, f"{PREFIX}TOKEN": self.token, f"{PREFIX}SERVER_URL": self.server_url,
               f"{PREFIX}NAMESPACE": namespace, f"{PREFIX}HOST_PORT": listen}
        if listen != self.address and f"{PREFIX}TLS_SERVER_NAME" not in self.settings:
            env[f"{PREFIX}TLS_SERVER_NAME"] = self.address.rpartition(":")[0]  # TLS still names the engine's host
        return env

    def processes(self) -> list[Proc]:
        """None of its processes is the harness's to signal."""
        return []

    def outside(self) -> dict[str, str]:
        """Its processes, database and queue (as the system declares them), with why they are not ours to fault."""
        why = "external engine: its process and database are not the harness's to fault"
        t = self.template
        names = [*t.process_roles(), *t.link_names(), *(t.link_target(link) for link in t.link_names())] if t else []
        return dict.fromkeys([self.name, *names], why)

    def references(self, out_dir: Path, namespace: str, seconds: float) -> dict[str, Any]:
        """The engine's ceiling by Hatchet's own load tester, run against the user's engine in a namespace of its
        own (no database figure: it is not ours to reach)."""
        env = {**self.settings, f"{PREFIX}TOKEN": self.token, f"{PREFIX}SERVER_URL": self.server_url,
               f"{PREFIX}NAMESPACE": namespace, f"{PREFIX}HOST_PORT": self.address}
        return {"engine": ceilings.engine_runs_per_s(env, out_dir, seconds=round(seconds))}

    def secrets(self) -> list[str]:
        """The token."""
        return [self.token]

    def manifest(self) -> dict[str, Any]:
        """The version the engine reports and where it is (never its token)."""
        return {"hatchet_engine": self.version, "engine_source": f"external ({self.address})"}

    def close(self) -> None:
        """Nothing to stop: the engine is the user's."""


ENGINES = ("built", "external")
"""Engine sources ``--engine`` takes: the harness's own (default), or the user's."""


def select_engine(choice: str | None, env: Mapping[str, str]) -> ExternalHatchet | None:
    """The external engine ``--engine external`` names (checked), or None for the harness's own.

    Without ``--engine``, HATCHET_CLIENT_TOKEN in the environment is refused rather than guessed at:
    sending load to an engine must be asked for by name.
    """
    if choice not in (None, *ENGINES):
        raise EngineUnusable(f"--engine {choice!r}: expected one of {', '.join(ENGINES)}")
    if choice == "external":
        return ExternalHatchet.from_env(env)
    if choice is None and env.get(f"{PREFIX}TOKEN"):
        raise EngineUnusable("HATCHET_CLIENT_TOKEN is set: pass --engine external to run against that engine "
                             "(it sends it real load), or --engine built for the harness's own")
    return None
