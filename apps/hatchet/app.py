"""Hatchet system, API side: accept a task by triggering a Hatchet run (fire and forget)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from apps.common.contract import TaskRequest, refuse_malformed
from apps.hatchet.tasks import job

TRIGGER_TIMEOUT_S = 5.0
"""Longest a trigger may take before the API answers 503 (the engine may still have it)."""

app = refuse_malformed(FastAPI(title="Hatchet system API"))
log = logging.getLogger("apps.hatchet.app")


@app.post("/tasks", status_code=202, response_model=None)
async def submit(req: TaskRequest) -> dict[str, str] | JSONResponse:
    """Accept a task once the engine has stored its run; 503 when the engine cannot be reached."""
    try:
        await asyncio.wait_for(job.aio_run(req, wait_for_result=False), TRIGGER_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - any trigger failure is a refusal to the client
        log.warning("trigger of %s failed: %s", req.task_id, type(exc).__name__)
        return JSONResponse({"task_id": req.task_id, "status": "unavailable", "error": type(exc).__name__},
                            status_code=503)
    return {"task_id": req.task_id, "status": "accepted"}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Ready once the process is up (the engine is health-checked on its own)."""
    return {"status": "ok"}
