"""Locust drives the load: every request sent is exactly one op, with the right outcome, on a real stack."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends.base import free_port
from harness.ledger import Ledger, create_ledger
from harness.load.drivers import LocustDriver
from harness.model.load import LoadPlan
from harness.model.params import Params
from harness.model.spec import find_systems
from harness.runtime.infra import Infra
from harness.runtime.stack import Stack


@pytest.fixture
def native(infra: Infra, tmp_path: Path) -> Iterator[Stack]:
    ledger = create_ledger(tmp_path / "native" / "ledger.db")
    stack = Stack(find_systems()["native"], tmp_path / "native", ledger, infra, Params().task_config(), "load",
                  lambda m: None)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


def send(url: str, plan: LoadPlan, ledger: Ledger, processes: int = 0) -> LocustDriver:
    driver = LocustDriver(processes=processes)
    driver.start(url, plan, ledger, "native")
    assert driver.wait(60)  # raises unless exactly plan.count ops were recorded
    return driver


def test_every_request_is_one_op_with_its_outcome(native: Stack) -> None:
    ledger = native.ledger
    accepted = LoadPlan(rate=40, duration_s=1, params={"duration_s": 0.05})
    driver = send(native.api_url, accepted, ledger)
    send(native.api_url, LoadPlan(rate=20, duration_s=0.5, kind="", id_prefix="bad"), ledger)  # 422
    send(f"http://127.0.0.1:{free_port()}", LoadPlan(rate=20, duration_s=0.5, id_prefix="refused"), ledger)
    with socket.create_server(("127.0.0.1", 0)) as mute:  # accepts connections, never answers
        send(f"http://127.0.0.1:{mute.getsockname()[1]}",
             LoadPlan(rate=20, duration_s=0.5, timeout_s=0.5, id_prefix="silent"), ledger)
    ops = {prefix: [o for o in ledger.ops() if o.task_id.startswith(prefix)] for prefix in ("m", "bad", "refused",
                                                                                          "silent")}
    assert sorted(o.task_id for o in ops["m"]) == [accepted.task_id(i) for i in range(40)]
    assert {(o.outcome, o.status) for o in ops["m"]} == {("ok", 202)}
    assert {(o.outcome, o.status) for o in ops["bad"]} == {("fail", 422)} and len(ops["bad"]) == 10
    assert {(o.outcome, o.error) for o in ops["refused"]} == {("fail", "ConnectionRefusedError")}
    assert {o.outcome for o in ops["silent"]} == {"info"} and len(ops["silent"]) == 10
    assert all(o.complete_t - o.invoke_t >= 0.5 for o in ops["silent"]), "info only after the request timeout"
    assert {o.client for o in ops["m"]} == {next(iter(ops["m"])).client}
    deadline = time.monotonic() + 30
    while ledger.missing_effects() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert {e.task_id for e in ledger.events("effect")} == {o.task_id for o in ops["m"]}
    assert driver.stem is not None  # Locust's own reports sit next to the ledger
    for suffix in ("_stats.csv", "_stats_history.csv", ".html", ".json", ".log", ".plan.json"):
        assert Path(f"{driver.stem}{suffix}").exists(), suffix
    assert driver.stem.parent == native.run_dir / "locust"


def test_processes_split_one_schedule_with_unique_ids(native: Stack) -> None:
    plan = LoadPlan(rate=100, duration_s=1, params={"duration_s": 0.01})
    send(native.api_url, plan, native.ledger, processes=2)
    ops = native.ledger.ops()
    assert sorted(o.task_id for o in ops) == [plan.task_id(i) for i in range(plan.count)]  # each id exactly once
    clients = {o.client for o in ops}
    assert len(clients) == 2, clients
    assert sorted(sum(o.client == c for o in ops) for c in clients) == [50, 50]
    assert {o.outcome for o in ops} == {"ok"}


def test_open_loop_latency_counts_from_the_intended_time(native: Stack) -> None:
    """While the API is paused, requests keep their schedule and their wait counts as latency."""
    plan = LoadPlan(rate=50, duration_s=3, params={"duration_s": 0.01})
    api = native.processes["api"]
    driver = LocustDriver()
    driver.start(native.api_url, plan, native.ledger, "native")
    start = time.time()  # the driver returns when request 0 is due
    time.sleep(1.0)
    api.signal(signal.SIGSTOP)
    paused_at = time.time()
    time.sleep(1.0)
    api.signal(signal.SIGCONT)
    resumed_at = time.time()
    assert driver.wait(60)
    ops = sorted(native.ledger.ops(), key=lambda o: o.task_id)
    assert len(ops) == plan.count and {o.outcome for o in ops} == {"ok"}
    t0 = ops[0].invoke_t
    assert abs(t0 - start) < 0.1
    for i, op in enumerate(ops):  # every op carries its intended time, whatever happened to the server
        assert op.invoke_t - t0 == pytest.approx(plan.due_s(i), abs=1e-6)
    stalled = [o for o in ops if paused_at + 0.1 < o.invoke_t < resumed_at - 0.1]
    assert len(stalled) >= 35  # the schedule went on: ~50 requests fell due during the pause
    for op in stalled:  # each waited from its intended time until the API resumed
        assert op.complete_t - op.invoke_t >= resumed_at - op.invoke_t - 0.05


def test_stop_ends_the_load_early_and_every_sent_request_has_an_op(native: Stack) -> None:
    plan = LoadPlan(rate=50, duration_s=30, params={"duration_s": 0.01})
    driver = LocustDriver()
    driver.start(native.api_url, plan, native.ledger, "native")
    time.sleep(1.0)
    t = time.monotonic()
    driver.stop()
    assert driver.wait(30)
    assert time.monotonic() - t < 10
    ops = native.ledger.ops()
    assert 40 <= len(ops) < plan.count
    assert sorted(o.task_id for o in ops) == [plan.task_id(i) for i in range(len(ops))]  # a prefix of the schedule
    assert {o.outcome for o in ops} == {"ok"}
    assert driver.process is not None and driver.process.exit_code() == 0


def test_stepped_plan_schedule() -> None:
    plan = LoadPlan(rate=10, duration_s=3, steps=((10, 1), (20, 1), (40, 1)))
    assert plan.count == 70
    assert plan.step_counts() == [10, 20, 40]
    assert [plan.due_s(i) for i in (0, 9, 10, 29, 30, 69)] == pytest.approx([0, 0.9, 1.0, 1.95, 2.0, 2.975])
    assert LoadPlan.from_json(plan.to_json()) == plan
    with pytest.raises(IndexError):
        plan.due_s(70)
    assert LoadPlan(rate=4, duration_s=2.5).count == 10
