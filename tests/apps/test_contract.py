"""Both apps on the real stack honour the HTTP contract: 202 accepted, 422 malformed, healthz."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from apps.common.contract import TaskConfig
from harness.ledger import Ledger
from harness.load import AsyncDriver, LoadPlan
from harness.services import Infra
from harness.spec import find_systems
from harness.stack import Stack

MALFORMED = [
    b"not json",
    b"{}",
    b'{"task_id": "", "kind": "sleep"}',
    b'{"task_id": "a b", "kind": "sleep"}',
    b'{"task_id": "x1", "kind": "sleep", "params": [1]}',
    b'{"task_id": "x2", "kind": "sleep", "unknown": 1}',
]


@pytest.fixture(params=["native", "hatchet"])
def stack(request: pytest.FixtureRequest, infra: Infra, tmp_path: Path) -> Iterator[Stack]:
    spec = find_systems()[request.param]
    ledger = Ledger.create(tmp_path / "ledger.db")
    stack = Stack(spec, tmp_path, ledger, infra, TaskConfig(), f"contract-{tmp_path.name}", lambda m: None)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


def test_malformed_bodies_get_422_and_never_run(stack: Stack) -> None:
    with httpx.Client(base_url=stack.api_url, timeout=10) as client:
        assert client.get("/healthz").status_code == 200
        statuses = [client.post("/tasks", content=body, headers={"content-type": "application/json"}).status_code
                    for body in MALFORMED]
    assert statuses == [422] * len(MALFORMED)
    time.sleep(1.0)
    assert stack.ledger.events() == [], "a refused body must never start a job"


def test_load_driver_records_422_as_refused_and_202_as_accepted(stack: Stack) -> None:
    ledger = stack.ledger
    driver = AsyncDriver()
    driver.start(stack.api_url, LoadPlan(rate=20, duration_s=0.5, params={"duration_s": 0.05}), ledger,
                 stack.spec.name)
    assert driver.wait(30)
    bad = AsyncDriver()
    bad.start(stack.api_url, LoadPlan(rate=20, duration_s=0.25, kind="", id_prefix="bad"), ledger, stack.spec.name)
    assert bad.wait(30)
    ops = ledger.ops()
    good = [o for o in ops if o.task_id.startswith("m")]
    refused = [o for o in ops if o.task_id.startswith("bad")]
    assert [o.outcome for o in good] == ["ok"] * 10 and {o.status for o in good} == {202}
    assert [o.outcome for o in refused] == ["fail"] * 5 and {o.status for o in refused} == {422}
    deadline = time.monotonic() + 30
    while ledger.missing_effects() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ledger.missing_effects() == 0
    assert {e.task_id for e in ledger.events("effect")} == {o.task_id for o in good}
