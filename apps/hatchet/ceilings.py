"""Hatchet's reference ceiling: what its own load tester gets through the run's engine.

``hatchet-loadtest`` of the pinned module and tag (a Go client pushing events, its own Go worker
running the triggered runs) against the engine in a namespace of its own. The figure is runs
started per second from the worker's log, i.e. what the engine executes end to end, even when it
falls behind the pushes; a run where the pushes were below 1.5x that rate is marked emitter-bound.
The harness measures it on a fresh copy of the system's servers (:meth:`harness.runtime.infra.Infra.references`),
so it never competes with a ladder's backlog, and what it leaves queued goes with that copy.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from apps.hatchet import tools

LOADTEST_RATE = 600
"""Events per second asked of hatchet-loadtest: above what this machine's engine sustains, so it shows its limit."""
LOADTEST_SECONDS = 20
"""How long hatchet-loadtest pushes."""
LOADTEST_EMITTERS = 64
"""Goroutines pushing events (each push is a blocking call: too few and the pushes, not the engine, set the rate)."""
EMITTER_BOUND = 1.5
"""A ceiling whose pushes were below this many times its runs per second is marked emitter-bound."""
LOADTEST_SLOTS = 100
"""Slots of hatchet-loadtest's worker (the Hatchet system has 2 workers x 50 by default)."""
_EXECUTING = re.compile(r"^(\S+) \S+ executing (\d+) took", re.M)
"""Its worker's line for each run it starts (ANSI codes removed): the timestamp and the event's id."""
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def execution_times(log: str) -> list[float]:
    """Epoch seconds at which the load tester's worker started each run (its ``executing N took D`` lines, ms)."""
    return sorted(datetime.fromisoformat(stamp).timestamp() for stamp, _ in _EXECUTING.findall(_ANSI.sub("", log)))


def per_second(times: list[float]) -> list[int]:
    """How many of times fall in each second from the first."""
    if not times:
        return []
    counts = [0] * (int(times[-1] - times[0]) + 1)
    for t in times:
        counts[int(t - times[0])] += 1
    return counts


def engine_runs_per_s(env: dict[str, str], out_dir: Path, rate: int = LOADTEST_RATE,
                      seconds: int = LOADTEST_SECONDS) -> dict[str, Any]:
    """Runs per second the engine that env points at executes for Hatchet's own load tester.

    ``env`` holds the standard HATCHET_CLIENT_* settings (token, address, namespace, TLS). The load
    tester pushes ``rate`` events per second (each triggers one run) for ``seconds``; its worker
    logs every run it starts (millisecond timestamps). The figure is runs started per second from
    the first to the last start: the engine's rate end to end, push to worker, even when it fell
    behind the pushes. Its own pass/fail latency check is switched off (we want the rate).

    hatchet-loadtest always runs out its whole timeout (registration timeout + 10 s + duration + wait + 30 s: its
    worker waits on the context, do.go in the pinned tag), minutes of an idle engine; it is stopped once every push
    it reported has started (``stopped_early``), which ends nothing it measures.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    argv = [str(tools.bin_path(tools.LOADTEST)), "loadtest", "--events", str(rate), "--duration",
            f"{seconds}s", "--wait", "10s", "--registrationTimeout", "10s", "--slots", str(LOADTEST_SLOTS),
            "--emitWorkers", str(LOADTEST_EMITTERS), "--averageDurationThreshold", "1h", "--level", "info"]
    (out_dir / "hatchet-loadtest.cmd").write_text(" ".join(argv) + "\n")  # env (the token) is never written
    t0 = time.monotonic()
    lines: list[str] = []
    progress = Progress()
    proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    killer = threading.Timer(seconds + 150, proc.kill)  # a hung load tester must not hang the run
    killer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # to its end, also after the SIGTERM: a full pipe would block its exit
            lines.append(line)
            if not progress.done and progress.read(line):
                proc.terminate()
        proc.wait()
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    took = time.monotonic() - t0
    output = "".join(lines)
    (out_dir / "hatchet-loadtest.log").write_text(output)
    got = read_log(output, 0 if progress.done else proc.returncode, rate, seconds)
    return {**got, **({"stopped_early": True} if progress.done and "error" not in got else {}),
            "wall_s": round(took, 1), "command": " ".join(argv), "log": "reference/hatchet-loadtest.log"}


def _totals(output: str) -> tuple[int, int, int] | None:
    """Pushed, executed and unique runs: hatchet-loadtest's own totals, else (stopped early) counted from its lines."""
    if found := re.search(r"pushed (\d+), executed (\d+), uniques (\d+)", output):
        pushed, executed, uniques = (int(x) for x in found.groups())
        return pushed, executed, uniques
    progress = Progress()
    for line in output.splitlines(keepends=True):
        progress.read(line)
    if progress.pushed is None:
        return None
    return progress.pushed, progress.executed, len(progress.started)


