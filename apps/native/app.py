"""Native system: FastAPI's BackgroundTasks run the job inside the API process after the response."""

from __future__ import annotations

from fastapi import BackgroundTasks, FastAPI

from apps.common.contract import TaskConfig, TaskRequest, refuse_malformed
from apps.common.job import recorder, run_job

app = refuse_malformed(FastAPI(title="native BackgroundTasks system"))
config = TaskConfig.from_env()


async def _attempt(req: TaskRequest) -> None:
    # One attempt, no retry: that is what BackgroundTasks offers. The error is already in the
    # ledger; swallowing it keeps Starlette from logging a traceback per failed task.
    try:
        await run_job(req, 0, config)
    except Exception:  # noqa: BLE001
        pass


@app.post("/tasks", status_code=202)
async def submit(req: TaskRequest, background: BackgroundTasks) -> dict[str, str]:
    """Accept a task: it runs in this process once the 202 is sent."""
    background.add_task(_attempt, req)
    return {"task_id": req.task_id, "status": "accepted"}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Ready once the ledger is reachable."""
    recorder()
    return {"status": "ok"}
