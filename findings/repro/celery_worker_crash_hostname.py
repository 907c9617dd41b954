"""A Celery worker crashes on ``'NoneType' object has no attribute 'hostname'`` when its Redis link drops with tasks in
hand.

Starts Redis (AOF) through the harness's infra and, per try, one prefork worker of the recommended
configuration (apps/celery/tasks.py: acks late, 4 children) reaching Redis through a Toxiproxy
link. Eight 6 s tasks are published; 2 s later, while four run, the link is cut for 3 s (its
connections dropped, new ones refused), then healed. The worker's consumer closes the broken
connection: kombu's ``Channel.close`` drops its connection pools before restoring the unacked
messages, the restore fails on the dead link, and ``Connection.collect`` then sets the transport's
``client`` to None; the next Redis command on that channel (the ack of a task that finishes)
builds a new pool from ``Channel._connparams``, which reads ``self.connection.client.hostname``.
A try reproduces it when the worker logs that AttributeError (``Unrecoverable error``) and its
main process exits. Control (one try first): the same cut with no task in hand.

Usage: ``python -m findings.repro.celery_worker_crash_hostname [--tries 4]``; ``--sdk kombu==X`` runs the
worker on that kombu's venv (``make sdk-versions SDK_VERSIONS=kombu==X``).
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from findings.repro import common
from harness.backends.base import Proc
from harness.model.finding import CheckResult

TRIES = 4
TASK_CONFIG = {"slots": 50, "execution_timeout_s": 20, "backoff_max_s": 1}
"""50 children (the harness's default slots); a 20 s execution timeout (a 31 s visibility timeout)."""
RATE = 20.0
"""Tasks published per second while a try runs (0.2 s each: a few are always in hand)."""
CUT_S = 5.0
"""How long the worker's link to Redis is cut (broker-outage's 5 s)."""
CRASH = "'NoneType' object has no attribute 'hostname'"


def plan(args: common.Args) -> list[str]:
    """What a run does."""
    return ["start: Redis (AOF) through the harness's infra; worker->broker through Toxiproxy; one worker of the "
            "recommended config (acks late, 50 children)",
            f"control: the link cut {CUT_S:g} s with no task in hand",
            f"tries: {args.tries}: {RATE:g} tasks/s of 0.2 s published (straight to Redis), the link cut {CUT_S:g} s, "
            "healed; a crashed worker is replaced before the next try",
            f"reproduced: the worker logs {CRASH!r} (Unrecoverable error) and exits"]


class Stream:
    """Publishes 0.2 s tasks at RATE from a thread while the try runs."""

    def __init__(self, send: Any, prefix: str) -> None:
        self.send, self.prefix = send, prefix
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        k = 0
        while not self.stop.is_set():
            self.send(f"{self.prefix}-{k}", 0.2)
            k += 1
            time.sleep(1.0 / RATE)

    def __enter__(self) -> Stream:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def cut(st: common.CeleryStack, link: Any, worker: Proc, send: Any, name: str, stream: bool) -> dict[str, Any]:
    """Tasks flowing through the worker (or none), its link cut and healed; what the worker did."""
    toxi = st.infra.ensure_toxiproxy()
    offset = len(worker.log_path.read_text(errors="replace"))
    with contextlib.ExitStack() as during:
        if stream:
            during.enter_context(Stream(send, name))
        time.sleep(3.0)
        toxi.set_enabled(link.proxy, False)
        time.sleep(CUT_S)
        toxi.set_enabled(link.proxy, True)
        time.sleep(3.0)
    exited = worker.wait(8.0)
    log = worker.log_path.read_text(errors="replace")[offset:]
    crashed = CRASH in log
    restoring = re.findall(r"Restoring (\d+) unacknowledged message", log)
    trace = ""
    end = log.find(f"AttributeError: {CRASH}")
    if crashed and end >= 0:  # the last traceback's frames: which call met the half-closed channel
        last = log.rfind("Traceback (most recent call last)", 0, end)
        frames = re.findall(r'File "[^"]*/site-packages/([^"]+)", line (\d+), in (\w+)', log[last:end])
        trace = " -> ".join(f"{f}:{n} {fn}" for f, n, fn in frames)
    out = {"try": name, "tasks_flowing": stream, "exited": exited, "exit_code": worker.exit_code(),
           "crashed": crashed, "unrecoverable": "Unrecoverable error" in log,
           "restoring_unacked": [int(n) for n in restoring], "trace": trace}
    common.say(f"{name}: {'crashed on the AttributeError' if crashed else 'no AttributeError'}, "
               + (f"exited ({worker.exit_code()})" if exited else "still running")
               + (f"; it was restoring {', '.join(restoring)} unacked message(s)" if restoring else ""))
    return out


def run(args: common.Args) -> list[CheckResult]:
    """The control, then the tries, on one worker (replaced when it crashed)."""
    t0 = time.monotonic()
    with common.celery_stack(args, TASK_CONFIG) as st:
        link = st.infra.ensure_toxiproxy().create("worker->broker", st.broker)
        send = common.publisher(st)
        worker = st.worker("worker", broker=link.listen, loglevel="INFO")
        control = cut(st, link, worker, send, "control", stream=False)
        tries = []
        for k in range(args.tries):
            if not worker.alive():
                worker.kill()
                worker.start()
                worker.wait_healthy(120)
            tries.append(cut(st, link, worker, send, f"try-{k + 1}", stream=True))
        versions = st.versions()
    hits = [t for t in tries if t["crashed"] and t["exited"]]
    detail = (f"the worker crashed on {CRASH} and exited in {len(hits)} of {len(tries)} cuts with tasks flowing; "
              f"control (no task in hand): {'crashed' if control['crashed'] else 'no crash'}"
              + (f"; path: {hits[0]['trace']}" if hits else ""))
    common.say(f"crashed {len(hits)} of {len(tries)}")
    return [CheckResult.judge(len(hits), len(tries), time.monotonic() - t0, detail, versions,
                              {"tries": tries, "control": control})]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    return common.main(argv, __doc__ or "", TRIES, plan, run)


if __name__ == "__main__":
    sys.exit(main())
