"""The HTTP contract every system under test implements, and the knobs the harness passes it.

``POST /tasks`` with a :class:`TaskRequest` body answers 202 once the task is accepted, 422 for a
malformed body and 503 when it cannot accept now; ``GET /healthz`` answers 200 when ready.
"""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ENV_TASK_CONFIG = "HARNESS_TASK_CONFIG"
"""Environment variable with the scenario's task settings as JSON (see :class:`TaskConfig`)."""
ENV_DOWNSTREAM = "HARNESS_DOWNSTREAM_URL"
"""Environment variable with the downstream service's base URL (through its Toxiproxy link)."""


class TaskRequest(BaseModel):
    """Body of ``POST /tasks``."""

    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")
    """Client-made id, unique within a run."""
    kind: str = Field(min_length=1, max_length=50)
    """Job kind: ``sleep`` (I/O-like) or ``cpu`` (CPU-bound)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Job parameters (see ``apps.common.job.JobParams``)."""


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
