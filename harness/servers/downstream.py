"""The downstream service: a small "email provider" jobs call; it records every call it receives.

Its call log is the side effect as the outside world sees it; the checker reconciles it with the
jobs' own effect records. Run as ``python -m harness.servers.downstream --port N [--host ADDRESS]`` with the
ledger environment set; it binds 127.0.0.1 (or the address of its host, in a run with several).

It must never be what a run measures, so it is built the way a healthy provider is: one asyncio
event loop (uvicorn with uvloop and httptools, a bare ASGI app, no framework), TCP_NODELAY on every
connection (no delayed-ACK stalls on keep-alive), a listen backlog of 4096, and keep-alive
connections held longer than any client keeps them idle. The ledger is written by one thread with
group commit (every call waiting at that moment goes in one transaction), so the event loop never
blocks on SQLite; a call is answered only once its record is committed, so an answered call is
always in the ledger. Slow or failing calls come from Toxiproxy (links ``*->downstream``), never
from here.

Each call is recorded twice: a ``call`` event (the effect the outside world sees, at the time it
was received whole) and a ``downstream.server`` span (received -> answered, detail: the status, how
long the ledger commit took, and how late the body followed the headers when it did). ``GET /stats``
reports the service's own health since the last read (the sampler polls it every second; see
:mod:`harness.runtime.sampler`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import uvicorn

from harness.analysis.checker import percentile
from harness.ledger import Ledger, Recorder
from harness.model.history import Event, Span

BACKLOG = 4096
"""Listen backlog: a burst of new connections waits in the kernel instead of being refused."""
KEEP_ALIVE_S = 75.0
"""Idle keep-alive connections are kept this long, longer than clients keep them (httpx: 5 s), so the
client always closes first and never reuses a connection the server is closing."""
MAX_BATCH = 1024
"""Most records in one ledger transaction."""
WINDOW_CAP = 100_000
"""Most service and commit times kept between two reads of ``/stats`` (nobody reading: memory stays bounded)."""
SPAN_NAME = "downstream.server"
"""Name of the span the service records for each call."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass
class _Call:
    """One record waiting for the writer: a call event (with the future its answer waits on) or a span."""

    record: Event | Span
    done: asyncio.Future[float] | None = None


class Window:
    """Durations (seconds) observed since the last read, with their percentiles on read (thread-safe: the
    writer thread adds commit times while the event loop reads them)."""

    def __init__(self) -> None:
        self._values: deque[float] = deque(maxlen=WINDOW_CAP)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        """Note one duration."""
        with self._lock:
            self._values.append(seconds)

    def take(self) -> dict[str, float | int | None]:
        """Count, p50, p99 and max in milliseconds (nearest rank; None when empty), and start a new window."""
        with self._lock:
            xs, self._values = sorted(self._values), deque(maxlen=WINDOW_CAP)
        if not xs:
            return {"n": 0, "p50": None, "p99": None, "max": None}
        return {"n": len(xs), "p50": round(1000 * percentile(xs, 50), 3), "p99": round(1000 * percentile(xs, 99), 3),
                "max": round(1000 * xs[-1], 3)}


class CallLog:
    """Writes the service's records from one thread, many per transaction (group commit).

    ``call`` returns a future that resolves (to the commit time) once the call's event is
    committed; spans ride along in the next transaction, nobody waits for them.
    """

    def __init__(self, recorder: Recorder, loop: asyncio.AbstractEventLoop) -> None:
        self.recorder = recorder
        """Where records go (its ledger, system and process name)."""
        self.loop = loop
        """The event loop whose futures the writer resolves."""
        self.commit = Window()
        """Commit times since the last read of ``/stats``."""
        self.commits = 0
        """Transactions committed."""
        self.failures = 0
        """Transactions that raised (their calls were answered 503)."""
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="call-log", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        """Records queued for the writer right now."""
        return self._queue.qsize()

    def call(self, task_id: str, attempt: int, received: float) -> asyncio.Future[float]:
        """Queue the call event of task_id; the future resolves once it is committed."""
        rec = self.recorder
        done: asyncio.Future[float] = self.loop.create_future()
        event = Event(task_id, rec.system, "call", attempt, rec.process, os.getpid(), received, None)
        self._queue.put(_Call(event, done))
        return done

    def span(self, task_id: str, attempt: int, received: float, answered: float, detail: str) -> None:
        """Queue the call's server-side span (fire and forget)."""
        rec = self.recorder
        self._queue.put(_Call(Span(task_id, rec.system, SPAN_NAME, attempt, rec.process, os.getpid(), received,
                                   answered, detail)))

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        ledger = self.recorder.ledger
        while True:
            first = self._queue.get()
            batch = [] if first is None else [first]
            stop = first is None
            while not stop and len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                else:
                    batch.append(item)
            if batch:
                self._write(ledger, batch)
            if stop:
                ledger.close()
                return

    def _write(self, ledger: Ledger, batch: list[_Call]) -> None:
        t = time.perf_counter()
        error: BaseException | None = None
        try:
            with ledger.transaction():
                for item in batch:
                    if isinstance(item.record, Event):
                        ledger.record_event(item.record)
                    else:
                        ledger.record_span(item.record)
        except Exception as exc:  # noqa: BLE001 - answered 503 below: the caller must not think it was recorded
            error = exc
            self.failures += 1
        took = time.perf_counter() - t
        self.commits += 1
        self.commit.add(took)
        waiting = [item.done for item in batch if item.done is not None]
        if waiting:
            self.loop.call_soon_threadsafe(_resolve, waiting, took, error)


