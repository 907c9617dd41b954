"""hatchet-sdk's worker says "started, waiting for tasks..." before the engine knows it: its readiness line comes first.

Starts Postgres and the pinned engine and, per try, one real hatchet-sdk worker (the tries side by
side). A worker's parent process logs ``'<name>' started, waiting for tasks...`` when its action
runner starts, right after it spawned the action listener process, which then imports the SDK and
only then registers with the engine (``Register``, which writes the ``"Worker"`` row). The
reproduction watches the logs and, the moment a worker's line appears, looks for that worker in
the engine's database; then it waits for the row. A try reproduces it when the line came while
the engine had no row for that worker: a readiness check reading the line (the harness's own
worker health check does) declares ready a worker the engine cannot give tasks to yet, and one
that may never register (see hatchet-worker-exit-zero).

Usage: ``python -m findings.repro.hatchet_worker_ready_before_registered [--tries 2] [--sdk hatchet-sdk==1.43.1]``.
"""

from __future__ import annotations

import functools
import re
import sys
import time
from collections.abc import Sequence
from typing import Any

from findings.repro import common
from harness.model.finding import CheckResult

TRIES = 2
VERSIONS = ("hatchet-sdk==1.38.0", "hatchet-sdk==1.43.1")
READY = re.compile(r"started, waiting for tasks")
"""The line hatchet-sdk logs when its action runner starts (worker/runner/run_loop_manager.py)."""


def plan(args: common.Args) -> list[str]:
    """What a run does."""
    versions = list(args.sdk) or list(VERSIONS)
    return [f"start: Postgres + hatchet-engine {common.engine_version()} (hatchet-lite)",
            f"versions: {', '.join(versions)}",
            f"tries: {args.tries} workers per version, side by side: the moment 'started, waiting for tasks' appears "
            "in a worker's log, is it in the engine's \"Worker\" table? then, when does it appear there?",
            "reproduced: the line came while the engine had no row for that worker"]


def registered(st: common.HatchetStack, name: str) -> bool:
    """True once the engine has a worker row for name (namespaced or not)."""
    return bool(st.query('SELECT count(*) FROM "Worker" WHERE name LIKE %s', (f"%{name}",))[0][0])


def side_by_side(st: common.HatchetStack, py: common.Runtime, tries: int) -> list[dict[str, Any]]:
    """Start the workers together; at each one's readiness line, is it registered? When is it?"""
    names = [f"ready-{py.version}-{k}".replace(".", "-") for k in range(tries)]
    procs = {n: st.processes.start(n, [py.python, "-m", common.client_module(), "worker", "--name", n],
                                   st.client_env("ready")) for n in names}
    line_at: dict[str, float] = {}
    at_line: dict[str, bool] = {}
    deadline = time.monotonic() + 90
    while len(line_at) < len(names) and time.monotonic() < deadline:
        for n, proc in procs.items():
            if n not in line_at and READY.search(proc.log_path.read_text(errors="replace")):
                line_at[n] = time.monotonic()
                at_line[n] = registered(st, n)
        time.sleep(0.02)
    out = []
    for k, n in enumerate(names):
        gap = None
        if n in line_at and common.wait_until(functools.partial(registered, st, n), 60, step=0.05):
            gap = round(time.monotonic() - line_at[n], 2)
        procs[n].kill()
        seen = at_line.get(n)
        out.append({"worker": n, "line_seen": n in line_at, "registered_at_line": seen,
                    "registered_after_line_s": gap})
        common.say(f"{py.label} try {k + 1}: readiness line with the worker "
                   + ("not registered" if seen is False else "registered" if seen else "never logged the line")
                   + (f"; registered {gap} s after the line" if gap is not None and seen is False else ""))
    return out


def run(args: common.Args) -> list[CheckResult]:
    """Each version's workers on one engine."""
    pys = common.runtimes(args, "hatchet-sdk", VERSIONS)
    results = []
    with common.hatchet_stack(args.logs, "hatchet-lite") as st:
        for py in pys:
            t0 = time.monotonic()
            tries = side_by_side(st, py, args.tries)
            hits = [t for t in tries if t["registered_at_line"] is False]
            gaps = [t["registered_after_line_s"] for t in hits if t["registered_after_line_s"] is not None]
            detail = (f"'started, waiting for tasks' came before the engine had the worker in {len(hits)} of "
                      f"{len(tries)} tries" + (f"; it registered {min(gaps)}-{max(gaps)} s after the line"
                                               if gaps else ""))
            results.append(CheckResult.judge(len(hits), len(tries), time.monotonic() - t0, detail,
                                             {"hatchet-sdk": py.version, "hatchet-engine": common.engine_version()},
                                             {"tries": tries}))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    return common.main(argv, __doc__ or "", TRIES, plan, run)


if __name__ == "__main__":
    sys.exit(main())
