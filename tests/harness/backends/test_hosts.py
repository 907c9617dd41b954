"""Several hosts on one machine: placement, real namespaces, partitions at the network layer, cleanup."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.backends.hosts import Host, Hosts, HostsUnavailable, check_placement, placement
from harness.backends.local import others_reach
from harness.model.paths import PROJECT_ROOT
from harness.model.spec import find_systems

HARNESS = [sys.executable, "-m", "harness"]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need root")


def _netns() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def _ours_gone(before: set[str], timeout_s: float = 15.0) -> list[str]:
    """Namespaces of harness runs made since ``before`` (this test's) still there after up to timeout_s: another
    test's or run's namespaces beside it are not this test's to judge."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = [t for t in _harness_netns() if t not in before]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def _harness_netns() -> set[str]:
    return {line.split()[0] for line in _netns().splitlines() if line.startswith("harness-")}


def _links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout


# ---- placement (pure) ---------------------------------------------------------------------------------


def test_units_go_round_robin_and_the_engine_comes_first() -> None:
    hosts = [Host(f"h{i}", f"ns{i}", f"10.0.0.{i + 1}") for i in range(1, 4)]
    units = find_systems()["hatchet"].units()
    assert units[0] == ["postgres", "mq", "engine", "engine-api", "engine-api-bridge"]
    assert [u[0] for u in units[1:]] == ["api", "worker-1", "worker-2", "downstream", "locust"]
    where = {name: host.name for name, host in placement(units, hosts).items()}
    assert where["engine"] == where["postgres"] == where["mq"] == where["worker-2"] == "h1"
    assert where["worker-1"] == where["locust"] == "h3", "worker-1 shares its host only with the load generator"
    assert where["api"] == where["downstream"] == "h2"
    external = find_systems()["hatchet"].units(started=lambda server: False)
    assert external[0] == ["api"], "a user's own engine is not placed"
    assert find_systems()["celery"].units()[0] == ["broker"]


def test_impossible_placements_are_refused() -> None:
    units = find_systems()["native"].units()
    assert len(units) == 3
    check_placement(3, units, "native")
    with pytest.raises(HostsUnavailable, match="native has only 3 units to place"):
        check_placement(4, units, "native")
    with pytest.raises(HostsUnavailable, match="at least 1"):
        check_placement(0, units, "native")


@pytest.mark.parametrize(("args", "message"), [
    (["--hosts", "4", "--system", "native"], "--hosts 4: native has only 3 units to place (api, downstream, locust)"),
    (["--hosts", "-1", "--system", "native"], "--hosts -1: expected a number of hosts of at least 1"),
])
def test_bad_hosts_are_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    t0 = time.monotonic()
    out = subprocess.run([*HARNESS, "run", "baseline", *args, "--out", str(tmp_path / "x")], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [f"harness: error: {message}"], out.stderr
    assert time.monotonic() - t0 < 5 and not (tmp_path / "x").exists()


@needs_root
@pytest.mark.skipif(not others_reach(PROJECT_ROOT), reason="the checkout is out of uid 65534's reach (a 0700 parent, "
                                                            "e.g. mktemp -d): it cannot run the harness")
def test_without_root_hosts_are_refused(tmp_path: Path) -> None:
    out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *HARNESS, "run", "baseline",
                          "--system", "native", "--hosts", "2", "--out", str(tmp_path / "x")],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "HOME": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"})
    assert out.returncode == 2 and out.stderr.strip() == "harness: error: --hosts needs root (network namespaces, " \
                                                         "veth pairs, a bridge)", out.stderr


# ---- real namespaces ----------------------------------------------------------------------------------


@needs_root
def test_hosts_talk_over_the_bridge_and_a_partition_drops_only_the_cut_service() -> None:
    hosts = Hosts(2)
    hosts.up()
    try:
        h1, h2 = hosts.hosts
        assert h1.netns in _netns() and hosts.bridge in _links()
        server = subprocess.Popen([*h2.exec_prefix(), sys.executable, "-c", (
            "import socket, sys\n"
            "socks = [socket.create_server((sys.argv[1], p)) for p in (7001, 7002)]\n"
            "print('up', flush=True)\n"
            "import selectors\nsel = selectors.DefaultSelector()\n"
            "[sel.register(s, selectors.EVENT_READ) for s in socks]\n"
            "while True:\n"
            "    for key, _ in sel.select():\n"
            "        c, _ = key.fileobj.accept(); c.sendall(b'ok'); c.close()\n"), h2.address],
            stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "up"

            def reach(port: int) -> bool:
                probe = subprocess.run([*h1.exec_prefix(), sys.executable, "-c", (
                    "import socket, sys\n"
                    "try:\n"
                    "    print(socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).recv(2).decode())\n"
                    "except OSError as e:\n"
                    "    print(type(e).__name__)\n"), h2.address, str(port)], capture_output=True, text=True)
                return probe.stdout.strip() == "ok"

            assert reach(7001) and reach(7002)
            hosts.drop(h1, h2.address, 7001)
            assert not reach(7001), "the cut service's packets are dropped"
            assert reach(7002), "the host's other traffic still flows"
            with socket.create_connection((h2.address, 7001), timeout=2) as s:  # the harness's side is never cut
                assert s.recv(2) == b"ok"
            hosts.drop(h1, h2.address, 7001, insert=False)
            assert reach(7001), "healed"
        finally:
            server.kill()
            server.wait()
    finally:
        hosts.down()
    assert f"harness-{hosts.tag}" not in _netns() and hosts.bridge not in _links()


@needs_root
def test_a_sigkilled_harness_leaves_no_namespace_or_bridge(tmp_path: Path) -> None:
    before = _harness_netns()
    proc = subprocess.Popen([*HARNESS, "run", "baseline", "--system", "native", "--hosts", "2", "--param",
                             "duration_s=30", "--out", str(tmp_path / "run")], cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        if "measured load" in line or time.monotonic() > deadline:
            break
    tags = sorted(_harness_netns() - before)
    assert tags, "the run made its hosts"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    tag = tags[0].split("-")[1]

    def left() -> list[str]:
        netns, links = _netns(), _links()
        return [t for t in tags if t in netns] + [n for n in (f"hb{tag}", f"hv{tag}") if n in links]
    deadline = time.monotonic() + 30
    while left() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left(), f"30 s after the SIGKILL: {left()}\n{_netns()}\n{_links()}"


@needs_root
def test_worker_partition_across_hosts_with_a_postgres_ledger(tmp_path: Path) -> None:
    before = _harness_netns()
    out = subprocess.run([*HARNESS, "run", "worker-partition", "--system", "hatchet", "--hosts", "3", "--ledger", "pg",
                          "--out", str(tmp_path / "run")], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads((tmp_path / "run" / "results.json").read_text())
    (run,) = doc["runs"]
    print(f"accepted {run['accepted']} lost {run['lost']} duplicated {run['duplicated']} retried {run['retried']};"
          f" addresses {run['addresses']}")
    assert run["identities_broken"] == [] and run["lost"] == 0, run
    assert run["links"]["partitionable"] == ["worker-1->engine"] and run["links"]["proxied"] == []
    (fault,) = run["faults"]
    assert (fault["action"], fault["target"]) == ("link-down", "worker-1->engine")
    assert fault["detail"]["layer"] == "network (partition between hosts)"
    where = run["addresses"]
    assert len({where["engine"], where["api"], where["worker-1"]}) == 3, "engine, API and worker-1 on three hosts"
    assert doc["manifest"]["ledger"]["backend"] == "postgres"
    assert _ours_gone(before) == [], _netns()


@needs_root
def test_locust_workers_on_two_hosts_write_one_history_to_a_postgres_ledger(tmp_path: Path) -> None:
    from harness.backends.hosts import HostsBackend
    from harness.load.drivers import LocustDriver, worker_names
    from harness.model.load import LoadPlan
    from harness.runtime.ceilings import CannedEndpoint
    from harness.runtime.ledgers import EmbeddedPostgresStore

    backend = HostsBackend(Hosts(2))
    backend.place([["locust"], *([w] for w in worker_names(2))])
    store = EmbeddedPostgresStore(tmp_path / "pg", listen=backend.shared_address)
    try:
        ledger = store.create(tmp_path / "run", "locust_two_hosts")
        plan = LoadPlan(rate=200, duration_s=3)
        with CannedEndpoint(tmp_path, backend.shared_address) as canned:
            driver = LocustDriver(processes=2, backend=backend)
            assert driver.distributed
            driver.start(canned.url, plan, ledger, "canned")
            assert driver.wait(90)  # raises unless exactly plan.count ops were recorded
        ops = ledger.ops()
        assert sorted(o.task_id for o in ops) == [plan.task_id(i) for i in range(plan.count)], "each id once"
        clients = {o.client for o in ops}
        assert len(clients) == 2, clients
        lags = {s.source for s in ledger.samples("send_lag_p50_ms")}
        assert len(lags) == 2, f"send lag reported per process: {lags}"
        assert backend.address("locust-1") != backend.address("locust-2")
        assert ledger.url.startswith("postgresql://") and backend.shared_address in ledger.url
    finally:
        store.close()
        backend.close()
    assert f"harness-{backend.hosts.tag}" not in _netns()
