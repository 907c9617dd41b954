"""Hatchet retries arrive seconds to tens of seconds after their backoff: they wait for the scheduler's idle queue loop.

Starts Postgres and the pinned engine, one real hatchet-sdk worker, and ``2 x tries`` tasks, each
its own queue in the engine (one queue loop each). Every task fails its first attempt and retries
once after a 25 s backoff. On the ``idle`` queues nothing else happens; on the ``hot`` queues
(the control) a passing run of the same task is triggered every second meanwhile, each trigger
waking that queue's loop. The retry's extra delay is the start of attempt 1 minus the end of
attempt 0 minus the backoff. The engine's tables are sampled every 0.2 s: the time the retry
poller moved the retry out of ``v1_retry_queue_item`` after its ``retry_after`` (the poller's
lag), and how long it then sat in ``v1_queue_item`` with the worker's slots free (the queue
loop's wait). A try (one idle queue) reproduces it when its retry came more than 5 s after the
backoff while the poller's lag was under 2 s: the delay is the queue loop's idle backoff
(pkg/scheduling/v1/queuer.go: after 3 empty polls it doubles from 1 s to 30 s, plus up to 50 %
jitter), not the retry poller.

Usage: ``python -m findings.repro.hatchet_retry_waits_for_queue_loop [--tries 4]``.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from findings.repro import common
from harness.model.finding import CheckResult

TRIES = 4
BACKOFF_S = 25.0
"""The retry is due this long after the failure (backoff factor 25, one retry): far enough for the idle loop to
have backed off (polls ~1, 1, 1, 2, 4, 8, 16 s apart after the failure, each +0-50 %), and not right after one of its
polls (a retry due ~20 s after the failure often meets the poll at 17-24 s)."""
EXTRA_S = 5.0
"""A retry later than its backoff by more than this is late (the retry poller runs every 1 s, the queue loop's
base poll 1-1.5 s)."""
POLLER_LAG_S = 2.0
"""The retry poller counts as prompt when it moved the retry within this long of its retry_after."""


def plan(args: common.Args) -> list[str]:
    """What a run does."""
    return [f"start: Postgres + hatchet-engine {common.engine_version()} (hatchet-lite), one hatchet-sdk worker",
            f"tries: {args.tries} idle queues and {args.tries} hot queues (a passing run/s each), one run each that "
            f"fails once and retries after {BACKOFF_S:g} s",
            "sample: v1_retry_queue_item and v1_queue_item every 0.2 s (poller lag, queue wait)",
            f"reproduced: an idle queue's retry starts > {EXTRA_S:g} s after its backoff while the retry poller moved "
            f"it within {POLLER_LAG_S:g} s; control: the hot queues' retries start within a few seconds"]


class Sampler:
    """Polls the engine's retry and queue tables: when each task's row was first and last seen."""

    def __init__(self, st: common.HatchetStack) -> None:
        self.st = st
        self.retry: dict[int, dict[str, float]] = {}
        """task id -> retry_after (epoch), first and last seen."""
        self.queued: dict[int, dict[str, float]] = {}
        """task id -> first and last seen in v1_queue_item."""
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, name="sampler", daemon=True)

    def loop(self) -> None:
        """Sample every 0.2 s until stopped."""
        import psycopg

        with psycopg.connect(self.st.postgres.url(self.st.engine.database), autocommit=True) as conn:
            while not self.stop.is_set():
                now = time.time()
                for task_id, after in conn.execute(
                        "SELECT task_id, extract(epoch FROM retry_after) FROM v1_retry_queue_item").fetchall():
                    seen = self.retry.setdefault(int(task_id), {"retry_after": float(after), "first": now})
                    seen["last"] = now
                for (task_id,) in conn.execute("SELECT task_id FROM v1_queue_item").fetchall():
                    seen = self.queued.setdefault(int(task_id), {"first": now})
                    seen["last"] = now
                time.sleep(0.2)

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def analyse(st: common.HatchetStack, sampler: Sampler, attempts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per queue: the retry's extra delay, the poller's lag, the wait in v1_queue_item."""
    ids = {str(marker): int(task_id) for task_id, marker in st.query(
        "SELECT id, additional_metadata->>'finding' FROM v1_task WHERE additional_metadata->>'finding' LIKE %s "
        "OR additional_metadata->>'finding' LIKE %s", ("idle-%", "hot-%"))}
    out = {}
    for marker, task_id in sorted(ids.items()):
        first = next((a for a in attempts if a["marker"] == marker and a["attempt"] == 0), None)
        second = next((a for a in attempts if a["marker"] == marker and a["attempt"] == 1), None)
        retry, queued = sampler.retry.get(task_id), sampler.queued.get(task_id)
        row: dict[str, Any] = {"queue": marker, "retried": second is not None}
        if first and second:
            row["extra_s"] = round(second["start"] - first["end"] - BACKOFF_S, 2)
        if retry:
            # gone between its last sighting and the next sample: the poller's lag is at most last + 0.2 - due
            row["poller_lag_s"] = round(retry["last"] + 0.2 - retry["retry_after"], 2)
        if queued and second:
            row["queue_wait_s"] = round(second["start"] - queued["first"], 2)
        out[marker] = row
    return out


