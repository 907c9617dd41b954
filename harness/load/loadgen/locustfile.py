"""Locust drives the load: the harness's locustfile, for any system on the HTTP contract.

Start a stack with ``harness up --system native`` (or ``hatchet``); it prints the exact command::

    HARNESS_LEDGER=sqlite:///.../ledger.db HARNESS_SYSTEM=native .venv/bin/locust \\
        -f harness/loadgen/locustfile.py --host http://127.0.0.1:PORT --web-host 127.0.0.1

Every request is one ``POST /tasks`` with a client-made task id, unique across Locust processes,
and becomes one op in the run's client history (the ledger that ``HARNESS_LEDGER`` names):
``ok`` on 2xx, ``fail`` on 4xx/5xx or a refused connection, ``info`` on a timeout or a reset after
sending (the rules of :mod:`harness.load.drivers`, shared with its built-in driver).

``HARNESS_SHAPE`` picks the load (:mod:`harness.load.loadgen.shapes`); unset, Locust runs as usual:

- closed loop (unset, ``steady``, ``ramp``, ``spike``): each user posts a task, waits for the
  answer, posts the next (``-u`` users, ``-r`` spawn rate, ``-t`` run time);
- open loop (``open``): request i is due at start + i/``--rate`` for ``--duration`` seconds
  whatever the answers (one greenlet per request), and its latency, in the history and in
  Locust's statistics, counts from that intended time: a stalled server cannot hide its stall
  (coordinated omission, handled as wrk2 does).

Distributed: ``--processes N`` on one machine, or ``--master`` and ``--worker`` processes on
several, all with the same ``HARNESS_SHAPE`` and ``HARNESS_LEDGER``. The open loop gives process k
of n the requests k, k+n, ... of one schedule. A SQLite ledger is one machine's file: across
machines use a Postgres ledger (``harness up --ledger pg`` or ``--ledger postgresql://...`` prints
its ``postgresql://`` URL), which every process writes to over the network.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import time
from typing import Any, NoReturn

import gevent
from gevent.lock import Semaphore
from gevent.pool import Group
from locust import FastHttpUser, constant, events, task
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment

from harness.analysis.checker import percentile
from harness.ledger import ENV_LEDGER, ENV_SYSTEM, Ledger, open_ledger
from harness.load.drivers import classify_exception, classify_status
from harness.load.loadgen import plan, shapes
from harness.model.env import ENV_SHAPE
from harness.model.history import Op, Outcome

SHAPE = os.environ.get(ENV_SHAPE, "")
"""Name of the load shape (``HARNESS_SHAPE``); empty: plain Locust, closed loop."""
if SHAPE:
    Shape = shapes.by_name(SHAPE)  # Locust runs the LoadTestShape class it finds in the locustfile

FLUSH_S = 0.2
"""How often a process appends its buffered ops to the ledger."""
POOL_SIZE = 5000
"""Connections per user: an open-loop sender needs one per request in flight."""

log = logging.getLogger(__name__)


class History:
    """This process's client history: ops buffered, appended to the ledger every FLUSH_S.

    Once a second it also records how far the open loop's sends lagged behind their intended
    times in that second (samples ``send_lag_p50_ms`` and ``send_lag_max_ms``): a hiccup shows in
    the max, a generator at its limit in the median too. Its limit must not pass for the system's.
    """

    def __init__(self) -> None:
        self.url = os.environ.get(ENV_LEDGER, "")
        """The ledger URL (``HARNESS_LEDGER``); empty: ops are counted but not kept."""
        self.system = os.environ.get(ENV_SYSTEM, "unknown")
        """System recorded with every op (``HARNESS_SYSTEM``)."""
        self.ops: list[Op] = []
        """Ops not written yet."""
        self.written = 0
        """Ops written so far."""
        self.lags: list[float] = []
        """Send lags since the last sample, seconds."""
        self._ledger: Ledger | None = None
        self._lock = Semaphore()  # one flush at a time: the last one waits for a batch still being written

    def add(self, op: Op) -> None:
        """Keep one op for the next flush."""
        self.ops.append(op)

    def lagged(self, seconds: float) -> None:
        """An open-loop request left this long after its intended time."""
        self.lags.append(seconds)

    def flush(self, with_sample: bool = False) -> None:
        """Append the buffered ops in one transaction (and the send-lag samples)."""
        with self._lock:
            self._flush(with_sample)

    def _flush(self, with_sample: bool) -> None:
        ops, self.ops = self.ops, []
        lags: list[float] = []
        if with_sample:
            lags, self.lags = sorted(self.lags), []
        if not self.url or not (ops or lags):
            return
        # In a real thread: opening the ledger and writing block (SQLite's write lock, a round trip to Postgres),
        # which must not stall every greenlet.
        gevent.get_hub().threadpool.apply(self._write, (ops, lags))
        self.written += len(ops)

    def _write(self, ops: list[Op], lags: list[float]) -> None:
        if self._ledger is None:
            self._ledger = open_ledger(self.url)  # sqlite:/// or postgresql://: the URL picks the backend
        ledger = self._ledger
        if ops:
            ledger.record_ops(ops)
        if lags:
            for metric, q in (("send_lag_p50_ms", 50), ("send_lag_max_ms", 100)):
                ledger.record_sample(f"locust-{os.getpid()}", metric, round(1000 * percentile(lags, q), 3))

    def run(self) -> NoReturn:
        """Flush every FLUSH_S, with a send-lag sample once a second, forever."""
        n = 0
        while True:
            gevent.sleep(FLUSH_S)
            n += 1
            self.flush(with_sample=n % round(1 / FLUSH_S) == 0)


HISTORY = History()
"""The client history of this process."""
IN_FLIGHT = Group()
"""Requests of this process still waiting for an answer."""
_task_numbers = itertools.count()


class TaskUser(FastHttpUser):
    """Posts tasks to ``--host``: back to back (closed loop), or as this process's share of the open loop."""

    wait_time = constant(0)
    concurrency = POOL_SIZE

    def __init__(self, environment: Environment) -> None:
        self.plan = plan.plan_of(environment.parsed_options)
        """What to send."""
        self.network_timeout = self.connection_timeout = self.plan.timeout_s  # read when the client is built
        super().__init__(environment)
        self.tag = f"w{getattr(environment.runner, 'worker_index', 0)}p{os.getpid()}"
        """This process among all Locust processes of the test (worker index, pid)."""

    @task
    def submit(self) -> None:
        """Closed loop: one task and its answer. Open loop: this process's share of the schedule."""
        if SHAPE == "open":
            self._open_loop()
        else:
            # In its own greenlet: a user stopped mid-request (a shape lowering the count) must not cut
            # the request off, which would turn a known answer into ``info``.
            IN_FLIGHT.spawn(self.send, f"{self.plan.id_prefix}{self.tag}-{next(_task_numbers):07d}", time.time()).join()

    def _open_loop(self) -> None:
        env = self.environment
        mine = plan.my_slot(env)
        if mine is None:
            log.error("this process has no slot in the open loop (it joined late?): it sends nothing")
        else:
            slot, slots, start = mine
            lags: list[float] = []
            for i in range(slot, self.plan.count, slots):
                intended = start + self.plan.due_s(i)
                delay = intended - time.time()
                if delay > 0:
                    plan.pause(delay)
                if plan.stopping():
                    break
                lags.append(time.time() - intended)
                HISTORY.lagged(lags[-1])
                IN_FLIGHT.spawn(self.send, plan.task_id(self.plan, env.parsed_options, i), intended)
            IN_FLIGHT.join()
            lags.sort()
            log.info("open loop slot %d/%d: sent %d; send lag behind schedule p50 %.1f ms, p99 %.1f ms, max %.1f ms",
                     slot, slots, len(lags), *(1000 * percentile(lags, q) if lags else 0.0 for q in (50, 99, 100)))
            plan.report_done(env, slot)
        while True:  # one pass: idle until the shape ends the test
            gevent.sleep(3600)

    def send(self, task_id: str, intended: float) -> None:
        """POST one task and record its op; latency counts from the intended send time."""
        p = self.plan
        body = {"task_id": task_id, "kind": p.kind, "params": p.params}
        status: int | None = None
        error: str | None = None
        outcome: Outcome = "info"
        try:
            with self.client.post("/tasks", json=body, name="/tasks", catch_response=True) as resp:
                if resp.status_code:
                    status = resp.status_code
                    outcome = classify_status(status)
                    error = None if outcome == "ok" else _body(resp)
                else:
                    exc = getattr(resp.error, "original", None) or resp.error
                    outcome, error = classify_exception(exc), type(exc).__name__
                resp.request_meta["response_time"] = (time.time() - intended) * 1000
                if outcome == "ok":
                    resp.success()
                else:
                    resp.failure(f"{outcome}: {error}")
        except gevent.GreenletExit:
            if status is None:  # cut off at shutdown: it may have reached the server, so it stays info
                error = "cancelled"
            raise
        finally:
            HISTORY.add(Op(task_id, HISTORY.system, p.kind, p.phase, intended, time.time(), outcome, status, error,
                           f"locust-{self.tag}"))


