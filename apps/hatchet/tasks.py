"""The Hatchet task definition, shared by the API (to trigger it) and the workers (to run it).

The harness gives every process its token, engine address (through a Toxiproxy link) and a
namespace per run, so runs left over in the engine from an earlier run never reach these workers.
"""

from __future__ import annotations

from datetime import timedelta

from hatchet_sdk import Context, Hatchet

from apps.common.contract import TaskConfig, TaskRequest
from apps.common.job import run_job

config = TaskConfig.from_env()
hatchet = Hatchet()


@hatchet.task(
    name="job",
    input_validator=TaskRequest,
    retries=config.retries,
    backoff_factor=config.backoff_factor,
    backoff_max_seconds=config.backoff_max_s,
    execution_timeout=timedelta(seconds=config.execution_timeout_s),
)
async def job(input: TaskRequest, ctx: Context) -> dict[str, str]:
    """One attempt of the shared job; Hatchet retries it when it raises."""
    await run_job(input, ctx.retry_count, config)
    return {"task_id": input.task_id}
