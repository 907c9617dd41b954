"""hatchet-sdk's ``aio_run`` triggers through the event loop's default executor: min(32, cores + 4) at a time.

Starts Postgres and the pinned engine, with the client's path to the engine through Toxiproxy and
100 ms of latency on it (an engine a network hop away, or busy), and one hatchet-sdk client per
arm firing 60 concurrent ``aio_run(wait_for_result=False)`` per try. The loop's default executor is
an instrumented ``ThreadPoolExecutor`` of the size asyncio would make (``max_workers=None``:
min(32, cores + 4), 6 on two cores); the sized arm gives it 64 threads. Each call notes when it
was submitted, took a thread and ended. A try reproduces it when every trigger of the default arm
went through the default executor, never more than its size ran at once, and the sized arm ran
more at once (so the cap is the executor's, not the engine's).

Usage: ``python -m findings.repro.hatchet_aio_run_default_executor [--tries 2] [--sdk hatchet-sdk==1.43.1]``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from findings.repro import common
from harness.model.finding import CheckResult

TRIES = 2
VERSIONS = ("hatchet-sdk==1.38.0", "hatchet-sdk==1.43.1")
BURST = 60
"""Concurrent triggers per try."""
LATENCY_MS = 100
"""Latency on the client's path to the engine."""
SIZED = 64
"""Threads of the sized arm."""


def plan(args: common.Args) -> list[str]:
    """What a run does."""
    versions = list(args.sdk) or list(VERSIONS)
    default = min(32, (os.cpu_count() or 1) + 4)
    return [f"start: Postgres + hatchet-engine {common.engine_version()} (hatchet-lite); client->engine through "
            f"Toxiproxy with {LATENCY_MS} ms latency",
            f"versions: {', '.join(versions)}",
            f"tries: {args.tries} bursts of {BURST} concurrent aio_run per arm: default executor ({default} threads "
            f"here) vs {SIZED} threads",
            "reproduced: every trigger went through the default executor, at most its size at once, while the sized "
            "arm ran more at once"]


def bursts(st: common.HatchetStack, py: common.Runtime, arm: str, threads: int, tries: int) -> list[dict[str, Any]]:
    """One client process making ``tries`` bursts on its executor."""
    name = f"executor-{py.version}-{arm}"
    out = st.processes.logs / f"{name}.jsonl"
    proc = st.processes.start(name, [py.python, "-m", common.client_module(), "executor", "--count", str(BURST),
                                     "--threads", str(threads), "--bursts", str(tries), "--out", str(out)],
                              st.client_env("executor", via="trigger->engine"))
    proc.wait(120 + 30 * tries)
    lines = common.read_lines(out)
    if len(lines) < tries:
        raise RuntimeError(f"the executor client wrote {len(lines)} of {tries} bursts (exit {proc.exit_code()}; "
                           f"log {proc.log_path})")
    return lines


def run(args: common.Args) -> list[CheckResult]:
    """Each version's bursts on one engine."""
    pys = common.runtimes(args, "hatchet-sdk", VERSIONS)
    results = []
    with common.hatchet_stack(args.logs, "hatchet-lite") as st:
        st.client_link("trigger->engine")
        st.toxic("trigger->engine", "latency", "latency", {"latency": LATENCY_MS})
        for py in pys:
            t0 = time.monotonic()
            tries = []
            pairs = zip(bursts(st, py, "default", 0, args.tries), bursts(st, py, "sized", SIZED, args.tries),
                        strict=True)
            for k, (default, sized) in enumerate(pairs):
                hit = (default["through_default_executor"] == default["triggers"] == BURST
                       and default["peak_in_flight"] <= default["executor_size"] < sized["peak_in_flight"])
                tries.append({"default": default, "sized": sized, "reproduced": hit})
                common.say(f"{py.label} try {k + 1}: default executor {default['executor_size']} threads, peak "
                           f"{default['peak_in_flight']} in flight, longest wait {default['wait_max_s']} s, burst "
                           f"{default['wall_s']} s; sized: peak {sized['peak_in_flight']}, burst {sized['wall_s']} s")
            hits = sum(t["reproduced"] for t in tries)
            d, s = tries[-1]["default"], tries[-1]["sized"]
            detail = (f"{BURST} concurrent aio_run: all through the loop's default executor ({d['executor_size']} "
                      f"threads on {d['cpu_count']} cores), peak {d['peak_in_flight']} in flight, a trigger waited "
                      f"up to {d['wait_max_s']} s for a thread, burst {d['wall_s']} s; {SIZED} threads: peak "
                      f"{s['peak_in_flight']}, waited up to {s['wait_max_s']} s, burst {s['wall_s']} s "
                      f"({LATENCY_MS} ms to the engine)")
            results.append(CheckResult.judge(hits, len(tries), time.monotonic() - t0, detail,
                                             {"hatchet-sdk": py.version, "hatchet-engine": common.engine_version()},
                                             {"tries": tries}))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    return common.main(argv, __doc__ or "", TRIES, plan, run)


if __name__ == "__main__":
    sys.exit(main())
