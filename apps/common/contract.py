"""The HTTP contract every system under test implements, and the knobs the harness passes it.

``POST /tasks`` with a :class:`TaskRequest` body answers 202 once the task is accepted, 422 for a
malformed body (its job parameters included: :class:`JobParams`) and 503 when it cannot accept now;
``GET /healthz`` answers 200 when ready. An app wraps itself in :func:`refuse_malformed`.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from harness.model.env import ENV_TASK_CONFIG


class JobParams(BaseModel):
    """What one task asks its job to do; strict, so a body the schema would refuse never reaches a job."""

    # Strict types (no "5" for 5, no 1 for true) and finite numbers: what the OpenAPI schema says.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    duration_s: float = Field(default=0.1, ge=0, le=3600)
    """Work time: sleep for ``sleep`` jobs, busy CPU for ``cpu`` jobs."""
    fail_p: float = Field(default=0.0, ge=0, le=1)
    """Probability that an attempt raises after its work."""
    fail_first: int = Field(default=0, ge=0, le=1000)
    """The first N attempts raise, whatever fail_p says."""
    hang_p: float = Field(default=0.0, ge=0, le=1)
    """Probability that an attempt hangs for hang_s before its work."""
    hang_s: float = Field(default=0.0, ge=0, le=3600)
    """How long a hanging attempt hangs."""
    hang_ignores_cancel: bool = False
    """Hang in a thread the event loop cannot cancel (a blocking call that ignores timeouts)."""
    downstream: bool = False
    """Call the downstream service before recording the effect."""


class TaskRequest(BaseModel):
    """Body of ``POST /tasks``: validated whole before the app accepts anything (422 otherwise)."""

    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")
    """Client-made id, unique within a run."""
    kind: Literal["sleep", "cpu"]
    """Job kind: ``sleep`` (I/O-like) or ``cpu`` (CPU-bound)."""
    params: JobParams = Field(default_factory=JobParams)
    """Job parameters, checked here rather than when the job runs: a hostile value is refused, never run."""


class _AsciiJSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        # ASCII escapes: a lone surrogate from the body (valid JSON, not encodable as UTF-8) cannot break the answer.
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()


async def _malformed(request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    # Where and why, never the input itself: FastAPI's own answer echoes it, and a body holding
    # "\ud800" then turns its 422 into a 500.
    return _AsciiJSON({"detail": [{"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]} for e in errors]},
                      status_code=422)


def refuse_malformed(app: FastAPI) -> FastAPI:
    """app, answering every malformed request 422 (FastAPI's default handler can fail with a 500)."""
    app.add_exception_handler(RequestValidationError, _malformed)
    return app


class TaskConfig(BaseModel):
    """How a system runs tasks in a scenario: retries, backoff, timeout and worker slots."""

    retries: int = 3
    """Retries after a failed attempt (systems that cannot retry ignore it)."""
    backoff_factor: float = 2.0
    """Exponential backoff factor between retries."""
    backoff_max_s: int = 5
    """Cap of the backoff, seconds."""
    execution_timeout_s: float = 30.0
    """An attempt running longer is cancelled (where the system supports it)."""
    slots: int = 50
    """Concurrent tasks per worker process."""
    trigger_threads: int = 64
    """Threads an API gives its blocking trigger calls (Hatchet's SDK triggers in the default executor); 0: the
    asyncio default, min(32, cores + 4)."""
    seed: int = 0
    """Seed of the job's pseudo-random failures."""

    @classmethod
    def from_env(cls) -> TaskConfig:
        """Read the settings the harness passed; defaults when run by hand."""
        raw = os.environ.get(ENV_TASK_CONFIG)
        return cls(**json.loads(raw)) if raw else cls()
