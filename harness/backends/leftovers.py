"""What a run's processes leave behind outside the run directory, and its safe removal.

A process killed with SIGKILL cannot clean up: Postgres leaves its dynamic shared memory segments
(``/dev/shm/PostgreSQL.*``) and its System V segment, Python's multiprocessing (the Hatchet
worker's listener) leaves named semaphores (``/dev/shm/sem.mp-*``). Several runs may share the
machine, so nothing is removed on its name alone: :class:`Owned` records what the run's own
processes map (their ``/proc/<pid>/maps``) or create (System V ``cpid``) while they live, and
:meth:`Owned.release` removes only those, and only once no live process maps or holds them open.
The reaper (:mod:`harness.backends.reaper`) drives it, so this happens on every path out of a run.

Files are told apart by inode, not by the name a process mapped: glibc makes a named semaphore
under a temporary name, maps it, then links it to its real name, so its creator's maps only ever
show ``/dev/shm/sem.XXXXXX (deleted)``.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

SHM_DIR = Path("/dev/shm")
"""Where POSIX shared memory segments and named semaphores live (tmpfs)."""
SYSV_SHM = Path("/proc/sysvipc/shm")
"""The kernel's table of System V shared memory segments."""
LOOKS = 3
"""Looks (one a second from the reaper) before an entry none of the run's processes maps is taken as another's."""
_IPC_RMID = 0
_SHM_PREFIX = str(SHM_DIR) + "/"
# Inode of every mapping of a /dev/shm file (deleted or not): "address perms offset dev inode path".
_MAPPED = re.compile(rb"^\S+ \S+ \S+ \S+ (\d+) +/dev/shm/", re.MULTILINE)


def entries() -> dict[str, int]:
    """The regular files in /dev/shm: name -> inode."""
    try:
        with os.scandir(SHM_DIR) as it:
            return {e.name: e.inode() for e in it if e.is_file(follow_symlinks=False)}
    except OSError:
        return {}


def mapped_by(pid: int) -> set[int]:
    """Inodes of the /dev/shm files process pid has mapped (empty if it is gone or unreadable)."""
    try:
        return {int(i) for i in _MAPPED.findall(Path(f"/proc/{pid}/maps").read_bytes())}
    except OSError:
        return set()


def opened_by(pid: int) -> set[int]:
    """Inodes of the /dev/shm files process pid holds open (shm_open before mmap, say)."""
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return set()
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(_SHM_PREFIX):
                inodes.add(os.stat(f"/proc/{pid}/fd/{fd}").st_ino)
        except OSError:
            continue
    return inodes


def in_use() -> tuple[set[int], bool]:
    """Inodes of /dev/shm files any live process maps or holds open, and whether every process could be read."""
    inodes: set[int] = set()
    complete = True
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            os.listdir(f"/proc/{pid}/fd")
        except PermissionError:
            complete = False  # another user's process: see release()
            continue
        except OSError:
            continue
        inodes |= mapped_by(pid) | opened_by(pid)
    return inodes, complete


@dataclass(frozen=True)
class Segment:
    """One System V shared memory segment (a line of /proc/sysvipc/shm)."""

    shmid: int
    """Its id (what shmctl takes)."""
    key: int
    """Its key."""
    cpid: int
    """Process that created it."""
    nattch: int
    """Processes attached to it now."""


def sysv_segments() -> list[Segment]:
    """Every System V shared memory segment of this IPC namespace."""
    try:
        lines = SYSV_SHM.read_text().splitlines()[1:]
    except OSError:
        return []
    out = []
    for line in lines:
        f = line.split()
        if len(f) >= 7:
            out.append(Segment(shmid=int(f[1]), key=int(f[0]), cpid=int(f[4]), nattch=int(f[6])))
    return out


def _remove_segment(shmid: int) -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.shmctl(ctypes.c_int(shmid), ctypes.c_int(_IPC_RMID), None)) == 0


