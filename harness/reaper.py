"""The reaper: a watchdog process that kills every process group of a run once the harness is gone.

The harness starts one reaper per Python process and tells it, over a pipe, the process group
of each child it starts (and forgets). When the pipe closes (the harness exited, crashed, or was
SIGKILLed) the reaper SIGKILLs every group still registered, then every process that carries the
run's marker (``HARNESS_RUN_ROOT``), so no server outlives a run. Containers of a run (Docker
backend) are registered by their engine and run label and removed first, while that engine still runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import IO

_lock = threading.Lock()
_pipe: IO[str] | None = None
_owner_pid: int | None = None


def _ensure() -> IO[str]:
    """Start this process's reaper on first use (again after a fork)."""
    global _pipe, _owner_pid
    if _pipe is None or _owner_pid != os.getpid():
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.reaper"],
            stdin=subprocess.PIPE,
            text=True,
            start_new_session=True,  # our own group kills must never hit the reaper
            close_fds=True,
        )
        assert proc.stdin is not None
        _pipe, _owner_pid = proc.stdin, os.getpid()
    return _pipe


def watch(pgid: int) -> None:
    """Register a process group to be killed if this process dies before it forgets it."""
    with _lock:
        pipe = _ensure()
        pipe.write(f"+{pgid}\n")
        pipe.flush()


def forget(pgid: int) -> None:
    """Unregister a process group that was stopped normally."""
    with _lock:
        if _pipe is None or _owner_pid != os.getpid():
            return
        try:
            _pipe.write(f"-{pgid}\n")
            _pipe.flush()
        except (BrokenPipeError, ValueError):
            pass


def watch_docker(host: str, run_label: str) -> None:
    """Register the containers, networks and volumes labelled run_label on the engine at host for removal."""
    with _lock:
        pipe = _ensure()
        pipe.write(f"d{host} {run_label}\n")
        pipe.flush()


def forget_docker(host: str, run_label: str) -> None:
    """Unregister a run whose containers were removed normally."""
    with _lock:
        if _pipe is None or _owner_pid != os.getpid():
            return
        try:
            _pipe.write(f"-d{host} {run_label}\n")
            _pipe.flush()
        except (BrokenPipeError, ValueError):
            pass


def _remove_docker(runs: set[str]) -> None:
    """Force-remove every container, network and volume of each registered run (``host label``)."""
    from harness.docker_backend import remove_labelled  # here: only a run that used Docker needs the SDK

    for entry in runs:
        host, _, label = entry.partition(" ")
        try:
            remove_labelled(host, label)
        except Exception:  # noqa: BLE001 - the engine may be gone too; the marker sweep still kills the processes
            pass


def _main() -> None:
    # The reaper must outlive the harness's own Ctrl-C and terminal hang-up.
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    groups: set[int] = set()
    docker_runs: set[str] = set()
    for line in sys.stdin:
        line = line.strip()
        if line.startswith("d"):
            docker_runs.add(line[1:])
        elif line.startswith("-d"):
            docker_runs.discard(line[2:])
        elif line.startswith("+"):
            groups.add(int(line[1:]))
        elif line.startswith("-"):
            groups.discard(int(line[1:]))
    _remove_docker(docker_runs)  # before the groups die: one of them may be the engine itself
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    _sweep()


def _sweep() -> None:
    """Kill what carries this run's marker: a child forked just as the harness died was never registered."""
    from harness.procs import RUN_MARKER, processes_marked  # here: procs imports this module

    root = os.environ.get(RUN_MARKER)
    for pid, _ in processes_marked(root) if root else []:
        try:
            if os.getpgid(pid) == pid:  # a group leader the harness started: its children go with it
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


if __name__ == "__main__":
    _main()
