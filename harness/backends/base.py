"""The backend seam: what runs the servers of a run (local processes, hosts, containers).

:class:`Proc` is what the stack, the nemesis and the sampler need of a server, whatever runs it;
a :class:`ProcessBackend` makes them, places them and runs one-shot commands (migrations, token
minting) the same way. :mod:`harness.backends.local` runs local processes (the default),
:mod:`~harness.backends.hosts` places them on network hosts of this machine and
:mod:`~harness.backends.docker` in containers.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class HealthTimeout(RuntimeError):
    """A process did not become healthy in time."""


@dataclass(frozen=True)
class Health:
    """How to tell a process is ready: an HTTP URL answering 2xx, a TCP port, or a log line."""

    http: str | None = None
    tcp: tuple[str, int] | None = None
    log: str | None = None

    def describe(self) -> str:
        """A short human description for errors and progress lines."""
        if self.http:
            return f"GET {self.http}"
        if self.tcp:
            return f"tcp {self.tcp[0]}:{self.tcp[1]}"
        return f"log line /{self.log}/" if self.log else "started"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on host right now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when GET url answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


class Proc(Protocol):
    """One server of a stack as the stack, the nemesis and the sampler see it, whatever runs it."""

    name: str
    roles: tuple[str, ...]
    log_path: Path
    health: Health
    stop_grace_s: float
    incarnation: int

    @property
    def pid(self) -> int | None:
        """Host process id of the current incarnation's main process (memory samples), if running."""

    def alive(self) -> bool:
        """True while the current incarnation runs (a paused one is alive)."""

    def start(self) -> None:
        """Start a new incarnation (no health wait)."""

    def wait_healthy(self, timeout: float = 60.0) -> float:
        """Block until healthy; return the seconds it took (HealthTimeout otherwise)."""

    def wait(self, timeout: float) -> bool:
        """Block until the current incarnation exited, at most timeout seconds; True if it did."""

    def exit_code(self) -> int | None:
        """Exit status of the current incarnation (negative: killed by that signal), None while running."""

    def signal(self, sig: int, group: bool = True) -> None:
        """Deliver sig to the whole process group (or the main process only)."""

    def kill(self) -> None:
        """SIGKILL everything of it and reap."""

    def stop(self, grace_s: float | None = None) -> None:
        """Graceful stop: resume, SIGTERM, wait up to the grace, then SIGKILL."""

    def restart(self, health_timeout: float = 60.0) -> float:
        """Start again after a stop or kill; return seconds to healthy."""


@dataclass(frozen=True)
class OneShot:
    """What a one-shot command did."""

    returncode: int
    """Its exit status."""
    stdout: str
    """Its standard output (its standard error goes to the log only)."""
    log_path: Path
    """Where its output was logged."""

    def check(self, what: str) -> str:
        """stdout, or RuntimeError naming what failed with the last lines of its log."""
        if self.returncode != 0:
            try:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
            except OSError:
                tail = []
            raise RuntimeError(f"{what} failed (exit {self.returncode}): {' | '.join(tail)} (log: {self.log_path})")
        return self.stdout


class ProcessBackend(Protocol):
    """Makes the servers of a run: local processes, containers, ..."""

    name: str
    """``process`` (local processes), ``docker``, ..."""

    @property
    def shared_address(self) -> str:
        """Where the harness's own servers listen so every process can reach them (Toxiproxy's links, the ledger)."""

    def place(self, units: Sequence[Sequence[str]]) -> None:
        """Put these groups of servers (by name) where they will run, e.g. on hosts; most backends ignore it."""

    def process(self, *, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None,
                roles: tuple[str, ...] = (), health: Health | None = None, cwd: Path | None = None,
                user: str | None = None, stop_grace_s: float = 10.0) -> Proc:
        """A server, not started yet."""

    def address(self, name: str) -> str:
        """The address the server ``name`` binds and is reached at (127.0.0.1, or its host's)."""

    def run_once(self, *, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None, timeout_s: float = 120.0, log_stdout: bool = True) -> OneShot:
        """Run a one-shot command (migrations, token minting) where ``name``'s servers run, to completion; its
        stdout is returned, and logged unless ``log_stdout`` is False (it holds a secret)."""

    def close(self) -> None:
        """Release what the backend holds (every server it made is stopped by then)."""


def stop_all(procs: list[Proc], grace_s: float | None = None) -> None:
    """Stop servers together: SIGTERM to all, wait up to each one's grace, then SIGKILL what is left."""
    running = [p for p in procs if p.incarnation > 0]
    for p in running:
        if p.alive():
            p.signal(signal.SIGCONT)  # a paused process cannot handle SIGTERM
            p.signal(signal.SIGTERM, group=False)
    t0 = time.monotonic()
    for p in running:
        p.wait((p.stop_grace_s if grace_s is None else grace_s) - (time.monotonic() - t0))
        p.kill()  # stragglers of the group, even after the leader exited


RUN_MARKER = "HARNESS_RUN_ROOT"
"""Environment variable every process of a run inherits (its run directory): finds leftovers."""


def processes_marked(root: str) -> list[tuple[int, str]]:
    """(pid, command line) of live processes whose environment carries RUN_MARKER=root."""
    needle = f"{RUN_MARKER}={root}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            status = (entry / "stat").read_text()
            if status.rsplit(")", 1)[1].split()[0] == "Z":  # a zombie holds nothing; its parent reaps it
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        found.append((int(entry.name), cmd))
    return found
