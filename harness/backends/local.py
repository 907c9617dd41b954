"""The default backend: every server is a local process in its own session (process group).

A signal reaches the whole group, as a machine or container dying would, and the reaper
(:mod:`harness.backends.reaper`) kills the group if the harness dies. Output goes to a log file in
the run directory.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.backends import reaper
from harness.backends.base import Health, HealthTimeout, OneShot, http_ok, stop_all, tcp_open

_scratch: Path | None = None
_scratch_lock = threading.Lock()


def scratch() -> Path:
    """The temporary directory (TMPDIR) of every process this harness process starts, made on first use and removed
    with it, whatever way it ends (the reaper): a SIGKILLed child's temporary files (Python multiprocessing's
    ``pymp-*``, a worker's) cannot outlive the run."""
    global _scratch
    with _scratch_lock:
        if _scratch is None:
            _scratch = Path(tempfile.mkdtemp(prefix="harness-tmp-"))
            _scratch.chmod(0o1777)  # like /tmp: Postgres runs as another user
            reaper.remove_with_run(_scratch)
            atexit.register(shutil.rmtree, _scratch, True)
        return _scratch


def others_reach(path: Path) -> bool:
    """Whether a user with no rights of its own can walk down to path (every directory on the way o+x): where a
    server run as another user (Postgres) or an unprivileged harness can start from."""
    return all(d.stat().st_mode & 0o001 for d in (path, *path.parents))


def child_env(extra: dict[str, str] | None) -> dict[str, str]:
    """A child's environment: the harness's own, TMPDIR in the run's scratch, then its own settings."""
    return {**os.environ, "TMPDIR": str(scratch()), **(extra or {})}


def _wait_stopped(pgid: int, timeout_s: float = 2.0) -> None:
    """Return once every process of group pgid has stopped, as ``docker pause`` does: a SIGSTOP lands
    asynchronously, and until it has the process may still run (and take a lock the nemesis holds for it). Gives
    up after timeout_s: a process in uninterruptible sleep stops only when it wakes."""
    def running() -> bool:
        stats = (reaper.proc_stat(int(e)) for e in os.listdir("/proc") if e.isdigit())
        return any(st and st.pgrp == pgid and st.state not in "TtZX" for st in stats)

    deadline = time.monotonic() + timeout_s
    while running() and time.monotonic() < deadline:
        time.sleep(0.001)


