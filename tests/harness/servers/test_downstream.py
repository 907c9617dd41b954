"""The downstream service, real: it records every call once, answers only once the record is committed,
records its side of each call as a span (the job records the other side), and binds 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from apps.common import job
from harness.backends.base import Health, free_port
from harness.backends.local import LocalBackend, ManagedProcess
from harness.ledger import ENV_LEDGER, ENV_PROCESS, ENV_SYSTEM, Ledger, Recorder, create_ledger, open_ledger
from harness.model.env import ENV_DOWNSTREAM
from harness.model.paths import PROJECT_ROOT
from harness.report.calls import pair
from harness.runtime.sampler import Sampler, poll_stats, stats_samples, stats_url
from harness.servers.downstream import BACKLOG, listen_socket


@dataclass
class Service:
    """A running downstream service and the ledger it writes."""

    proc: ManagedProcess
    url: str
    ledger: Ledger
    port: int


def _env(ledger: Ledger) -> dict[str, str]:
    return {ENV_LEDGER: ledger.url, ENV_SYSTEM: "test", ENV_PROCESS: "downstream", "PYTHONPATH": str(PROJECT_ROOT)}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    ledger = create_ledger(tmp_path / "ledger.db")
    port = free_port()
    proc = LocalBackend().process(
        name="downstream", argv=[sys.executable, "-m", "harness.servers.downstream", "--port", str(port)],
        env=_env(ledger), log_path=tmp_path / "downstream.log", roles=("downstream",),
        health=Health(http=f"http://127.0.0.1:{port}/healthz"), cwd=PROJECT_ROOT, stop_grace_s=5)
    proc.start()
    try:
        proc.wait_healthy(30)
        yield Service(proc, f"http://127.0.0.1:{port}", ledger, port)
    finally:
        proc.stop()
        ledger.close()


async def _post_all(url: str, ids: list[str], concurrency: int) -> list[int]:
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one(task_id: str) -> int:
            async with gate:
                resp = await client.post("/send", json={"task_id": task_id, "attempt": 2})
                return resp.status_code
        return await asyncio.gather(*(one(i) for i in ids))


def test_records_every_call_once_and_its_span(service: Service) -> None:
    ids = [f"t{i:04d}" for i in range(300)]
    statuses = asyncio.run(_post_all(service.url, ids, concurrency=30))
    assert statuses == [200] * len(ids)
    calls = service.ledger.events("call")  # every answered call is committed already
    print(f"{len(ids)} calls answered, {len(calls)} call records")
    assert sorted(e.task_id for e in calls) == ids
    assert {(e.attempt, e.system, e.process) for e in calls} == {(2, "test", "downstream")}
    service.proc.stop()  # graceful: the spans still queued reach the ledger
    # uvicorn re-raises SIGTERM once it has shut down gracefully; SIGKILL (-9) would mean the grace ran out.
    assert service.proc.exit_code() in (0, -15), service.proc.log_path.read_text()
    spans = service.ledger.spans("downstream.server")
    assert sorted(s.task_id for s in spans) == ids
    assert all(s.t_start <= s.t_end and (s.detail or "").startswith("200") for s in spans)
    received = {e.task_id: e.t for e in calls}
    assert all(received[s.task_id] == s.t_start for s in spans)  # the call event is stamped when received


def test_answers_only_after_the_record_is_committed(service: Service) -> None:
    # Hold the ledger's write lock: the service may take the call but must not answer until it can commit.
    blocker = open_ledger(service.ledger.url)
    blocker.conn.execute("BEGIN IMMEDIATE")
    answered: list[tuple[float, int]] = []

    def call() -> None:
        resp = httpx.post(f"{service.url}/send", json={"task_id": "held", "attempt": 0}, timeout=30)
        answered.append((time.monotonic(), resp.status_code))

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(1.0)
    _, stats = poll_stats(f"{service.url}/stats")
    assert stats is not None
    held = stats_samples(stats)
    released = time.monotonic()
    blocker.conn.execute("COMMIT")
    blocker.close()
    caller.join(30)
    print(f"while the ledger was locked: {held}; answered {answered[0][0] - released:+.3f} s after the release")
    assert answered and answered[0][1] == 200
    assert answered[0][0] >= released, "answered before its record could be committed"
    assert held["in_progress"] == 1  # taken, waiting for its commit
    assert [e.task_id for e in service.ledger.events("call")] == ["held"]


def test_job_and_service_record_both_sides_of_a_call(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_DOWNSTREAM, service.url)
    monkeypatch.setattr(job, "_client", None)
    rec = Recorder(service.ledger, "test", "worker-1")

    async def calls() -> str:
        try:
            await job.call_downstream(rec, "both", 0)
            job._client = None  # the first client belongs to this event loop
            monkeypatch.setenv(ENV_DOWNSTREAM, f"http://127.0.0.1:{free_port()}")  # nobody listens there
            with pytest.raises(httpx.ConnectError):
                await job.call_downstream(rec, "refused", 0)
            return "ok"
        finally:
            if job._client is not None:
                await job._client.aclose()
            job._client = None

    assert asyncio.run(calls()) == "ok"
    service.proc.stop()
    client = service.ledger.spans("downstream.client")
    server = service.ledger.spans("downstream.server")
    assert [(s.task_id, s.detail) for s in client] == [("both", "200"), ("refused", "ConnectError: All connection "
                                                                                    "attempts failed")]
    (both, refused), unpaired = pair(client, server)
    assert unpaired == 0 and refused.server is None and both.server is not None
    assert both.client.t_start <= both.server.t_start <= both.server.t_end <= both.client.t_end
    print(both.breakdown(), "|", refused.breakdown())


def test_listens_on_loopback_only_with_a_large_backlog(service: Service) -> None:
    assert service.proc.pid is not None
    pids = {service.proc.pid, *(c.pid for c in psutil.Process(service.proc.pid).children(recursive=True))}
    listening = [c.laddr for c in psutil.net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN and c.pid in pids]
    assert [(a.ip, a.port) for a in listening] == [("127.0.0.1", service.port)]
    out = subprocess.run(["ss", "-ltnH", f"sport = :{service.port}"], capture_output=True, text=True, check=True)
    backlog = int(out.stdout.split()[2])  # Send-Q of a listening socket: its backlog (capped by somaxconn)
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    assert backlog == min(BACKLOG, somaxconn), out.stdout


def test_accepted_connections_have_nodelay() -> None:
    # No delayed-ACK stall on keep-alive: Linux copies TCP_NODELAY from the listening socket to accepted ones
    # (and uvloop sets it on every transport as well).
    with listen_socket(0) as server, socket.create_connection(server.getsockname()) as _client:
        conn, _ = server.accept()
        with conn:
            assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_stats_and_bad_requests(service: Service) -> None:
    assert httpx.post(f"{service.url}/send", content=b"{not json").status_code == 422
    assert httpx.post(f"{service.url}/send", json={"attempt": 1}).status_code == 422
    assert httpx.get(f"{service.url}/nowhere").status_code == 404
    asyncio.run(_post_all(service.url, [f"s{i}" for i in range(20)], concurrency=5))
    with urllib.request.urlopen(f"{service.url}/stats", timeout=5) as resp:
        stats = json.loads(resp.read())
    assert stats["service_ms"]["n"] == 20 and stats["answered_total"] == 20 and stats["in_progress"] == 0
    assert stats["commit_failures_total"] == 0 and stats["commits_total"] >= 1
    _, again = poll_stats(f"{service.url}/stats")
    assert again is not None and again["service_ms"]["n"] == 0  # each read starts a new window
    assert service.ledger.events("call") and len(service.ledger.events("call")) == 20


def test_sampler_records_the_service_instruments(service: Service) -> None:
    assert stats_url(service.proc) == f"{service.url}/stats"
    with Sampler(service.ledger, lambda: [service.proc], interval_s=0.3):
        for round_ in range(4):
            asyncio.run(_post_all(service.url, [f"r{round_}-{i}" for i in range(25)], concurrency=5))
            time.sleep(0.3)
    _, rest = poll_stats(f"{service.url}/stats")  # calls answered after the sampler's last poll
    assert rest is not None
    samples = service.ledger.samples()
    seen = {(s.source, s.metric) for s in samples}
    print(sorted(seen))
    assert {("downstream", m) for m in ("poll_ms", "service_p99_ms", "service_max_ms", "calls", "in_progress",
                                        "write_queue", "commit_max_ms")} <= seen
    assert {("sampler", "ledger_write_ms"), ("downstream", "rss_bytes")} <= seen
    # every call in exactly one window
    assert sum(s.value for s in samples if s.metric == "calls") + rest["service_ms"]["n"] == 100


def test_bad_start_is_one_line_and_exit_2(tmp_path: Path) -> None:
    ledger = create_ledger(tmp_path / "ledger.db")
    cmd = [sys.executable, "-m", "harness.servers.downstream", "--port"]
    bare = {k: v for k, v in os.environ.items() if k not in (ENV_LEDGER, ENV_SYSTEM, ENV_PROCESS)}
    no_env = subprocess.run([*cmd, str(free_port())], cwd=PROJECT_ROOT, env=bare, capture_output=True, text=True,
                            timeout=30)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = subprocess.run([*cmd, str(taken.getsockname()[1])], cwd=PROJECT_ROOT,
                              env={**os.environ, **_env(ledger)}, capture_output=True, text=True, timeout=30)
    for result in (no_env, busy):
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "HARNESS_LEDGER" in no_env.stderr and "in use" in busy.stderr
