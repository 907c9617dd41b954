"""Celery with a Redis broker loses a task published in the instant after a busy worker's SIGKILL.

worker-kill lost one Celery task in every run we made, always one published 36 to 103 ms after
the SIGKILL. This isolates it: Redis (AOF, as apps/celery/system.toml starts it) and two prefork
workers of the recommended configuration (apps/celery/tasks.py: acks late, reject on worker
lost, prefetch 1; 50 children each), 40 two-second tasks in flight, then SIGKILL of one worker's
process group (the two in turn) and, ``delay`` later (20 ... 100 ms), one probe task published.
Redis's BRPOP hands the probe to the killed worker's connection, still open while its 51
processes are torn down; kombu records a message as unacknowledged only once its client has read
it, so the probe is in neither the queue nor the unacked hash, and no visibility timeout brings it
back. A try counts as reproduced when no attempt of its probe started anywhere, checked after the
visibility timeout (21 s here: the scenario's execution timeout 10 s + 5 + backoff cap 1 + 5) and
two restore sweeps.

Mechanism check (one try first, deterministic): worker-1 alone, idle (its BRPOP outstanding), is
SIGSTOPped, a probe is published (Redis pops it into the stopped worker's socket: the queue is
empty and nothing is in ``unacked``), then the worker is SIGKILLed. The tries then kill the two
workers in turn (each restarted while the other takes the next try).

Usage: ``python -m findings.repro.celery_kill_window [--tries 6]``; ``--sdk kombu==X`` runs the
workers on that kombu's venv (``make sdk-versions SDK_VERSIONS=kombu==X``).
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from findings.repro import common
from harness.model.finding import CheckResult

TRIES = 6
TASK_CONFIG = {"slots": 50, "execution_timeout_s": 10, "backoff_max_s": 1}
"""50 children per worker (the harness's default slots); a short execution timeout, so a short visibility timeout."""
VISIBILITY_S = 10 + 5 + 1 + 5
"""The visibility timeout apps/celery/tasks.py derives from TASK_CONFIG."""
BUSY = 40
"""Two-second tasks in flight at the kill."""


def delay_ms(k: int, tries: int) -> int:
    """The publish delay of try k: spread over 20 ... 100 ms (the window we saw: 36-103 ms)."""
    return 20 + round(80 * k / max(1, tries - 1))


def plan(args: common.Args) -> list[str]:
    """What a run does."""
    delays = ", ".join(str(delay_ms(k, args.tries)) for k in range(args.tries))
    return ["start: Redis (AOF) through the harness's infra; 2 Celery prefork workers x 50 children (recommended "
            "config)",
            "mechanism check: worker-1 alone SIGSTOPped while idle, probe published, SIGKILL",
            f"tries: {args.tries}: {BUSY} 2 s tasks in flight, SIGKILL of one worker's group (in turn), probe "
            f"published {delays} ms later; that worker restarted",
            f"reproduced: no attempt of a probe ever starts (checked after the {VISIBILITY_S} s visibility timeout + "
            "two restore sweeps)"]


def mechanism(st: common.CeleryStack, send: Any) -> dict[str, Any]:
    """worker-1 alone and idle: freeze it, publish, look at Redis, kill it."""
    w1 = st.worker("worker-1")
    time.sleep(2)  # idle: its BRPOP is outstanding
    r = st.redis()
    w1.signal(signal.SIGSTOP)
    send("mechanism-probe", 0.05)
    time.sleep(1.0)
    seen = {"queued": int(r.llen("celery")), "unacked": int(r.hlen("unacked"))}
    w1.kill()
    common.say(f"mechanism: probe published to a frozen idle worker: {seen['queued']} in the queue, "
               f"{seen['unacked']} unacked; worker SIGKILLed")
    return seen


def run(args: common.Args) -> list[CheckResult]:
    """The mechanism check, then the tries (the two workers killed in turn, each restarted while the other
    works), then one wait past the visibility timeout."""
    t0 = time.monotonic()
    with common.celery_stack(args, TASK_CONFIG) as st:
        send = common.publisher(st)
        seen = mechanism(st, send)
        w1 = st.processes.started[-1]
        w1.start()
        workers = [w1, st.worker("worker-2")]
        probes: dict[str, int] = {}
        for k in range(args.tries):
            target = workers[k % 2]
            target.wait_healthy(120)
            for i in range(BUSY):
                send(f"busy{k}-{i}", 2.0)
            time.sleep(1.0)
            d = delay_ms(k, args.tries)
            target.signal(signal.SIGKILL)
            time.sleep(d / 1000)
            send(f"probe{k}", 0.05)
            target.wait(30)
            probes[f"probe{k}"] = d
            target.kill()  # reap what is left of its group
            target.start()  # back while the other worker takes the next try
            time.sleep(2)
            common.say(f"try {k + 1}: probe published {d} ms after {target.name}'s SIGKILL; "
                       f"{'started' if f'probe{k}' in st.started() else 'not started yet'}")
        common.say(f"waiting {VISIBILITY_S + 12} s: the visibility timeout and two restore sweeps")
        time.sleep(VISIBILITY_S + 12)
        started = st.started()
        r = st.redis()
        left = {"queued": int(r.llen("celery")), "unacked": int(r.hlen("unacked"))}
        versions = st.versions()
    lost = {p: d for p, d in probes.items() if p not in started}
    for p, d in probes.items():
        common.say(f"published {d:3d} ms after the kill: {'LOST' if p in lost else 'ran'}")
    common.say(f"lost {len(lost)} of {len(probes)}")
    mech_lost = "mechanism-probe" not in started
    detail = (f"lost {len(lost)} of {len(probes)} probes published 20-100 ms after a busy worker's SIGKILL "
              f"(at {', '.join(f'{d} ms' for d in lost.values()) or 'none'}); mechanism check: a probe published to a "
              f"frozen idle worker was in the queue {seen['queued']}x and unacked {seen['unacked']}x, then "
              f"{'never ran' if mech_lost else 'ran'} after its SIGKILL")
    return [CheckResult.judge(len(lost), len(probes), time.monotonic() - t0, detail, versions,
                              {"probes": {p: {"delay_ms": d, "lost": p in lost} for p, d in probes.items()},
                               "mechanism": {**seen, "lost": mech_lost}, "left_in_redis": left})]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    return common.main(argv, __doc__ or "", TRIES, plan, run)


if __name__ == "__main__":
    sys.exit(main())
