"""Who may run at once when pytest runs scenarios in several processes (pytest-xdist).

Most scenarios measure counts and may share the machine with others (a shared slot); those whose
verdicts compare rates or latencies (capacity, cpu-heavy: ``Scenario.side_by_side`` false) need it
alone (an exclusive slot). A readers-writer lock over two files (``flock``), with a turnstile so a
waiting exclusive holder is not starved by a stream of shared ones. Without ``HARNESS_SLOTS`` (one
process) every slot is granted at once.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.backends import reaper

ENV_SLOTS = "HARNESS_SLOTS"
"""Directory of the lock files, shared by the processes of one pytest session (set by its controller)."""


def make_slots_dir() -> str:
    """A new directory for the session's lock files, removed with the controller however it ends (the reaper): a
    SIGKILLed pytest leaves no ``harness-slots-*`` behind."""
    where = tempfile.mkdtemp(prefix="harness-slots-")
    reaper.remove_with_run(Path(where))
    return where


@contextmanager
def slot(exclusive: bool) -> Iterator[None]:
    """Hold a shared or an exclusive slot of the session's machine for the duration."""
    where = os.environ.get(ENV_SLOTS)
    if not where:
        yield
        return
    Path(where).mkdir(parents=True, exist_ok=True)
    with open(Path(where) / "turnstile", "a+") as turnstile, open(Path(where) / "machine", "a+") as machine:
        fcntl.flock(turnstile, fcntl.LOCK_EX)  # in line: an exclusive waiter holds it, so no shared one overtakes
        try:
            fcntl.flock(machine, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        finally:
            if not exclusive:
                fcntl.flock(turnstile, fcntl.LOCK_UN)
        try:
            if exclusive:
                fcntl.flock(turnstile, fcntl.LOCK_UN)
            yield
        finally:
            fcntl.flock(machine, fcntl.LOCK_UN)
