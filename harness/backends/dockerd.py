"""A private Docker engine for the Docker tier on a machine where none runs (this project's CI).

``dockerd`` runs as root with its own data root (kept in the tools cache, so images built once are
reused), exec root, pid file and Unix socket, so it collides with no other engine on the machine;
``--iptables=false``, ``--ip-forward=false`` and ``--bridge=none`` leave the host's firewall, routing
and interfaces as they were. It is a process of the harness like any server: registered with the
reaper (gone if the harness dies), stopped by whoever started it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from harness import tools
from harness.backends.base import Health
from harness.backends.docker import LABEL_RUN, DockerUnavailable, connect, containers, engine_address, force_remove
from harness.backends.local import LocalBackend, ManagedProcess

DATA_ROOT = tools.CACHE_DIR / "dockerd"
"""The private engine's data root: images and build cache, kept between runs."""


def _lock(data_root: Path) -> IO[str]:
    """Hold the data root: two engines on one data root would corrupt it."""
    data_root.mkdir(parents=True, exist_ok=True)
    f = (data_root.parent / f"{data_root.name}.lock").open("w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise DockerUnavailable(f"another private dockerd uses {data_root}; wait for it to finish") from None
    return f


@contextmanager
def private_engine(log_dir: Path, data_root: Path = DATA_ROOT) -> Iterator[str]:
    """Start a private dockerd, yield its address (``unix://...``), stop it on exit (even on errors)."""
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    if not Path(dockerd).exists():
        raise DockerUnavailable("no Docker engine is reachable and dockerd is not installed "
                                "(`make docker-setup` installs Debian's docker.io)")
    if os.geteuid() != 0:
        raise DockerUnavailable("no Docker engine is reachable, and starting a private dockerd needs root")
    lock = _lock(data_root)
    run = Path(tempfile.mkdtemp(prefix="harness-dockerd-"))  # short: a Unix socket path has 107 bytes at most
    host = f"unix://{run}/docker.sock"
    proc: ManagedProcess = LocalBackend().process(
        name="dockerd",
        argv=[dockerd, "--data-root", str(data_root), "--exec-root", str(run / "exec"), "--pidfile",
              str(run / "dockerd.pid"), "--host", host, "--storage-driver", "overlay2", "--iptables=false",
              "--ip-forward=false", "--bridge=none"],
        log_path=log_dir / "dockerd.log", health=Health(log="API listen on"), stop_grace_s=30,
    )
    try:
        proc.start()
        proc.wait_healthy(60)
        client = connect(host)
        for stale in containers(client, {"label": LABEL_RUN}):
            force_remove(client, stale["Id"])  # a run whose harness and engine were both SIGKILLed: only ours use it
        client.close()
        yield host
    finally:
        proc.stop()
        _unmount_under(run)
        shutil.rmtree(run, ignore_errors=True)
        lock.close()


def _unmount_under(root: Path) -> None:
    """Detach what a stopped dockerd may leave mounted in its exec root (its network namespace files)."""
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(f"{root}/")), reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True)


@contextmanager
def engine(start_private: bool, log_dir: Path) -> Iterator[str]:
    """The engine to use: the one ``DOCKER_HOST`` (or the standard socket) names if it answers, else a private
    one when start_private (root only); sets ``DOCKER_HOST`` while it lasts. DockerUnavailable otherwise."""
    try:
        connect().close()
    except DockerUnavailable:
        if not start_private:
            raise
    else:
        yield engine_address()
        return
    saved = os.environ.get("DOCKER_HOST")
    with private_engine(log_dir) as host:
        os.environ["DOCKER_HOST"] = host
        try:
            yield host
        finally:
            if saved is None:
                os.environ.pop("DOCKER_HOST", None)
            else:
                os.environ["DOCKER_HOST"] = saved


def running_private_engines(data_root: Path = DATA_ROOT) -> list[int]:
    """Pids of dockerd processes on the private data root (none should outlive the tier that started it)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["name"] == "dockerd" and str(data_root) in cmd:
            found.append(proc.pid)
    return found


def main() -> int:
    """``python -m harness.backends.dockerd check``: exit 1 if a private dockerd is still running (make docker-test)."""
    pids = running_private_engines()
    if pids:
        print(f"error: a private dockerd is still running (pid {', '.join(map(str, pids))})", file=sys.stderr)
        return 1
    print("no private dockerd left running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
