"""The reaper: a watchdog process that cleans up after a run once the harness is gone, however it went.

The harness starts one reaper per Python process and tells it, over a pipe, the process group
of each child it starts (and forgets), the run markers (``HARNESS_RUN_ROOT``) its processes carry,
the directories to remove with the run (the private state directory) and clean-up commands
(removing the network namespaces of ``--hosts``). While the harness
lives, the reaper notes once a second which shared memory its run's processes map or create
(:mod:`harness.backends.leftovers`). When the pipe closes (the harness exited, raised, was interrupted or
SIGKILLed) the reaper SIGKILLs every group still registered, then every process that carries a
run marker, waits for them to go, and removes the directories and the shared memory segments and
semaphores those processes left, so neither a server nor its files outlive a run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, NamedTuple

from harness.backends.leftovers import Owned

OBSERVE_S = 1.0
"""How often the reaper notes the shared memory of the run's processes."""
GONE_TIMEOUT_S = 10.0
"""Longest wait, after the kill, for the run's processes to be gone before their files are removed."""

_lock = threading.Lock()
_pipe: IO[str] | None = None
_owner_pid: int | None = None
_marker_sent: str | None = None


def _ensure() -> IO[str]:
    """Start this process's reaper on first use (again after a fork); tell it the current run marker."""
    global _pipe, _owner_pid, _marker_sent
    if _pipe is None or _owner_pid != os.getpid():
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.backends.reaper"],
            stdin=subprocess.PIPE,
            text=True,
            start_new_session=True,  # our own group kills must never hit the reaper
            close_fds=True,
        )
        assert proc.stdin is not None
        _pipe, _owner_pid, _marker_sent = proc.stdin, os.getpid(), None
    from harness.backends.base import RUN_MARKER  # here: procs imports this module

    marker = os.environ.get(RUN_MARKER)
    if marker and marker != _marker_sent and "\n" not in marker:
        _pipe.write(f"r{marker}\n")  # a later session of this process has its own marker
        _marker_sent = marker
    return _pipe


def _send(line: str) -> None:
    with _lock:
        pipe = _ensure()
        pipe.write(line + "\n")
        pipe.flush()


def watch(pgid: int) -> None:
    """Register a process group to be killed if this process dies before it forgets it."""
    _send(f"+{pgid}")


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
    _send(f"!{json.dumps(argv)}")


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


def remove_with_run(path: Path) -> None:
    """Have directory path removed when this process ends, whatever way (its owner removes it earlier if it can)."""
    text = str(path.resolve())
    if "\n" in text:
        raise ValueError(f"cannot register a path with a newline: {text!r}")
    _send(f"d{text}")


class _Reaper:
    """The reaper's state: registered groups and markers, and what the run's processes own."""

    def __init__(self) -> None:
        from harness.backends.base import RUN_MARKER  # here: procs imports this module

        self.marker = RUN_MARKER
        self.groups: set[int] = set()
        self.roots: set[str] = {os.environ[RUN_MARKER]} if os.environ.get(RUN_MARKER) else set()
        self.owned = Owned()
        self.cleanups: list[str] = []  # commands (JSON argv) to run once the processes are gone
        self.lock = threading.Lock()  # messages vs. scans
        self.scan = threading.Lock()  # the observer's scan vs. the final one
        self.done = threading.Event()
        # pid -> (carries a marker, parent) when first seen; pids are not reused within a second
        self._seen: dict[int, tuple[bool, int | None]] = {}

    def handle(self, line: str) -> None:
        """Apply one message of the pipe."""
        kind, arg = line[:1], line[1:]
        with self.lock:
            if kind == "+":
                self.groups.add(int(arg))
            elif kind == "-":
                self.groups.discard(int(arg))
            elif kind == "r":
                self.roots.add(arg)
                self._seen = {pid: seen for pid, seen in self._seen.items() if seen[0]}  # re-check the others
            elif kind == "d":
                self.owned.dirs.add(arg)
            elif kind == "!":
                self.cleanups.append(arg)
            elif kind == "~" and arg in self.cleanups:
                self.cleanups.remove(arg)

    def ours(self) -> list[int]:
        """Live processes of the run: in a registered group, carrying one of its markers, or a child of one.

        Children count because some servers start theirs in new sessions (Postgres's backends call
        setsid) and a run started without a session (a test's Infra) carries no marker.
        """
        with self.lock:
            groups, needles = set(self.groups), {f"{self.marker}={r}".encode() for r in self.roots}
        pids = [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) != os.getpid()]
        alive = set(pids)
        self._seen = {pid: seen for pid, seen in self._seen.items() if pid in alive}
        for pid in pids:
            if pid not in self._seen:
                self._seen[pid] = (_marked(pid, needles), _ppid(pid))
        found = {pid for pid in pids if self._seen[pid][0] or _pgid(pid) in groups}
        grew = True
        while grew:  # the parent recorded when first seen: a child keeps counting after its parent died
            more = {pid for pid in pids if pid not in found and self._seen[pid][1] in found}
            found |= more
            grew = bool(more)
        return sorted(found)

    def observe_forever(self) -> None:
        """Note what the run's processes map, once a second, until the harness is gone."""
        while not self.done.wait(OBSERVE_S):
            with self.scan:
                self.owned.observe(self.ours())

    def finish(self) -> None:
        """The harness is gone: kill what is left of the run, then remove what it left behind."""
        self.done.set()
        with self.scan:
            self.owned.observe(self.ours(), everything=True)  # a last look before the kill: what they map is theirs
            for pgid in self.groups:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            self._sweep()
            deadline = time.monotonic() + GONE_TIMEOUT_S
            while _alive(self.ours()) and time.monotonic() < deadline:
                self._sweep()
                time.sleep(0.05)
            for argv in reversed(self.cleanups):  # after the processes: a namespace goes once nothing runs in it
                subprocess.run(json.loads(argv), capture_output=True)
            self.owned.release()  # what a process that refused to die still maps stays: release checks

    def _sweep(self) -> None:
        """Kill the run's processes: also a child forked just as the harness died (never registered)."""
        for pid in self.ours():
            try:
                if os.getpgid(pid) == pid:  # a group leader the harness started: its children go with it
                    os.killpg(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _marked(pid: int, needles: set[bytes]) -> bool:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(n in env for n in needles)


class ProcStat(NamedTuple):
    """The fields of ``/proc/<pid>/stat`` the harness reads."""

    state: str
    """R, S, D, T (stopped), Z (zombie)..."""
    ppid: int
    """Parent's process id."""
    pgrp: int
    """Process group id."""


def proc_stat(pid: int) -> ProcStat | None:
    """pid's state, parent and group; None once it is gone."""
    try:  # the command name (in parentheses) may hold spaces and parentheses: split after its last one
        state, ppid, pgrp = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:3]
        return ProcStat(state, int(ppid), int(pgrp))
    except (OSError, IndexError, ValueError):
        return None


def _ppid(pid: int) -> int | None:
    return st.ppid if (st := proc_stat(pid)) else None


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _alive(pids: Iterable[int]) -> list[int]:
    """Those of pids still running (a zombie maps nothing and holds nothing: it is gone for us)."""
    return [pid for pid in pids if (st := proc_stat(pid)) and st.state != "Z"]


def _main() -> None:
    # The reaper must outlive the harness's own Ctrl-C and terminal hang-up.
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    reaper = _Reaper()
    threading.Thread(target=reaper.observe_forever, name="observe", daemon=True).start()
    for line in sys.stdin:
        if line := line.rstrip("\n"):
            reaper.handle(line)
    reaper.finish()


if __name__ == "__main__":
    _main()
