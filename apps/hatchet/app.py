"""Hatchet system, API side: accept a task by triggering a Hatchet run (fire and forget).

hatchet-sdk's ``aio_run`` (1.38.0 and 1.43.1 alike) sends the trigger with the synchronous gRPC stub through
``asyncio.to_thread``, i.e. the event loop's default executor, which has min(32, cores + 4)
threads (6 on two cores): every trigger beyond that waits for a thread. A competent user sizes
that executor (the scenario parameter ``trigger_threads``; 0 keeps the SDK's default size, the
naive configuration). Either way the executor is instrumented, so each accepted task records how
long its trigger waited for a thread (span ``trigger.wait``) and how long the gRPC call took
(``trigger.call``, which includes the engine storing the run).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from apps.common.contract import TaskConfig, TaskRequest, refuse_malformed
from apps.common.job import recorder
from apps.hatchet.tasks import job

TRIGGER_TIMEOUT_S = 5.0
"""Longest a trigger may take before the API answers 503 (the engine may still have it)."""
SDK_DEFAULT_THREADS = min(32, (os.cpu_count() or 1) + 4)
"""Size of the default executor asyncio makes (what ``trigger_threads = 0`` keeps)."""

config = TaskConfig.from_env()
log = logging.getLogger("apps.hatchet.app")
_timing: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar("trigger_timing", default=None)


class TimedExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor that notes, for the request submitting the work, when a thread took it up and let go."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Submit fn, timing its queue wait and run for the current request (if it is timing one)."""
        timing = _timing.get()  # run_in_executor is called from the request's task: its context
        if timing is None:
            return super().submit(fn, *args, **kwargs)
        timing["submitted"] = time.time()

        def timed() -> Any:
            timing["started"] = time.time()
            try:
                return fn(*args, **kwargs)
            finally:
                timing["ended"] = time.time()

        return super().submit(timed)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """Install the trigger executor on the serving loop."""
    threads = config.trigger_threads or SDK_DEFAULT_THREADS
    executor = TimedExecutor(max_workers=threads, thread_name_prefix="trigger")
    asyncio.get_running_loop().set_default_executor(executor)
    log.info("trigger executor: %d threads (trigger_threads=%d)", threads, config.trigger_threads)
    yield
    executor.shutdown(wait=False, cancel_futures=True)


app = refuse_malformed(FastAPI(title="Hatchet system API", lifespan=lifespan))


@app.post("/tasks", status_code=202, response_model=None)
async def submit(req: TaskRequest) -> dict[str, str] | JSONResponse:
    """Accept a task once the engine has stored its run; 503 when the engine cannot be reached."""
    timing: dict[str, float] = {}
    _timing.set(timing)
    try:
        await asyncio.wait_for(job.aio_run(req, wait_for_result=False), TRIGGER_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - any trigger failure is a refusal to the client
        log.warning("trigger of %s failed: %s", req.task_id, type(exc).__name__)
        return JSONResponse({"task_id": req.task_id, "status": "unavailable", "error": type(exc).__name__},
                            status_code=503)
    if {"submitted", "started", "ended"} <= timing.keys():
        rec = recorder()
        rec.span(req.task_id, "trigger.wait", timing["submitted"], timing["started"])
        rec.span(req.task_id, "trigger.call", timing["started"], timing["ended"])
    return {"task_id": req.task_id, "status": "accepted"}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Ready once the process is up (the engine is health-checked on its own)."""
    return {"status": "ok"}
