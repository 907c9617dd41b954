"""A running stack: every server listens on 127.0.0.1 only (RabbitMQ's node and epmd too), and Hatchet's REST API
answers through its bridge."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from apps.hatchet.engine import HatchetEngine
from harness.backends import netns
from harness.backends.base import HealthTimeout, Proc
from harness.ledger import create_ledger
from harness.model.params import Params
from harness.model.spec import find_systems
from harness.runtime.infra import Infra
from harness.runtime.stack import Stack


@pytest.fixture(scope="module")
def hatchet_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("stack")
    infra = Infra(root / "logs")
    stack = Stack(find_systems()["hatchet"], root, create_ledger(root / "ledger.db"), infra, Params().task_config(),
                  f"stack-{root.name}", lambda m: None)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()
        infra.close()


def _pids(procs: list[Proc]) -> set[int]:
    pids: set[int] = set()
    for proc in procs:
        if proc.pid is None:
            continue
        root = psutil.Process(proc.pid)
        pids |= {root.pid, *(c.pid for c in root.children(recursive=True))}
    return pids


def test_every_listening_socket_is_on_loopback(hatchet_stack: Stack) -> None:
    procs: list[Proc] = hatchet_stack.watched()
    toxiproxy = hatchet_stack.infra.toxiproxy_process  # started only when a link must go through it
    pids = _pids([*procs, *([toxiproxy] if toxiproxy else [])])
    listening = [(c.pid, c.laddr.ip, c.laddr.port) for c in psutil.net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN and c.pid in pids]
    names = {p.name for p in procs}
    assert {"api", "worker-1", "worker-2", "downstream", "engine", "postgres", "mq"} <= names
    # api, downstream, engine, its API's bridge, postgres, RabbitMQ (AMQP, distribution, epmd)
    assert len(listening) >= 8, listening
    # epmd also answers on the IPv6 loopback: loopback still, never another interface.
    assert {ip for _, ip, _ in listening} <= {"127.0.0.1", "::1"}, listening


@pytest.mark.skipif(not netns.available(), reason="needs root for a network namespace")
def test_hatchet_rest_api_answers_through_the_loopback_bridge(hatchet_stack: Stack) -> None:
    engine = hatchet_stack.servers.servers["engine"].server
    assert isinstance(engine, HatchetEngine)
    assert engine.api_url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(f"{engine.api_url}/api/ready", timeout=5) as resp:
        assert resp.status == 200


def test_worker_pauses_through_the_rest_api_on_sigterm(hatchet_stack: Stack) -> None:
    worker = hatchet_stack.processes["worker-2"]
    worker.stop()
    log = worker.log_path.read_text()
    if netns.available():
        assert "task assignment paused" in log, log[-2000:]
    else:
        assert "error while pausing task assignment" in log


def test_a_server_failing_its_health_check_stops_the_run_with_its_log_and_leaves_nothing(
        infra: Infra, tmp_path: Path) -> None:
    apps = tmp_path / "apps" / "broken"
    apps.mkdir(parents=True)
    (apps / "system.toml").write_text(
        'name = "broken"\n'
        '[[server]]\nname = "broker"\nroles = ["broker"]\nrequires = ["redis-server"]\n'
        'command = ["redis-server", "--port", "{port}", "--no-such-option", "yes"]\nhealth = { tcp = "{port}" }\n'
        '[[process]]\nname = "api"\nroles = ["api"]\nlinks = ["broker"]\n'
        'command = ["{python}", "-c", "import time; time.sleep(60)"]\n')
    spec = find_systems(tmp_path / "apps")["broken"]
    stack = Stack(spec, tmp_path / "run", create_ledger(tmp_path / "run" / "ledger.db"), infra, Params().task_config(),
                  "broken", lambda m: None)
    try:
        with pytest.raises(HealthTimeout) as exc:
            stack.up()
        message = str(exc.value)
        assert message.startswith("broker exited with status 1"), message
        assert "no-such-option" in message, f"the server's own last log lines are in the error: {message}"
        assert "api" not in stack.processes, "no client started after its server failed"
    finally:
        stack.down()
    assert all(not p.alive() for p in stack.processes.values())


def test_a_private_copy_is_released_dependents_first_so_its_postgres_shuts_down_cleanly(
        hatchet_stack: Stack, tmp_path: Path) -> None:
    infra, spec = hatchet_stack.infra, hatchet_stack.spec
    got = infra.acquire(spec, "copy", private=[t.name for t in spec.servers], log_dir=tmp_path)
    assert set(got.servers) == {t.name for t in spec.servers}, got.servers
    infra.release("copy")
    log = (tmp_path / "postgres.log").read_text()
    # Stopped while its engine was still connected, Postgres (smart shutdown) waits out its grace and is killed.
    assert "database system is shut down" in log, log[-2000:]
    assert "unexpected postmaster exit" not in log, log[-2000:]
