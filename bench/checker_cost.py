"""What the checker costs on a big run: a synthetic history of N tasks written straight into SQLite, then checked.

The history has every class the checker knows, in fixed shares (seeded), so each of its code paths
runs: most tasks done once, some lost, duplicated, retried, failed, unanswered (some of those ran)
and refused, plus a warm-up and one fault.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from harness.analysis.checker import check
from harness.ledger import Ledger, create_ledger, open_ledger

SYSTEM = "bench"
"""System name in the synthetic history."""
T0 = 1_700_000_000.0
"""Epoch time of the first measured request."""
RATE = 1000.0
"""Requests per second in the synthetic history."""

OpRow = tuple[str, str, str, str, float, float, str, int | None, str | None, str]
EventRow = tuple[str, str, str, int, str, int, float, str | None]
SHARES = (("once", 0.955), ("lost", 0.01), ("duplicated", 0.01), ("retried", 0.01), ("failed", 0.005),
          ("unanswered", 0.0025), ("recovered", 0.0025), ("refused", 0.005))
"""What happens to the tasks, and in what share."""
SQL_OP = ("INSERT INTO ops(task_id, system, kind, phase, invoke_t, complete_t, outcome, status, error, client)"
          " VALUES (?,?,?,?,?,?,?,?,?,?)")
SQL_EVENT = "INSERT INTO events(task_id, system, type, attempt, process, pid, t, detail) VALUES (?,?,?,?,?,?,?,?)"


def _task(task_id: str, phase: str, t: float, fate: str) -> tuple[OpRow, list[EventRow]]:
    """The request and effect-log records of one task with the given fate."""
    outcome = {"unanswered": "info", "recovered": "info", "refused": "fail"}.get(fate, "ok")
    op: OpRow = (task_id, SYSTEM, "sleep", phase, t, t + 0.004, outcome, {"ok": 202, "fail": 503}.get(outcome), None,
                 "bench")
    attempts: list[tuple[str, int, float]] = {
        "once": [("start", 0, 0.01), ("effect", 0, 0.2)],
        "recovered": [("start", 0, 0.01), ("effect", 0, 0.2)],
        "duplicated": [("start", 0, 0.01), ("effect", 0, 0.2), ("start", 1, 30.0), ("effect", 1, 30.2)],
        "retried": [("start", 0, 0.01), ("error", 0, 0.1), ("start", 1, 1.0), ("effect", 1, 1.2)],
        "failed": [(kind, a, a + dt) for a in range(4) for kind, dt in (("start", 0.01), ("error", 0.1))],
    }.get(fate, [])
    return op, [(task_id, SYSTEM, kind, a, "worker-1", 4242, t + dt, None) for kind, a, dt in attempts]


def _tasks(n: int, seed: int) -> Iterator[tuple[OpRow, list[EventRow]]]:
    rng = random.Random(seed)
    fates, weights = zip(*SHARES, strict=True)
    for i in range(n):
        yield _task(f"m{i:07d}", "measure", T0 + i / RATE, rng.choices(fates, weights)[0])


def make_history(path: Path, tasks: int, seed: int = 1) -> Ledger:
    """A fresh ledger at path holding a run of ``tasks`` measured tasks (plus 10 warm-up tasks and one fault)."""
    ledger = create_ledger(path)
    ops: list[OpRow] = []
    events: list[EventRow] = []
    with ledger.transaction() as conn:
        for i in range(10):
            op, evs = _task(f"w{i:07d}", "warmup", T0 - 10 + i / 5, "once")
            conn.execute(SQL_OP, op)
            conn.executemany(SQL_EVENT, evs)
        for op, evs in _tasks(tasks, seed):
            ops.append(op)
            events.extend(evs)
            if len(ops) >= 50_000:
                _flush(conn, ops, events)
        _flush(conn, ops, events)
    ledger.set_meta("t0", T0)
    ledger.set_meta("load_end", T0 + tasks / RATE)
    fault = ledger.fault_started("kill", "worker-1", t=T0 + tasks / RATE / 2)
    ledger.fault_ended(fault, t=T0 + tasks / RATE / 2 + 5)
    return ledger


def _flush(conn: sqlite3.Connection, ops: list[OpRow], events: list[EventRow]) -> None:
    conn.executemany(SQL_OP, ops)
    conn.executemany(SQL_EVENT, events)
    ops.clear()
    events.clear()


def check_seconds(ledger: Ledger) -> tuple[float, int]:
    """Seconds one full check of the ledger takes (a fresh connection each time), and the tasks it classified."""
    fresh = open_ledger(ledger.url)
    t = time.perf_counter()
    result = check(fresh, SYSTEM)
    took = time.perf_counter() - t
    fresh.close()
    return took, result.counts.attempted
