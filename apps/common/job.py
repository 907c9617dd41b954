"""The one job both systems run: the same code, called by BackgroundTasks or by a Hatchet worker.

An attempt records its start in the ledger, does its work (an async sleep for I/O-like work, a CPU
burn in a thread for CPU-bound work, optionally a call to the downstream service), may fail or
hang on purpose, and records its side effect when it succeeds. Failures are pseudo-random but
seeded per (seed, task id, attempt), so the same seed fails the same attempts.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from apps.common.contract import TaskConfig, TaskRequest
from harness.ledger import Recorder
from harness.model.env import ENV_DOWNSTREAM


class JobFailure(RuntimeError):
    """The job failed on purpose (the scenario asked for it)."""


def _draw(seed: int, task_id: str, attempt: int, what: str) -> float:
    return random.Random(f"{seed}:{task_id}:{attempt}:{what}").random()


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    x = 0
    while time.process_time() < end:
        for i in range(10_000):
            x ^= i * i


async def _hang(seconds: float, *, ignore_cancel: bool) -> None:
    if not ignore_cancel:
        await asyncio.sleep(seconds)
        return
    sleeper = asyncio.ensure_future(asyncio.sleep(seconds))
    while True:
        try:
            await asyncio.shield(sleeper)
            return
        except asyncio.CancelledError:
            continue  # ignored, as a blocking call without a timeout would ignore it


CLIENT_TIMEOUT_S = 10.0
"""Timeout of each downstream call (connect, read, write and pool wait each)."""
CLIENT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
"""The client's connection pool: httpx's defaults, stated (calls beyond 100 at once wait for a connection)."""
CLIENT_SETTINGS = (f"httpx {httpx.__version__} AsyncClient, one per process: timeout {CLIENT_TIMEOUT_S:g} s, "
                   f"pool of {CLIENT_LIMITS.max_connections} connections ({CLIENT_LIMITS.max_keepalive_connections} "
                   f"kept alive {CLIENT_LIMITS.keepalive_expiry:g} s)")
"""The downstream client as the report states it (results.json manifest ``downstream_client``)."""
CLIENT_SPAN = "downstream.client"
"""Name of the span a job records around its downstream call."""

_recorder: Recorder | None = None
_client: httpx.AsyncClient | None = None
_pool: ThreadPoolExecutor | None = None


def _cpu_pool(slots: int) -> ThreadPoolExecutor:
    """The process's executor for CPU-bound jobs, one thread per slot: not the event loop's default executor, which
    an SDK uses for its own calls (hatchet-sdk's listener and triggers: hatchet-dev/hatchet#4803), so a busy job
    never starves the system's own threads of a place to run."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(1, slots), thread_name_prefix="job-cpu")
    return _pool


def recorder() -> Recorder:
    """This process's ledger recorder (built once from the harness's environment)."""
    global _recorder
    if _recorder is None:
        _recorder = Recorder.from_env()
    return _recorder


def _downstream() -> httpx.AsyncClient:
    global _client
    if _client is None:
        _client = httpx.AsyncClient(base_url=os.environ[ENV_DOWNSTREAM], timeout=CLIENT_TIMEOUT_S,
                                    limits=CLIENT_LIMITS)
    return _client


async def call_downstream(rec: Recorder, task_id: str, attempt: int) -> None:
    """POST the task's side effect to the downstream service; records the call as a ``downstream.client`` span.

    The span runs from just before the request to its answer or error (detail: the status, or the
    exception), so the report can set it beside the service's own ``downstream.server`` span.
    """
    t0 = time.time()
    detail = "no answer"
    try:
        resp = await _downstream().post("/send", json={"task_id": task_id, "attempt": attempt})
        detail = str(resp.status_code)
        resp.raise_for_status()
    except BaseException as exc:  # cancellation included: the span says how the call ended
        if detail == "no answer":
            detail = f"{type(exc).__name__}: {exc}".rstrip(": ")  # httpx timeouts have no message
        raise
    finally:
        rec.span(task_id, CLIENT_SPAN, t0, time.time(), attempt, detail)


async def run_job(req: TaskRequest, attempt: int, config: TaskConfig) -> None:
    """Run one attempt of a task; raises when the attempt fails (the system may retry)."""
    rec = recorder()
    rec.started(req.task_id, attempt)
    try:
        params = req.params
        if params.hang_p and _draw(config.seed, req.task_id, attempt, "hang") < params.hang_p:
            await _hang(params.hang_s, ignore_cancel=params.hang_ignores_cancel)
        if req.kind == "cpu":
            await asyncio.get_running_loop().run_in_executor(_cpu_pool(config.slots), _burn, params.duration_s)
        else:
            await asyncio.sleep(params.duration_s)
        unlucky = params.fail_p and _draw(config.seed, req.task_id, attempt, "fail") < params.fail_p
        if attempt < params.fail_first or unlucky:
            raise JobFailure(f"attempt {attempt} of {req.task_id} failed on purpose")
        if params.downstream:
            await call_downstream(rec, req.task_id, attempt)
    except BaseException as exc:  # cancellation (timeouts) included: the attempt ended without effect
        rec.failed(req.task_id, attempt, f"{type(exc).__name__}: {exc}")
        raise
    rec.effect(req.task_id, attempt)
