"""Shared memory a run's processes leave: removed only when it is the run's and nobody uses it any more.

Real processes map real /dev/shm files and create real System V segments here; nothing is faked.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends.leftovers import SHM_DIR, Owned, entries, in_use, mapped_by, sysv_segments

# A process that creates (or opens) /dev/shm/NAME, maps it, optionally creates a System V segment,
# prints "ready <shmid>" and waits to be killed, as a Postgres or a Hatchet worker would.
HOLDER = textwrap.dedent("""
    import ctypes, mmap, os, sys, time
    name, sysv = sys.argv[1], sys.argv[2] == "1"
    fd = os.open("/dev/shm/" + name, os.O_RDWR | os.O_CREAT, 0o600)
    os.ftruncate(fd, 4096)
    m = mmap.mmap(fd, 4096)
    os.close(fd)
    shmid = ctypes.CDLL(None).shmget(0, 4096, 0o1600) if sysv else -1  # IPC_PRIVATE, IPC_CREAT | 0600
    print("ready", shmid, flush=True)
    time.sleep(600)
""")


class Holder:
    """A live process mapping /dev/shm/<name> (and owning a System V segment if asked)."""

    started: list[Holder] = []  # noqa: RUF012 - every holder of the test, killed and removed after it

    def __init__(self, name: str, sysv: bool = False) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, name, "1" if sysv else "0"],
                                     stdout=subprocess.PIPE, text=True)
        Holder.started.append(self)
        assert self.proc.stdout is not None
        ready, shmid = self.proc.stdout.readline().split()
        assert ready == "ready"
        self.shmid = int(shmid)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)  # no clean-up: what a killed worker leaves
        self.proc.wait(10)


@pytest.fixture
def names() -> Iterator[list[str]]:
    """Fresh /dev/shm names for one test; whatever the test leaves is removed after it."""
    made = [f"harness-test-{secrets.token_hex(4)}" for _ in range(3)]
    yield made
    for holder in Holder.started:
        if holder.proc.poll() is None:
            holder.kill()
        if any(seg.shmid == holder.shmid and seg.cpid == holder.proc.pid for seg in sysv_segments()):
            ctypes.CDLL(None).shmctl(holder.shmid, 0, None)  # IPC_RMID: a test that failed midway left it
    Holder.started.clear()
    for name in made:
        (SHM_DIR / name).unlink(missing_ok=True)


def test_a_killed_processs_entry_and_segment_are_removed(names: list[str]) -> None:
    holder = Holder(names[0], sysv=True)
    inode = (SHM_DIR / names[0]).stat().st_ino
    assert mapped_by(holder.proc.pid) == {inode} and entries()[names[0]] == inode
    owned = Owned()
    owned.observe([holder.proc.pid])
    assert owned.shm == {names[0]: inode} and holder.shmid in owned.segments
    holder.kill()
    assert (SHM_DIR / names[0]).exists(), "SIGKILL leaves the entry behind"
    assert holder.shmid in {s.shmid for s in sysv_segments()}, "and the System V segment"
    done = owned.release()
    print(done)
    assert done.shm == [names[0]] and done.segments == [holder.shmid]
    assert not (SHM_DIR / names[0]).exists()
    assert holder.shmid not in {s.shmid for s in sysv_segments()}
    assert owned.shm == {} and owned.segments == {}


def test_an_entry_still_mapped_by_a_live_process_stays(names: list[str]) -> None:
    mine, theirs = Holder(names[0]), Holder(names[0])  # another process maps the same entry (another run)
    owned = Owned()
    owned.observe([mine.proc.pid])
    mine.kill()
    try:
        assert (SHM_DIR / names[0]).stat().st_ino in in_use()[0]
        done = owned.release()
        assert done.busy == [names[0]] and done.shm == []
        assert (SHM_DIR / names[0]).exists()
    finally:
        theirs.kill()
    assert owned.release().shm == [names[0]], "owned still: removed once nobody maps it"


def test_entries_never_seen_in_the_runs_processes_are_not_touched(names: list[str]) -> None:
    ours, foreign = Holder(names[0]), Holder(names[1])
    owned = Owned()
    owned.observe([ours.proc.pid])  # the foreign one belongs to another run on the machine
    ours.kill()
    foreign.kill()  # it left its entry: not ours to remove
    assert owned.release().shm == [names[0]]
    assert (SHM_DIR / names[1]).exists() and not (SHM_DIR / names[0]).exists()


def test_a_segment_someone_is_attached_to_stays(names: list[str]) -> None:
    holder = Holder(names[0], sysv=True)
    owned = Owned()
    owned.observe([holder.proc.pid])
    libc = ctypes.CDLL(None)
    libc.shmat.restype = ctypes.c_void_p
    addr = libc.shmat(holder.shmid, None, 0)  # this test process attaches: nattch 1 after the kill
    assert addr not in (None, 2**64 - 1)
    holder.kill()
    try:
        done = owned.release()
        assert f"sysv shmid {holder.shmid}" in done.busy and holder.shmid in {s.shmid for s in sysv_segments()}
    finally:
        libc.shmdt(ctypes.c_void_p(addr))
    assert owned.release().segments == [holder.shmid]


def test_registered_directories_are_removed(tmp_path: Path) -> None:
    state = tmp_path / "harness-state-x"
    (state / "postgres" / "pgdata").mkdir(parents=True)
    (state / "postgres" / "pgdata" / "PG_VERSION").write_text("18")
    owned = Owned(dirs={str(state)})
    assert owned.release().dirs == [str(state)]
    assert not state.exists() and owned.dirs == set()
    assert os.listdir(tmp_path) == []
