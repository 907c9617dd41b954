"""Celery system: the task and the Celery configuration, shared by the API (to send) and the workers (to run).

The main configuration follows Celery's documentation for tasks that must not be lost with a
Redis broker (each setting says why); ``CELERY_SETTINGS=defaults`` (the ``celery-defaults``
variant) keeps Celery's own defaults instead, the naive configuration. Both map the scenario's
retries, backoff and execution timeout the same way, and run the shared job (apps/common/job.py).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any

from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready

from apps.common.contract import TaskConfig, TaskRequest
from apps.common.job import run_job

config = TaskConfig.from_env()
RECOMMENDED = os.environ.get("CELERY_SETTINGS", "recommended") != "defaults"
"""False in the ``celery-defaults`` variant."""
HARD_LIMIT_GRACE_S = 5.0
"""The hard time limit (the child is killed) comes this long after the soft one (the attempt is cancelled)."""
VISIBILITY_TIMEOUT_S = config.execution_timeout_s + HARD_LIMIT_GRACE_S + config.backoff_max_s + 5
"""Redis redelivers a message unacknowledged this long: longer than an attempt may run (hard limit) plus the
longest retry countdown, as the docs require, else a running or waiting task would be delivered twice."""
RESTORE_INTERVAL_S = 5
"""How often a worker sweeps for messages past their visibility timeout (kombu's default sweep is ~100 s)."""

app = Celery("harness", broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_ignore_result=True,  # the ledger records outcomes; no result backend
    worker_concurrency=config.slots,  # prefork children per worker: as many as Hatchet's slots per worker
    # The scenario's execution timeout: the soft limit cancels the attempt (and is retried), the hard one
    # kills the child if the attempt ignores that.
    task_soft_time_limit=config.execution_timeout_s,
    task_time_limit=config.execution_timeout_s + HARD_LIMIT_GRACE_S,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
if RECOMMENDED:
    app.conf.update(
        # Acknowledge after the task ran, not when it starts: a worker dying mid-task leaves the message
        # unacknowledged, and Redis hands it to another worker after the visibility timeout.
        task_acks_late=True,
        # A child process killed mid-task (SIGKILL, OOM) requeues the message instead of failing it.
        task_reject_on_worker_lost=True,
        # Reserve one message per child at a time: a dying worker takes no prefetched backlog with it.
        worker_prefetch_multiplier=1,
        broker_transport_options={
            "visibility_timeout": VISIBILITY_TIMEOUT_S,
            "unacked_restore_interval": RESTORE_INTERVAL_S,
            "unacked_restore_throttle": 1,  # sweep on every interval (kombu: interval x throttle)
            # A broker that disappears without closing the connection (partition) must not hang publishes.
            "socket_timeout": 5,
            "socket_connect_timeout": 5,
        },
    )

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _event_loop() -> asyncio.AbstractEventLoop:
    """This process's event loop, running in a thread of its own (started lazily: after the prefork fork)."""
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="job-loop", daemon=True).start()
        return _loop


def _run(coro: Coroutine[Any, Any, None]) -> None:
    """Run the async job to its end. Celery's soft time limit interrupts the wait: the attempt is then cancelled
    (one that ignores cancellation keeps running in the loop, as a blocking call ignoring a timeout would)."""
    future = asyncio.run_coroutine_threadsafe(coro, _event_loop())
    try:
        future.result()
    except SoftTimeLimitExceeded:
        future.cancel()
        raise


@app.task(
    bind=True,
    name="job",
    autoretry_for=(Exception,),
    max_retries=config.retries,
    retry_backoff=True,  # 1, 2, 4 ... s
    retry_backoff_max=config.backoff_max_s,
    retry_jitter=False,  # deterministic, like Hatchet's backoff
)
def job(self: Task[Any, Any], request: dict[str, Any]) -> None:
    """One attempt of the shared job; Celery retries it when it raises (the soft time limit included)."""
    _run(run_job(TaskRequest.model_validate(request), self.request.retries, config))


@worker_ready.connect
def _ready(**_: Any) -> None:
    print("celery worker ready", flush=True)  # the harness's health check reads this line