def _body(resp: Any) -> str:
    try:
        return str(resp.text or "")[:200] or f"HTTP {resp.status_code}"
    except Exception:  # noqa: BLE001 - the body of a refusal is a courtesy, its status is the outcome
        return f"HTTP {resp.status_code}"


def _add_options(parser: LocustArgumentParser) -> None:
    plan.add_options(parser)


def _on_init(environment: Environment, **_: Any) -> None:
    if not HISTORY.url:
        log.warning("%s is unset: requests are sent but no client history is kept", ENV_LEDGER)
    plan.install(environment)
    # Locust ignores SIGTERM while a headless shape runs (its handler comes later): stop gracefully here.
    gevent.signal_handler(signal.SIGTERM, plan.request_stop)
    gevent.spawn(HISTORY.run)


def _on_test_start(environment: Environment, **_: Any) -> None:
    plan.on_test_start(environment, open_loop=SHAPE == "open")


def _on_test_stop(environment: Environment, **_: Any) -> None:
    # Every request sent gets exactly one op: wait for the answers still due, cut off the rest
    # (they record ``info``), then write the history.
    timeout = plan.plan_of(environment.parsed_options).timeout_s if environment.parsed_options else 0.0
    IN_FLIGHT.join(timeout=timeout + 1)
    IN_FLIGHT.kill()
    HISTORY.flush()


def _on_quit(**_: Any) -> None:
    HISTORY.flush()
    if HISTORY.written:
        log.info("client history: %d ops written to %s", HISTORY.written, HISTORY.url)


for _event, _listener in ((events.init_command_line_parser, _add_options), (events.init, _on_init),
                          (events.test_start, _on_test_start), (events.test_stop, _on_test_stop),
                          (events.quit, _on_quit)):
    _event.add_listener(_listener)  # type: ignore[no-untyped-call]  # Locust leaves it unannotated
