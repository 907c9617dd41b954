"""Calibration system: deliberately faulty at points known in advance (``apps/calibration/rules.py``).

It is plugged in as any user's system would be (``system.toml`` plus an app on the HTTP contract,
recording through ``harness.ledger.Recorder``), so a calibration run checks the harness's whole
path, from client history to checker, against counts computed from the rules alone.

Every record of a task is written inside the request, before the 202 is sent: a SIGKILL of this
process can only leave a request unanswered (indeterminate) or refused, never an accepted task half
done, so the expected counts of accepted tasks stay exact through a kill. Each attempt's work is a
sleep of the task's ``duration_s`` between its start and its end, so a kill does catch requests
mid-task; the other job parameters are ignored: the rules alone decide what fails.
"""

from __future__ import annotations

import time

from fastapi import FastAPI

from apps.calibration.rules import Fate, fate
from apps.common.contract import TaskConfig, TaskRequest, refuse_malformed
from apps.common.job import recorder

app = refuse_malformed(FastAPI(title="calibration system"))
config = TaskConfig.from_env()


# A plain function: FastAPI runs it in its thread pool, where the ledger's blocking writes belong.
@app.post("/tasks", status_code=202)
def submit(req: TaskRequest) -> dict[str, str]:
    """Run the task as its fate says (or not at all), then accept it."""
    rec, task_id, work_s = recorder(), req.task_id, req.params.duration_s
    match fate(task_id):
        case Fate.DROPPED:
            pass
        case Fate.FAILED:
            for attempt in range(1 + config.retries):
                rec.started(task_id, attempt)
                time.sleep(work_s)
                rec.failed(task_id, attempt, f"calibration: attempt {attempt} of {task_id} fails for good")
        case Fate.TWICE | Fate.ONCE as once_or_twice:
            for attempt in range(2 if once_or_twice is Fate.TWICE else 1):
                rec.started(task_id, attempt)
                time.sleep(work_s)
                rec.effect(task_id, attempt)
    return {"task_id": task_id, "status": "accepted"}


@app.get("/healthz")
def healthz() -> dict[str, str]:
    """Ready once the ledger is reachable."""
    recorder()
    return {"status": "ok"}