def run(args: common.Args) -> list[CheckResult]:
    """Idle and hot queues side by side on one engine."""
    t0 = time.monotonic()
    py = common.runtimes(args, "hatchet-sdk")[0]
    with common.hatchet_stack(args.logs, "hatchet-lite") as st:
        attempts_file = args.logs / "attempts.jsonl"
        env = {**st.client_env("retry"), "FINDING_ATTEMPTS": str(attempts_file), "FINDING_BACKOFF_S": str(BACKOFF_S),
               "FINDING_QUEUES": str(args.tries)}
        worker = st.processes.start("worker", [py.python, "-m", common.client_module(), "worker", "--slots", "50"], env,
                                    common.Health(log="waiting for tasks"), wait_s=90)
        time.sleep(3)  # its listener registers (the log line above comes first)
        with Sampler(st) as sampler:
            driver = st.processes.start("retries", [py.python, "-m", common.client_module(), "retries", "--trickle",
                                                    "1", "--wait", str(BACKOFF_S + 75), "--out",
                                                    str(args.logs / "sent.jsonl")], env,
                                        common.Health(log=r"(?m)^ready$"), wait_s=90)
            driver.wait(BACKOFF_S + 140)
            time.sleep(0.5)
        worker.kill()
        rows = analyse(st, sampler, common.read_lines(attempts_file))
    idle = [r for q, r in rows.items() if q.startswith("idle-")]
    hot = [r for q, r in rows.items() if q.startswith("hot-")]
    hits = [r for r in idle if r.get("extra_s", 0) > EXTRA_S and r.get("poller_lag_s", 99) < POLLER_LAG_S]
    for r in idle + hot:
        common.say(f"{r['queue']}: retry {r.get('extra_s', 'never')} s after its backoff; poller lag "
                   f"{r.get('poller_lag_s', '?')} s; waited {r.get('queue_wait_s', '?')} s in v1_queue_item")

    def figures(rs: list[dict[str, Any]], key: str) -> str:
        xs = sorted(r[key] for r in rs if key in r)
        return f"median {statistics.median(xs):.1f} s (range {xs[0]:.1f}-{xs[-1]:.1f})" if xs else "none"

    detail = (f"idle queues: retry {figures(idle, 'extra_s')} after its {BACKOFF_S:g} s backoff, retry poller lag "
              f"{figures(idle, 'poller_lag_s')}, wait in v1_queue_item {figures(idle, 'queue_wait_s')}; hot queues "
              f"(a passing run/s): retry {figures(hot, 'extra_s')} after its backoff")
    common.say(f"late {len(hits)} of {len(idle)}")
    return [CheckResult.judge(len(hits), args.tries, time.monotonic() - t0, detail,
                              {"hatchet-engine": common.engine_version(), "hatchet-sdk": py.version},
                              {"idle": idle, "hot": hot, "backoff_s": BACKOFF_S})]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    return common.main(argv, __doc__ or "", TRIES, plan, run)


if __name__ == "__main__":
    sys.exit(main())
