"""The plan inside Locust: options into a LoadPlan, and one open-loop schedule for every process.

When a test starts, the master (or the only process) fixes which processes take part and when
request 0 is due; the assignment reaches the workers with Locust's spawn message, which forwards
custom options. Process k of n sends requests k, k+n, k+2n, ... at their intended times, and
reports once each has an outcome; the open-loop shape ends the test when all have reported.
Clocks of several machines must agree (NTP) for the schedule to interleave as planned.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from gevent.event import Event
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment
from locust.rpc import Message
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

from harness.model.load import START_LINE, LoadPlan

SLOTS = "harness_slots"
"""Option set at test start: Locust client id -> slot of the open loop."""
START = "harness_start"
"""Option set at test start: epoch seconds when request 0 is due."""
RUN = "harness_run"
"""Option set at test start: how many tests this Locust has started (a web UI can run several)."""
DONE_MESSAGE = "harness_open_loop_done"
"""Worker -> master: this slot's requests all have an outcome."""
LEAD_S = 0.2
"""Head start of the schedule in one process (its only user spawns at once)."""
DISTRIBUTED_LEAD_S = 1.0
"""Head start when workers must first receive the spawn message and start their user."""

log = logging.getLogger(__name__)
_done: set[int] = set()
_stop = Event()


def request_stop() -> None:
    """Stop sending (SIGTERM): the open loop sends no more, the shape ends the test, answers still count."""
    log.info("asked to stop: no more requests are sent")
    _stop.set()


def stopping() -> bool:
    """Whether this process was asked to stop."""
    return bool(_stop.is_set())


def pause(seconds: float) -> None:
    """Sleep, or return early when asked to stop."""
    _stop.wait(seconds)


def add_options(parser: LocustArgumentParser) -> None:
    """Register the locustfile's options (shown in the web UI too)."""
    parser.add_argument("--rate", type=float, default=20.0, help="open loop: requests per second")
    parser.add_argument("--duration", type=float, default=30.0, help="open loop: seconds of sending")
    parser.add_argument("--kind", default="sleep", help="job kind of every task (sleep, cpu)")
    parser.add_argument("--task-params", default='{"duration_s": 0.2}', help="job parameters of every task (JSON)")
    parser.add_argument("--id-prefix", default="m", help="prefix of the client-made task ids")
    parser.add_argument("--phase", default="measure", help="phase recorded with every op (measure, warmup)")
    parser.add_argument("--request-timeout", type=float, default=10.0,
                        help="seconds without an answer before a request counts as info")
    parser.add_argument("--spike-factor", type=float, default=5.0, help="spike shape: peak users = factor x -u")
    parser.add_argument("--plan", default="", include_in_web_ui=False,
                        help="the whole LoadPlan as JSON (from harness.load.drivers.LocustDriver); overrides the "
                             "options above")


def plan_of(options: Any) -> LoadPlan:
    """The LoadPlan the parsed options describe."""
    if options.plan:
        return LoadPlan.from_json(options.plan)
    return LoadPlan(rate=options.rate, duration_s=options.duration, kind=options.kind,
                    params=json.loads(options.task_params), timeout_s=options.request_timeout, phase=options.phase,
                    id_prefix=options.id_prefix)


def task_id(plan: LoadPlan, options: Any, i: int) -> str:
    """Id of open-loop request i; a second test of the same Locust (web UI) gets fresh ids."""
    run = getattr(options, RUN, 1)
    return plan.task_id(i) if run <= 1 else f"{plan.id_prefix}r{run}-{i:07d}"


def install(environment: Environment) -> None:
    """Let the master hear from workers whose open-loop requests are done."""
    if isinstance(environment.runner, MasterRunner):
        def done(environment: Environment, msg: Message, **_: Any) -> None:
            _done.add(int(msg.data["slot"]))

        environment.runner.register_message(DONE_MESSAGE, done)


def on_test_start(environment: Environment, open_loop: bool) -> None:
    """On the master or the only process: fix the slots and the start of the schedule."""
    runner, options = environment.runner, environment.parsed_options
    if isinstance(runner, WorkerRunner) or runner is None or options is None:
        return  # a worker gets the values with its spawn message
    if isinstance(runner, LocalRunner):
        ids, lead = [str(runner.client_id)], LEAD_S
    else:
        assert isinstance(runner, MasterRunner)
        ids, lead = sorted(c.id for c in runner.clients.ready + runner.clients.spawning + runner.clients.running), \
            DISTRIBUTED_LEAD_S
    start = time.time() + lead
    setattr(options, SLOTS, {cid: k for k, cid in enumerate(ids)})
    setattr(options, START, start)
    setattr(options, RUN, getattr(options, RUN, 0) + 1)
    reset_done()
    if open_loop:
        log.info("%s %.6f: %d requests over %d process(es)", START_LINE, start, plan_of(options).count, len(ids))


def my_slot(environment: Environment) -> tuple[int, int, float] | None:
    """(slot, number of slots, start) of this process, None if it takes no part."""
    slots: dict[str, int] | None = getattr(environment.parsed_options, SLOTS, None)
    client_id = getattr(environment.runner, "client_id", None)
    if not slots or client_id not in slots:
        return None
    return slots[client_id], len(slots), float(getattr(environment.parsed_options, START))


def report_done(environment: Environment, slot: int) -> None:
    """This process's requests all have an outcome."""
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.send_message(DONE_MESSAGE, {"slot": slot})
    else:
        _done.add(slot)


def reset_done() -> None:
    """Forget which slots reported (a new test begins)."""
    _done.clear()


def finished(environment: Environment) -> bool:
    """Every slot of the current test reported done."""
    slots: dict[str, int] | None = getattr(environment.parsed_options, SLOTS, None)
    return bool(slots) and len(_done) >= len(slots or ())