def _resolve(futures: list[asyncio.Future[float]], took: float, error: BaseException | None) -> None:
    for fut in futures:
        if fut.done():
            continue
        if error is None:
            fut.set_result(took)
        else:
            fut.set_exception(error)


async def _reply(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


class DownstreamApp:
    """The ASGI app: ``POST /send`` records a call, ``GET /healthz``, ``GET /stats``."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        """Where calls are recorded."""
        self.log: CallLog | None = None
        """The ledger writer (started with the server's event loop)."""
        self.in_progress = 0
        """Calls received and not answered yet."""
        self.answered = 0
        """Calls answered 200 since start."""
        self.service = Window()
        """Service times (received -> answered) since the last read of ``/stats``."""
        self._stats_t = time.time()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.log = CallLog(self.recorder, asyncio.get_running_loop())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.log is not None:
                    await asyncio.to_thread(self.log.close)  # the last spans reach the ledger
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if method == "POST" and path == "/send":
            await self._send(receive, send)
        elif method == "GET" and path == "/healthz":
            await _reply(send, 200, {"status": "ok"})
        elif method == "GET" and path == "/stats":
            await _reply(send, 200, self.stats())
        else:
            await _reply(send, 404, {"error": "not found"})

    async def _send(self, receive: Receive, send: Send) -> None:
        headers = time.time()
        self.in_progress += 1
        try:
            try:
                raw = await _body(receive)
                # Received once the whole request is in: a client that sends its body late (a busy event loop
                # between its header and body writes) spends that time outside the server, and the detail says so.
                received = time.time()
                body = json.loads(raw)
                task_id, attempt = str(body["task_id"]), int(body.get("attempt", 0))
            except (ValueError, KeyError, TypeError):
                await _reply(send, 422, {"error": "expected {task_id, attempt}"})
                return
            assert self.log is not None, "lifespan startup starts the writer"
            try:
                commit_s = await self.log.call(task_id, attempt, received)
            except Exception as exc:  # noqa: BLE001 - not recorded, so not done: the client must see a failure
                await _reply(send, 503, {"error": f"not recorded: {type(exc).__name__}"})
                self.log.span(task_id, attempt, received, time.time(), f"503: ledger {type(exc).__name__}")
                return
            # Answered when the reply is handed over, not after the await returns: the loop may run other calls
            # first, and the client can have its answer by then (its span must not end before the server's).
            answered = time.time()
            await _reply(send, 200, {"task_id": task_id, "status": "sent"})
            self.answered += 1
            self.service.add(answered - received)
            late = received - headers
            body_note = f", body {1000 * late:.0f} ms after the headers" if late >= 0.001 else ""
            detail = f"200 (ledger commit {1000 * commit_s:.1f} ms{body_note})"
            self.log.span(task_id, attempt, received, answered, detail)
        finally:
            self.in_progress -= 1

    def stats(self) -> dict[str, Any]:
        """The service's health since the last read: answered calls, service and commit times, queues."""
        now = time.time()
        window, self._stats_t = now - self._stats_t, now
        log = self.log
        return {
            "window_s": round(window, 3),
            "answered_total": self.answered,
            "service_ms": self.service.take(),
            "in_progress": self.in_progress,
            "write_queue": log.waiting if log else 0,
            "commit_ms": log.commit.take() if log else {},
            "commits_total": log.commits if log else 0,
            "commit_failures_total": log.failures if log else 0,
        }


def listen_socket(port: int, host: str = "127.0.0.1") -> socket.socket:
    """The listening socket: TCP_NODELAY (accepted sockets inherit it on Linux; uvloop sets it too)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


def serve(sock: socket.socket, recorder: Recorder) -> None:
    """Answer ``POST /send`` (records a call), ``GET /healthz`` and ``GET /stats`` on sock until SIGTERM."""
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(DownstreamApp(recorder), loop="uvloop", http="httptools", lifespan="on",
                            backlog=BACKLOG, timeout_keep_alive=int(KEEP_ALIVE_S), timeout_graceful_shutdown=1,
                            access_log=False, log_level="warning")
    print(f"downstream listening on {host}:{port} (backlog {BACKLOG}, TCP_NODELAY)", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True, help="port to listen on")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (its host's, when the run has several)")
    args = ap.parse_args()
    try:
        recorder = Recorder.from_env()
        sock = listen_socket(args.port, args.host)
    except (RuntimeError, ValueError, OSError, OverflowError) as exc:  # bad environment or port: nothing served
        print(f"downstream: {exc}", file=sys.stderr)
        sys.exit(2)
    serve(sock, recorder)


if __name__ == "__main__":
    main()
