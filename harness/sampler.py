"""Samples over time, written to the ledger: each process's resident memory, and the backlog."""

from __future__ import annotations

import threading
from collections.abc import Callable

import psutil

from harness.ledger import Ledger
from harness.procs import Proc


def tree_rss(pid: int) -> int:
    """Memory of a process and its descendants, in bytes (0 when it is gone).

    Proportional set size where the kernel reports it: summing plain RSS over Postgres's backends
    would count its shared buffers once per backend.
    """
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += getattr(p.memory_full_info(), "pss", 0) or p.memory_info().rss
        except psutil.Error:
            pass
    return total


class Sampler:
    """A thread that records RSS per process, pending and in-flight tasks every ``interval_s``."""

    def __init__(self, ledger: Ledger, processes: Callable[[], list[Proc]], interval_s: float = 1.0) -> None:
        self.ledger = ledger
        """Where samples go."""
        self.processes = processes
        """Returns the processes to sample (looked up each time: restarts change pids)."""
        self.interval_s = interval_s
        """Sampling period."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            for proc in self.processes():
                if proc.pid is not None and proc.alive():
                    self.ledger.record_sample(proc.name, "rss_bytes", tree_rss(proc.pid))
            # Backlog as the ledger sees it, whatever the system: accepted and not done yet, and
            # attempts running now.
            self.ledger.record_sample("system", "pending", self.ledger.missing_effects())
            self.ledger.record_sample("system", "in_flight", self.ledger.count_in_flight())

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
