"""Celery system, API side: accept a task by sending it to the broker."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from apps.celery.tasks import job
from apps.common.contract import TaskRequest, refuse_malformed

app = refuse_malformed(FastAPI(title="Celery system API"))
log = logging.getLogger("apps.celery.app")


# A plain function: apply_async blocks on the broker, so FastAPI runs it in its thread pool.
@app.post("/tasks", status_code=202, response_model=None)
def submit(req: TaskRequest) -> dict[str, str] | JSONResponse:
    """Accept a task once the broker has it (Celery retries the publish 3 times); 503 when it cannot."""
    try:
        job.apply_async(args=(req.model_dump(mode="json"),), task_id=req.task_id)
    except Exception as exc:  # noqa: BLE001 - any publish failure is a refusal to the client
        log.warning("publish of %s failed: %s", req.task_id, type(exc).__name__)
        return JSONResponse({"task_id": req.task_id, "status": "unavailable", "error": type(exc).__name__},
                            status_code=503)
    return {"task_id": req.task_id, "status": "accepted"}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Ready once the process is up (the broker is health-checked on its own)."""
    return {"status": "ok"}
