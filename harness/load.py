"""Load: the clients that submit tasks and write the client history.

A :class:`LoadDriver` sends a :class:`LoadPlan` to a system's API and records one ``Op`` per
request in the ledger: ``ok`` on 2xx, ``fail`` on a definite refusal (4xx/5xx, connection
refused), ``info`` when no answer came (timeout, reset after sending). The built-in
:class:`AsyncDriver` is an open-loop sender: request i is due at start + i/rate and its latency
counts from that intended time, so a stalled server cannot hide its stall (coordinated omission).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from harness.history import Op
from harness.ledger import Ledger


@dataclass(frozen=True)
class LoadPlan:
    """What to send."""

    rate: float
    """Requests per second (open loop)."""
    duration_s: float
    """How long to send."""
    kind: str = "sleep"
    """Job kind of every task."""
    params: dict[str, Any] = field(default_factory=dict)
    """Job parameters of every task."""
    timeout_s: float = 10.0
    """A request without an answer after this long is ``info``."""
    phase: str = "measure"
    """``warmup`` or ``measure``."""
    id_prefix: str = "m"
    """Prefix of the client-made task ids (unique per phase)."""

    @property
    def count(self) -> int:
        """How many requests the plan sends."""
        return round(self.rate * self.duration_s)


class LoadDriver(Protocol):
    """Something that sends a plan and records the client history (built-in, Locust, ...)."""

    def start(self, base_url: str, plan: LoadPlan, ledger: Ledger, system: str) -> None:
        """Begin sending in the background."""

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every request has an outcome; False on timeout."""

    def stop(self) -> None:
        """Stop sending early (outstanding requests still get an outcome)."""


def classify_exception(exc: BaseException) -> str:
    """``fail`` when the request surely never reached the server, else ``info``."""
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return "fail"
    return "info"


class AsyncDriver:
    """Built-in open-loop driver: asyncio and httpx in a background thread."""

    def __init__(self, client_name: str = "builtin") -> None:
        self.client_name = client_name
        """Recorded as the ``client`` of every op."""
        self.sent = 0
        """Requests sent so far."""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._error: BaseException | None = None

    def start(self, base_url: str, plan: LoadPlan, ledger: Ledger, system: str) -> None:
        """Send plan to base_url from a background thread."""
        self._stop.clear()

        def run() -> None:
            try:
                asyncio.run(self._send_all(base_url, plan, ledger, system))
            except BaseException as exc:  # noqa: BLE001 - surfaced by wait()
                self._error = exc

        self._thread = threading.Thread(target=run, name=f"load-{system}", daemon=True)
        self._thread.start()

    async def _send_all(self, base_url: str, plan: LoadPlan, ledger: Ledger, system: str) -> None:
        limits = httpx.Limits(max_connections=2000, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=base_url, timeout=plan.timeout_s, limits=limits) as client:
            start = time.time()
            pending: set[asyncio.Task[None]] = set()
            for i in range(plan.count):
                if self._stop.is_set():
                    break
                intended = start + i / plan.rate
                delay = intended - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                task_id = f"{plan.id_prefix}{i:07d}"
                task = asyncio.create_task(self._one(client, task_id, intended, plan, ledger, system))
                pending.add(task)
                task.add_done_callback(pending.discard)
                self.sent += 1
            if pending:
                await asyncio.gather(*pending)

    async def _one(self, client: httpx.AsyncClient, task_id: str, intended: float, plan: LoadPlan,
                   ledger: Ledger, system: str) -> None:
        body = {"task_id": task_id, "kind": plan.kind, "params": plan.params}
        status: int | None = None
        error: str | None = None
        try:
            resp = await client.post("/tasks", json=body)
            status = resp.status_code
            outcome = "ok" if 200 <= status < 300 else "fail"
            if outcome == "fail":
                error = resp.text[:200]
        except httpx.HTTPError as exc:
            outcome, error = classify_exception(exc), type(exc).__name__
        ledger.record_op(Op(task_id, system, plan.kind, plan.phase, intended, time.time(), outcome, status, error,
                            self.client_name))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the sender thread finished; re-raise its error."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._error is not None:
            raise RuntimeError(f"load driver failed: {self._error!r}") from self._error
        return not self._thread.is_alive()

    def stop(self) -> None:
        """Stop sending new requests."""
        self._stop.set()