class Progress:
    """What hatchet-loadtest has pushed (its per-key summary, printed when the pushes end) and started so far."""

    def __init__(self) -> None:
        self.pushed: int | None = None
        """Events pushed, once the pushes have ended."""
        self.started: set[int] = set()
        """Ids of the events whose run its worker has started."""
        self.executed = 0
        """Runs its worker has started (a run started twice counts twice)."""
        self.done = False
        """True once every pushed event's run has started."""
        self._summary: list[str] | None = None

    def read(self, line: str) -> bool:
        """Take one line of output; True once every pushed event's run has started."""
        if self._summary is not None:
            self._summary.append(line)
            if line.strip() == "}":
                self.pushed = sum(int(n) for n in re.findall(r":\s*(\d+)", "".join(self._summary)))
                self._summary = None
        elif "pushed per event key:" in line:
            self._summary = []
        elif found := _EXECUTING.search(_ANSI.sub("", line)):
            self.started.add(int(found.group(2)))
            self.executed += 1
        self.done = self.pushed is not None and self.pushed > 0 and len(self.started) >= self.pushed
        return self.done


def read_log(output: str, returncode: int, rate: int, seconds: int) -> dict[str, Any]:
    """The ceiling from hatchet-loadtest's output. It exits non-zero ("load test failed") when its worker had not run
    every pushed event by the end of its wait: the engine fell behind the pushes, which is what a ceiling shows, so
    the runs per second still count, with ``finished`` false; only output without the counts is an error. Stopped
    early (every push started), it has printed no totals: they are counted from its lines (returncode 0)."""
    counts = _totals(output)
    times = execution_times(output)
    if counts is None or len(times) < 2:
        reason = next((ln for ln in output.splitlines() if ln.startswith("panic:")), None)
        return {"error": f"hatchet-loadtest exited {returncode}: "
                         + (reason or " | ".join(output.strip().splitlines()[-3:]))}
    pushed, executed, uniques = counts
    runs = (len(times) - 1) / (times[-1] - times[0])
    return {
        "runs_per_s": round(runs, 1),
        "pushed_per_s": round(pushed / seconds, 1), "asked_per_s": rate, "seconds": seconds,
        "emitters": LOADTEST_EMITTERS, "emitter_bound": pushed / seconds < EMITTER_BOUND * runs,
        "pushed": pushed, "executed": executed, "uniques": uniques, "executions_per_second": per_second(times),
        # False: some pushed runs had not run by the end of its wait (it then exits non-zero): the engine fell behind.
        "finished": returncode == 0 and uniques >= pushed,
    }


PENDING_TABLES = {"queued": "v1_queue_item", "running": "v1_task_runtime", "retry_waiting": "v1_retry_queue_item",
                  "internal_messages": '"MessageQueueItem"'}
"""Engine tables whose rows are work not finished: runs queued, assigned to a worker, waiting for a retry, and
messages on the Postgres queue (empty with RabbitMQ)."""


def pending_runs(psql: Path, host: str, port: int, database: str) -> dict[str, int] | str:
    """Rows of each :data:`PENDING_TABLES` table in the engine's database now (every tenant and namespace)."""
    counts: dict[str, int] = {}
    for what, table in PENDING_TABLES.items():
        proc = subprocess.run([str(psql), "-h", host, "-p", str(port), "-U", "postgres", "-d", database, "-tA",
                               "-c", f"SELECT count(*) FROM {table}"], capture_output=True, text=True, timeout=30)
        if proc.returncode == 0 and proc.stdout.strip().isdigit():
            counts[what] = int(proc.stdout.strip())
    return counts or "unknown"
