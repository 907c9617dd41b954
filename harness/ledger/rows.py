"""One row per task, joined from the client history and the effect log: what the checker and capacity read."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from harness.ledger.base import Ledger


class TaskRow(NamedTuple):
    """Per-task aggregate of the client history and effect log (one row per task id)."""

    task_id: str
    """Client-made id."""
    phase: str | None
    """Phase of its request, None if the client never sent it (an unexpected task)."""
    outcome: str | None
    """Client outcome, None if never sent."""
    invoke_t: float | None
    """Request send time."""
    complete_t: float | None
    """Answer time."""
    n_ops: int
    """Requests with this id (must be 1)."""
    starts: int
    """Attempt starts."""
    errors: int
    """Attempts that raised."""
    effects: int
    """Side effects recorded."""
    calls: int
    """Downstream calls received."""
    first_effect_t: float | None
    """Time of the first effect."""
    last_effect_t: float | None
    """Time of the last effect."""


def task_rows(ledger: Ledger) -> list[TaskRow]:
    """One aggregate row per task id seen in the client history or the effect log."""
    # Two grouped scans joined here: a join in SQL materialised both sides and built an automatic
    # index on one (2 s more on a 1,000,000-task history, bench/checker_cost.py).
    ops = ledger.query("""
        SELECT task_id, min(phase), min(outcome), min(invoke_t), min(complete_t), count(*)
        FROM ops GROUP BY task_id""")
    events = ledger.query("""
        SELECT task_id,
               count(*) FILTER (WHERE type='start'), count(*) FILTER (WHERE type='error'),
               count(*) FILTER (WHERE type='effect'), count(*) FILTER (WHERE type='call'),
               min(CASE WHEN type='effect' THEN t END), max(CASE WHEN type='effect' THEN t END)
        FROM events GROUP BY task_id""")
    nothing = (0, 0, 0, 0, None, None)
    with _no_cyclic_gc():  # millions of flat tuples, no cycle among them: each collection pass only rescans them
        by_task = {r[0]: r[1:] for r in events}
        rows = [TaskRow(*op, *by_task.pop(op[0], nothing)) for op in ops]
        rows += [TaskRow(task_id, None, None, None, None, 0, *ev) for task_id, ev in by_task.items()]
    return rows


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector (reference counting still frees) and restore its state."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
