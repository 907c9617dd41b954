"""Celery's loss window on a worker SIGKILL: a task published while the killed worker is dying is lost.

worker-kill loses one Celery task in every run we made, always one published 36 to 103 ms after the
SIGKILL. This isolates it: Redis (AOF) and two prefork workers of the recommended configuration
(apps/celery/tasks.py, 50 children each), 40 two-second tasks in flight, then SIGKILL of worker-1's
process group and, ``delay`` later (0, 10, 20 ... ms), one more task published. A task counts as
lost when no attempt of it starts anywhere within 3 s and it is neither in the queue nor restored
after the visibility timeout (checked 65 s later). Redis's BRPOP hands a message to a connection
that is still open while the dying process's 51 members are torn down; kombu records a message as
unacknowledged only once its client has received it, so that message is in neither list.

Usage: ``.venv/bin/python -m bench.celery_kill_window [--trials 8]`` (about 3 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.backends.base import free_port
from harness.ledger import create_ledger
from harness.model.paths import PROJECT_ROOT


def main() -> None:
    """Run the trials and print, per publish delay, whether the task ran."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=8, help="publish delays 0, 10, ... ms after the kill")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="celery-kill-window-"))
    port = free_port()
    # Redis and worker flags as apps/celery/system.toml starts them (AOF fsync every second, prefork).
    redis = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(tmp),
                              "--appendonly", "yes", "--appendfsync", "everysec"],
                             stdout=(tmp / "redis.log").open("w"))
    ledger = create_ledger(tmp / "ledger.db")
    env = {**os.environ, "CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/0", "HARNESS_LEDGER": ledger.url,
           "HARNESS_SYSTEM": "celery", "PYTHONPATH": str(PROJECT_ROOT),
           "HARNESS_TASK_CONFIG": json.dumps({"slots": 50})}

    def worker(name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "celery", "-A", "apps.celery.tasks", "worker", "--hostname",
                                 f"{name}@bench", "--pool", "prefork", "--loglevel", "WARNING"],
                                env={**env, "HARNESS_PROCESS": name}, cwd=PROJECT_ROOT, start_new_session=True,
                                stdout=(tmp / f"{name}.log").open("a"), stderr=subprocess.STDOUT)

    workers = {"worker-1": worker("worker-1"), "worker-2": worker("worker-2")}
    os.environ.update(env)
    from apps.celery.tasks import job  # here: it reads the broker URL from the environment

    def send(task_id: str, seconds: float) -> None:
        job.apply_async(args=({"task_id": task_id, "kind": "sleep", "params": {"duration_s": seconds}},),
                        task_id=task_id)

    try:
        time.sleep(10)  # both workers up
        outcome: dict[int, str] = {}
        for trial in range(args.trials):
            for k in range(40):
                send(f"busy{trial}-{k}", 2.0)
            time.sleep(1.0)
            os.killpg(workers["worker-1"].pid, signal.SIGKILL)
            time.sleep(0.01 * trial)
            send(f"probe{trial}", 0.05)
            workers["worker-1"].wait()
            time.sleep(3)
            outcome[10 * trial] = f"probe{trial}"
            workers["worker-1"] = worker("worker-1")
            time.sleep(8)
        time.sleep(65)  # past the visibility timeout (45 s) and a restore sweep
        started = {e.task_id for e in ledger.events("start")}
        for delay, task_id in outcome.items():
            print(f"published {delay:3d} ms after the kill: {'ran' if task_id in started else 'LOST'}")
        print(f"lost {sum(t not in started for t in outcome.values())} of {len(outcome)}")
    finally:
        for proc in workers.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        redis.kill()
        redis.wait()


if __name__ == "__main__":
    main()
