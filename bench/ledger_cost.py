"""What the ledger costs: write throughput from concurrent processes, and the Recorder's cost per task.

Writers are separate processes writing through the public ``Recorder`` API into one fresh ledger,
exactly as a stack's API and workers do, on either backend: SQLite (one transaction per record,
WAL, synchronous=NORMAL) or Postgres (the harness's own server, ``--ledger pg``: one autocommitted
INSERT per record over TCP, synchronous_commit=off; see harness/ledger_pg.py).
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

from harness.analysis.checker import percentile
from harness.ledger import Ledger, LedgerStore, Recorder, SqliteStore, open_ledger

BACKENDS = ("sqlite", "postgres")
"""The ledger backends measured."""
NewLedger = Callable[[], Ledger]

CTX = mp.get_context("fork")
"""Writers are forked: the parent already imported the harness, so they start writing at once."""


def _writer(url: str, name: str, go: EventType, seconds: float, per_s: float, out: Any) -> None:
    """Write effects for ``seconds`` after ``go`` (at most ``per_s`` a second when above 0); report how many."""
    rec = Recorder(open_ledger(url), "bench", name)
    go.wait()
    n, start = 0, time.perf_counter()
    end = start + seconds
    while (now := time.perf_counter()) < end:
        if per_s > 0 and n >= (now - start) * per_s:
            time.sleep(0.0005)
            continue
        rec.effect(f"{name}-{n}", 0)
        n += 1
    out.put(n)


def _writers(url: str, count: int, seconds: float, per_s: float = 0.0) -> tuple[list[Any], EventType, Any]:
    go, out = CTX.Event(), CTX.Queue()
    procs = [CTX.Process(target=_writer, args=(url, f"w{i}", go, seconds, per_s, out)) for i in range(count)]
    for p in procs:
        p.start()
    return procs, go, out


@contextmanager
def fresh_ledgers(backend: str) -> Iterator[NewLedger]:
    """Makes a fresh ledger per measurement: SQLite files, or schemas of one server of the harness's own."""
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        store: LedgerStore
        if backend == "postgres":
            from harness.runtime.ledgers import EmbeddedPostgresStore
            store = EmbeddedPostgresStore(Path(tmp) / "logs")
        else:
            store = SqliteStore()
        serial = itertools.count()
        try:
            yield lambda: store.create(Path(tmp) / f"run{(n := next(serial))}", f"bench_{n}")
        finally:
            store.close()


def writes_per_second(new: NewLedger, processes: int = 4, seconds: float = 5.0) -> float:
    """Recorder writes per second, summed over ``processes`` writers running flat out on one fresh ledger."""
    ledger = new()
    procs, go, out = _writers(ledger.url, processes, seconds)
    time.sleep(0.5)  # every writer has its connection
    go.set()
    total = sum(int(out.get()) for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


def recorder_cost_ms(new: NewLedger, tasks: int = 20_000, background: int = 0,
                     background_per_s: float = 0.0) -> dict[str, float]:
    """Percentiles (ms) of one task's Recorder calls, ``started`` + ``effect``, timed in this process.

    ``background`` other processes write meanwhile (``background_per_s`` each, 0: flat out), as the
    rest of a stack does during a run.
    """
    ledger = new()
    rec = Recorder(open_ledger(ledger.url), "bench", "timed")
    procs, go, _ = _writers(ledger.url, background, seconds=3600, per_s=background_per_s)
    go.set()
    time.sleep(0.5)
    costs = []
    try:
        for i in range(tasks):
            t = time.perf_counter()
            rec.started(f"t{i}", 0)
            rec.effect(f"t{i}", 0)
            costs.append(time.perf_counter() - t)
    finally:
        for p in procs:
            p.kill()
            p.join()
    costs.sort()
    return {f"p{q}": round(1000 * percentile(costs, q), 4) for q in (50, 99, 99.9)} | {
        "max": round(1000 * costs[-1], 3), "tasks": tasks}