@dataclass
class Released:
    """What one :meth:`Owned.release` removed, and what it left because something still used it."""

    shm: list[str] = field(default_factory=list)
    """/dev/shm entries removed."""
    segments: list[int] = field(default_factory=list)
    """System V segments removed (shmid)."""
    dirs: list[str] = field(default_factory=list)
    """Directories removed."""
    busy: list[str] = field(default_factory=list)
    """Entries left: a live process still maps or holds them (or might: see release)."""


@dataclass
class Owned:
    """IPC objects and directories of one run, collected while its processes live."""

    shm: dict[str, int] = field(default_factory=dict)
    """/dev/shm entries one of the run's processes mapped or held open: name -> inode."""
    segments: dict[int, int] = field(default_factory=dict)
    """System V segments one of the run's processes created: shmid -> key."""
    dirs: set[str] = field(default_factory=set)
    """Directories to remove with the run (the private state directory)."""
    foreign: dict[str, int] = field(default_factory=dict)
    """/dev/shm entries none of the run's processes mapped in :data:`LOOKS` looks (other runs'): name -> inode."""
    _looks: dict[tuple[str, int], int] = field(default_factory=dict)

    def observe(self, pids: Iterable[int], everything: bool = False) -> None:
        """Attribute the /dev/shm entries and System V segments that appeared since the last call.

        Only new entries cost a look at the processes (reading every process's maps each second is
        tens of milliseconds); ``everything`` looks again at all (the last look, open files too).
        """
        ours = set(pids)
        present = entries()
        self.foreign = {n: i for n, i in self.foreign.items() if present.get(n) == i}
        self._looks = {k: v for k, v in self._looks.items() if present.get(k[0]) == k[1]}
        new = {n: i for n, i in present.items() if self.shm.get(n) != i and self.foreign.get(n) != i}
        if new or everything:
            used: set[int] = set().union(*(mapped_by(pid) for pid in ours))
            if everything:  # also what is open and not mapped yet (shm_open before mmap): costly, once
                used |= set().union(*(opened_by(pid) for pid in ours))
            for name, inode in (present if everything else new).items():
                if inode in used:
                    self.shm[name] = inode
                    self.foreign.pop(name, None)
                    self._looks.pop((name, inode), None)
                elif name in new:
                    looks = self._looks[(name, inode)] = self._looks.get((name, inode), 0) + 1
                    if looks >= LOOKS:
                        self.foreign[name] = inode
                        del self._looks[(name, inode)]
        for seg in sysv_segments():
            if seg.cpid in ours:
                self.segments[seg.shmid] = seg.key

    def release(self) -> Released:
        """Remove what the run owned and nobody uses any more; keep the rest owned (a later call may free it)."""
        done = Released()
        used, complete = in_use()
        for name, inode in sorted(self.shm.items()):
            path = SHM_DIR / name
            try:
                st = path.lstat()
            except FileNotFoundError:
                del self.shm[name]
                continue
            if st.st_ino != inode:  # removed and made again, by someone else: not ours
                del self.shm[name]
                continue
            # An unreadable process (another user's) could map the entry only if its mode let it.
            shared = not complete and stat.S_IMODE(st.st_mode) & 0o077
            if inode in used or shared:
                done.busy.append(name)
                continue
            try:
                path.unlink()
                done.shm.append(name)
            except FileNotFoundError:
                pass
            del self.shm[name]
        live = {s.shmid: s for s in sysv_segments()}
        for shmid, key in sorted(self.segments.items()):
            seg = live.get(shmid)
            if seg is None or seg.key != key:  # gone, or the id now names someone else's segment
                del self.segments[shmid]
            elif seg.nattch > 0:
                done.busy.append(f"sysv shmid {shmid}")
            elif _remove_segment(shmid):
                done.segments.append(shmid)
                del self.segments[shmid]
        for d in sorted(self.dirs):
            if os.path.lexists(d):
                shutil.rmtree(d, ignore_errors=True)
                done.dirs.append(d)
            self.dirs.discard(d)
        return done
