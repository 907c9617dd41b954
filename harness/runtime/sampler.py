"""Samples over time, written to the ledger: each process's memory, the backlog, and the harness's own
instruments (is the downstream service keeping up, is the ledger fast to write?).

Every ``interval_s`` the sampler writes, as ``(source, metric)``:

- ``(<process>, rss_bytes)``: memory of each process tree;
- ``(system, pending)``, ``(system, in_flight)``: the backlog as the ledger sees it;
- ``(downstream, poll_ms)``: how long the downstream service took to answer ``GET /stats`` (a stalled
  event loop or a full listen queue shows here first; an unreachable service counts as the poll timeout);
- ``(downstream, service_p99_ms|service_max_ms|calls|calls_per_s|in_progress|write_queue|commit_max_ms)``:
  what the service measured since the previous poll (received -> answered per call, calls answered,
  calls received and not answered, records waiting for its ledger writer, its slowest commit);
- ``(sampler, ledger_write_ms)``: the slowest of the sampler's own ledger writes of the previous tick,
  a probe of how long any writer waits for the shared ledger.

:mod:`harness.analysis.instruments` reads these back to say whether the harness was the bottleneck.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import psutil

from harness.backends.base import Proc
from harness.ledger import Ledger

POLL_TIMEOUT_S = 2.0
"""Longest wait for the downstream's ``/stats``; a poll that fails is recorded as this long."""


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


def stats_url(proc: Proc) -> str | None:
    """Where a downstream process serves ``/stats``: next to its HTTP health check (None: not a downstream)."""
    if "downstream" not in proc.roles or not proc.health.http:
        return None
    parts = urlsplit(proc.health.http)
    return f"{parts.scheme}://{parts.netloc}/stats"


def poll_stats(url: str, timeout: float = POLL_TIMEOUT_S) -> tuple[float, dict[str, Any] | None]:
    """Milliseconds ``GET url`` took and its JSON (None: no usable answer; a failed poll counts as the timeout)."""
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = json.loads(resp.read())
        return 1000 * (time.perf_counter() - t), body if isinstance(body, dict) else None
    except urllib.error.HTTPError:  # it answered, just not with stats (a service without /stats)
        return 1000 * (time.perf_counter() - t), None
    except (OSError, ValueError):
        return 1000 * max(time.perf_counter() - t, timeout), None


def stats_samples(stats: dict[str, Any]) -> dict[str, float]:
    """The metrics recorded from one ``/stats`` answer (a missing or empty value is left out)."""
    service = stats.get("service_ms") or {}
    commit = stats.get("commit_ms") or {}
    window = float(stats.get("window_s") or 0)
    values: dict[str, Any] = {
        "service_p99_ms": service.get("p99"), "service_max_ms": service.get("max"),
        "calls": service.get("n"), "calls_per_s": service.get("n", 0) / window if window > 0 else None,
        "in_progress": stats.get("in_progress"), "write_queue": stats.get("write_queue"),
        "commit_max_ms": commit.get("max"),
    }
    return {k: float(v) for k, v in values.items() if isinstance(v, int | float)}


class Sampler:
    """A thread that records memory, backlog and the harness's instruments every ``interval_s``."""

    def __init__(self, ledger: Ledger, processes: Callable[[], list[Proc]], interval_s: float = 1.0) -> None:
        self.ledger = ledger
        """Where samples go."""
        self.processes = processes
        """Returns the processes to sample (looked up each time: restarts change pids)."""
        self.interval_s = interval_s
        """Sampling period."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._write_ms = 0.0

    def _record(self, source: str, metric: str, value: float) -> None:
        t = time.perf_counter()
        self.ledger.record_sample(source, metric, value)
        self._write_ms = max(self._write_ms, 1000 * (time.perf_counter() - t))

    def _tick(self) -> None:
        procs = self.processes()
        # The downstream first: its window then ends about a second after the previous one.
        for url in filter(None, (stats_url(p) for p in procs if p.alive())):
            took_ms, stats = poll_stats(url)
            self._record("downstream", "poll_ms", took_ms)
            for metric, value in stats_samples(stats or {}).items():
                self._record("downstream", metric, value)
        for proc in procs:
            if proc.pid is not None and proc.alive():
                self._record(proc.name, "rss_bytes", tree_rss(proc.pid))
        # Backlog as the ledger sees it, whatever the system: accepted and not done yet, and
        # attempts running now.
        self._record("system", "pending", self.ledger.missing_effects())
        self._record("system", "in_flight", self.ledger.count_in_flight())
        slowest, self._write_ms = self._write_ms, 0.0
        self.ledger.record_sample("sampler", "ledger_write_ms", round(slowest, 3))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._tick()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
