"""The apps on the real stack honour the HTTP contract: 202 accepted, 422 malformed, healthz.

The fuzz test throws hand-picked and Hypothesis-made hostile bodies at every system ``find_systems``
knows (a new system is covered by being there): 4xx every time, nothing run, nothing recorded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from apps.common.contract import TaskRequest
from harness.ledger import create_ledger
from harness.load.drivers import AsyncDriver
from harness.model.load import LoadPlan
from harness.model.params import Params
from harness.model.spec import find_systems
from harness.runtime.infra import Infra
from harness.runtime.stack import Stack

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
    ledger = create_ledger(tmp_path / "ledger.db")
    stack = Stack(spec, tmp_path, ledger, infra, Params().task_config(), f"contract-{tmp_path.name}", lambda m: None)
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


# ---- fuzz: hostile bodies against every system's app ----------------------------------------------

HOSTILE = [
    b'{"task_id": "h1", "kind": "sleep", "params": {"duration_s": -1}}',  # issue 14: used to be 202, then fail
    b'{"task_id": "h2", "kind": "sleep", "params": {"duration_s": NaN}}',
    b'{"task_id": "h3", "kind": "sleep", "params": {"duration_s": Infinity}}',
    b'{"task_id": "h4", "kind": "sleep", "params": {"duration_s": 1e400}}',
    b'{"task_id": "h5", "kind": "sleep", "params": {"duration_s": 3601}}',
    b'{"task_id": "h6", "kind": "sleep", "params": {"duration_s": "1"}}',
    b'{"task_id": "h7", "kind": "sleep", "params": {"fail_p": 2}}',
    b'{"task_id": "h8", "kind": "sleep", "params": {"hang_s": 1e9, "hang_p": 1}}',
    b'{"task_id": "h9", "kind": "sleep", "params": {"downstream": 1}}',
    b'{"task_id": "h10", "kind": "sleep", "params": {"fail_first": 1e100}}',
    b'{"task_id": "h11", "kind": "sleep", "params": {"rm -rf": true}}',
    b'{"task_id": "h12", "kind": "gpu"}',
    b'{"task_id": "h13", "kind": "sleep", "params": null}',
    b'{"task_id": "\\ud800", "kind": "sleep"}',  # a lone surrogate: FastAPI's own 422 answer fails on it (500)
    b'"\\udfff"',
    b'{"\\ud800": 1}',
    b'{"task_id": "h14\\u0000", "kind": "sleep"}',
    b'{"task_id": "h15", "task_id": "a b", "kind": "sleep"}',
    b"\xef\xbb\xbf{}",
    b"\xff\xfe\x00",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    b'{"task_id": "' + b"x" * 1_000_000 + b'", "kind": "sleep"}',
    b"",
    b"null",
    b"1e400",
]
"""Hand-picked: out-of-range and mistyped job parameters, broken Unicode, deep nesting, a 1 MB id."""

JSON = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=8)
NEAR_PARAMS = st.fixed_dictionaries({}, optional={
    "duration_s": st.floats() | JSON, "fail_p": st.floats() | JSON, "fail_first": st.integers() | JSON,
    "hang_p": st.floats() | JSON, "hang_s": st.floats() | JSON, "hang_ignores_cancel": JSON, "downstream": JSON,
    "other": JSON})
NEAR_BODIES = st.fixed_dictionaries({}, optional={
    "task_id": st.from_regex(r"[A-Za-z0-9_.:-]{1,12}", fullmatch=True) | JSON,
    "kind": st.sampled_from(["sleep", "cpu"]) | JSON,
    "params": NEAR_PARAMS | JSON,
    "extra": JSON})
"""Bodies shaped like the contract's, any field possibly of the wrong type, out of range or unknown."""
BODIES = st.one_of(
    NEAR_BODIES.map(lambda b: json.dumps(b).encode()),  # NaN and Infinity included, as Python writes them
    JSON.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
)


def refused(body: bytes) -> bool:
    """Whether the contract refuses body (what the app must answer 4xx to)."""
    try:
        TaskRequest.model_validate_json(body)
    except ValueError:
        return True
    return False


@pytest.fixture(scope="module", params=sorted(find_systems()))
def live(request: pytest.FixtureRequest, infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One running stack per system under test (each found by ``find_systems``), for the whole module."""
    spec = find_systems()[request.param]
    run_dir = tmp_path_factory.mktemp(f"fuzz-{spec.name}")
    stack = Stack(spec, run_dir, create_ledger(run_dir / "ledger.db"), infra, Params().task_config(),
                  f"fuzz-{run_dir.name}", lambda m: None)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


def post(client: httpx.Client, body: bytes) -> int:
    return client.post("/tasks", content=body, headers={"content-type": "application/json"}).status_code


def test_hostile_bodies_get_4xx_and_never_run(live: Stack) -> None:
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=live.api_url, timeout=30) as client:
        for body in HOSTILE:
            assert refused(body), body[:80]
            status = post(client, body)
            statuses[status] = statuses.get(status, 0) + 1
            assert 400 <= status < 500, (live.spec.name, status, body[:80])

        @settings(max_examples=100, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
        @given(body=BODIES)
        def fuzz(body: bytes) -> None:
            assume(refused(body))  # a valid body would run a task: the 202 path has its own tests
            status = post(client, body)
            statuses[status] = statuses.get(status, 0) + 1
            assert 400 <= status < 500, (live.spec.name, status, body[:200])

        fuzz()
        assert client.get("/healthz").status_code == 200
    time.sleep(1.0)  # a job started in the background would have recorded its start by now
    events = live.ledger.events()
    print(f"{live.spec.name}: {sum(statuses.values())} hostile bodies, answers {sorted(statuses.items())}, "
          f"{len(events)} ledger records")
    assert events == [], f"{live.spec.name}: a refused body ran: {events[:5]}"