@dataclass
class ManagedProcess:
    """One server process of a stack, restartable with the same command, env and ports."""

    name: str
    """Unique name within the stack, e.g. ``api`` or ``worker-2``."""
    argv: list[str]
    """Command line."""
    log_path: Path
    """File that collects stdout and stderr of every incarnation."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment on top of the harness's own."""
    roles: tuple[str, ...] = ()
    """What the process does for its system: api, worker, engine, db, proxy, downstream."""
    health: Health = field(default_factory=Health)
    """Readiness check."""
    cwd: Path | None = None
    """Working directory."""
    user: str | None = None
    """Run as this OS user (Postgres refuses to run as root)."""
    stop_grace_s: float = 10.0
    """How long a graceful stop waits after SIGTERM before SIGKILL."""
    popen: subprocess.Popen[bytes] | None = None
    """The current incarnation, if started."""
    incarnation: int = 0
    """How many times it was started."""
    _log_offset: int = 0

    @property
    def pid(self) -> int | None:
        """Process id of the current incarnation."""
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        """True while the current incarnation runs (a paused process is alive)."""
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        """Start a new incarnation (no health wait)."""
        if self.alive():
            raise RuntimeError(f"{self.name} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            log.write(f"--- harness: start #{self.incarnation + 1} of {self.name} at {time.time():.3f}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env(self.env),
                cwd=self.cwd,
                user=self.user,
                start_new_session=True,
            )
        reaper.watch(self.popen.pid)
        self.incarnation += 1

    def wait_healthy(self, timeout: float = 60.0) -> float:
        """Block until the health check passes; return the seconds it took."""
        t0 = time.monotonic()
        pattern = re.compile(self.health.log) if self.health.log else None
        while True:
            if not self.alive():
                raise HealthTimeout(f"{self.name} exited with status {self.exit_code()} (log: {self.log_path})"
                                    + self._log_tail())
            if self._healthy(pattern):
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise HealthTimeout(
                    f"{self.name} not healthy after {timeout:.0f}s ({self.health.describe()}; log: {self.log_path})"
                    + self._log_tail()
                )
            time.sleep(0.05)

    def _log_tail(self, lines: int = 5) -> str:
        """The last lines this incarnation logged, for an error message."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(self._log_offset)
                tail = f.read().decode(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return ""
        return "".join(f"\n  | {line}" for line in tail)

    def _healthy(self, pattern: re.Pattern[str] | None) -> bool:
        h = self.health
        if h.http and not http_ok(h.http):
            return False
        if h.tcp and not tcp_open(*h.tcp):
            return False
        if pattern is not None:
            with self.log_path.open("rb") as f:
                f.seek(self._log_offset)
                if not pattern.search(f.read().decode(errors="replace")):
                    return False
        return True

    def exit_code(self) -> int | None:
        """Exit status of the current incarnation (negative: killed by that signal)."""
        return self.popen.poll() if self.popen else None

    def wait(self, timeout: float) -> bool:
        """Block until the current incarnation exited (at most timeout seconds); True if it did."""
        if self.popen is None:
            return True
        try:
            self.popen.wait(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            return False
        return True

    def signal(self, sig: int, group: bool = True) -> None:
        """Send sig to the whole process group of the current incarnation, or to its leader only.

        SIGTERM goes to the leader only, as an orchestrator stopping a container does: the process
        then stops its own children (Hatchet's worker drains through its listener child; Postgres's
        postmaster shuts its backends down). SIGKILL and SIGSTOP hit the whole group, like a dying or
        frozen machine.
        """
        if self.popen is None:
            raise RuntimeError(f"{self.name} was never started")
        try:
            if group:
                os.killpg(self.popen.pid, sig)
            else:
                os.kill(self.popen.pid, sig)
        except ProcessLookupError:
            return
        if sig == signal.SIGSTOP and group:
            _wait_stopped(self.popen.pid)

    def kill(self) -> None:
        """SIGKILL the group (even after the leader exited) and reap it."""
        if self.popen is None:
            return
        self.signal(signal.SIGKILL)
        self._reap(timeout=10)

    def stop(self, grace_s: float | None = None) -> None:
        """Graceful stop: SIGCONT (in case it is paused), SIGTERM, wait, then SIGKILL."""
        stop_all([self], grace_s)

    def _reap(self, timeout: float) -> None:
        assert self.popen is not None
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:  # pragma: no cover - a SIGKILLed process always goes
            pass
        reaper.forget(self.popen.pid)

    def restart(self, health_timeout: float = 60.0) -> float:
        """Start again after a stop or kill; return seconds to healthy."""
        if self.alive():
            self.stop()
        self.start()
        return self.wait_healthy(health_timeout)




class LocalBackend:
    """The default backend: every server is a local process in its own process group."""

    name = "process"
    shared_address = "127.0.0.1"

    def place(self, units: Sequence[Sequence[str]]) -> None:
        """Every server runs on this machine's loopback."""

    def process(self, *, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None,
                roles: tuple[str, ...] = (), health: Health | None = None, cwd: Path | None = None,
                user: str | None = None, stop_grace_s: float = 10.0) -> ManagedProcess:
        """A local process, not started yet."""
        return ManagedProcess(name=name, argv=argv, log_path=log_path, env=env or {}, roles=roles,
                              health=health or Health(), cwd=cwd, user=user, stop_grace_s=stop_grace_s)

    def address(self, name: str) -> str:
        """Every server binds loopback."""
        return "127.0.0.1"

    def run_once(self, *, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None, timeout_s: float = 120.0, log_stdout: bool = True) -> OneShot:
        """Run argv here to completion (stderr into log_path, stdout returned and logged unless secret)."""
        return run_local(argv, log_path, env, cwd, timeout_s, log_stdout=log_stdout)

    def close(self) -> None:
        """Nothing to release."""


def run_local(argv: list[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None,
              timeout_s: float = 120.0, prefix: Sequence[str] = (), log_stdout: bool = True) -> OneShot:
    """Run ``prefix + argv`` as a local process to completion, its output appended to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"--- harness: one-shot {argv[0]} at {time.time():.3f}\n".encode())
        log.flush()
        proc = subprocess.run([*prefix, *argv], env=child_env(env), cwd=cwd, stdout=subprocess.PIPE,
                              stderr=log, timeout=timeout_s, start_new_session=True)
        log.write(proc.stdout if log_stdout else b"(its output is a secret: not logged)\n")
    return OneShot(proc.returncode, proc.stdout.decode(errors="replace"), log_path)
