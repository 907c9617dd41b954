"""The reaper: a watchdog process that kills every process group of a run once the harness is gone.

The harness starts one reaper per Python process and tells it, over a pipe, the process group
of each child it starts (and forgets). When the pipe closes (the harness exited, crashed, or was
SIGKILLed) the reaper SIGKILLs every group still registered, then every process that carries the
run's marker (``HARNESS_RUN_ROOT``), so no server outlives a run.
"""

from __future__ import annotations

import json
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


def on_exit(argv: list[str]) -> None:
    """Register a clean-up command (e.g. removing a network namespace) to run if this process dies first."""
    with _lock:
        pipe = _ensure()
        pipe.write(f"!{json.dumps(argv)}\n")
        pipe.flush()


def on_exit_done(argv: list[str]) -> None:
    """Unregister a clean-up command the harness ran itself."""
    with _lock:
        if _pipe is None or _owner_pid != os.getpid():
            return
        try:
            _pipe.write(f"~{json.dumps(argv)}\n")
            _pipe.flush()
        except (BrokenPipeError, ValueError):
            pass


def _main() -> None:
    # The reaper must outlive the harness's own Ctrl-C and terminal hang-up.
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    groups: set[int] = set()
    cleanups: list[str] = []
    for line in sys.stdin:
        line = line.strip()
        if line.startswith("+"):
            groups.add(int(line[1:]))
        elif line.startswith("-"):
            groups.discard(int(line[1:]))
        elif line.startswith("!"):
            cleanups.append(line[1:])
        elif line.startswith("~") and line[1:] in cleanups:
            cleanups.remove(line[1:])
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    _sweep()
    for argv in reversed(cleanups):  # after the processes: a namespace goes once nothing runs in it
        subprocess.run(json.loads(argv), capture_output=True)


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
