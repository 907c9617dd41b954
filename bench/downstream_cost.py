"""What the downstream service sustains, measured with a neutral client: Debian's ``wrk`` (C, epoll).

The real service (``python -m harness.servers.downstream``, as a stack starts it) runs against a fresh
ledger; wrk keeps N keep-alive connections busy for a few seconds, each request a ``POST /send``
with its own task id (a Lua script), so every call is recorded as in a run. Afterwards the ledger
must hold one call record per answered request: a benchmark that lost records would measure nothing.

The same wrk against a bare endpoint on the same server stack (uvicorn, uvloop, httptools; a canned
200, nothing recorded: ``python -m bench.downstream_cost PORT``) is the machine's floor: on a
shared 2-core machine its p99 shows how much of the service's tail is the neighbours'.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import uvicorn

from harness.backends.base import Health, free_port
from harness.backends.local import LocalBackend
from harness.ledger import ENV_LEDGER, ENV_PROCESS, ENV_SYSTEM, create_ledger
from harness.model.paths import PROJECT_ROOT

WRK = "/usr/bin/wrk"
"""Debian's wrk (``make servers`` installs it)."""
WRK_THREADS = 2
"""wrk threads (the machine has 2 cores; the service gets what is left)."""
SCRIPT = r"""
local counter = 0
function setup(thread) counter = counter + 1; thread:set("tid", counter) end
function init(args) n = 0 end
function request()
  n = n + 1
  return wrk.format("POST", "/send", {["Content-Type"] = "application/json"},
                    string.format('{"task_id":"b%d-%d","attempt":0}', tid, n))
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""
"""wrk script: a unique task id per request, and the summary as one JSON line."""
PACED = "function delay() return %d end\n"
"""Appended to pace each connection: wrk waits that many ms before each request it sends."""
PACE_MS = 3
"""10 connections, each waiting 3 ms plus the answer's time before its next request: about 2,200 calls/s here."""


def wrk_path() -> str:
    """wrk's path, or SystemExit with how to get it."""
    found = shutil.which("wrk") or (WRK if Path(WRK).exists() else None)
    if found is None:
        raise SystemExit("wrk is missing: `make servers` installs Debian's wrk")
    return found


def run_wrk(url: str, connections: int, seconds: float, script: Path) -> dict[str, Any]:
    """One wrk run: calls/s, p50/p99/max in ms, socket errors, non-2xx answers."""
    cmd = [wrk_path(), f"-t{min(WRK_THREADS, connections)}", f"-c{connections}", f"-d{seconds:g}s",
           "--timeout", "5s", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("WRK_JSON "))
    raw = json.loads(line.removeprefix("WRK_JSON "))
    return {
        "calls_per_s": round(raw["requests"] / (raw["duration_us"] / 1e6), 1), "requests": raw["requests"],
        "p50_ms": raw["p50_us"] / 1000, "p99_ms": raw["p99_us"] / 1000, "max_ms": raw["max_us"] / 1000,
        "socket_errors": sum(raw[k] for k in ("connect", "read", "write", "timeout")),
        "errors": {k: raw[k] for k in ("connect", "read", "write", "timeout")}, "non_2xx": raw["status"],
    }


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The floor: read the request, answer a canned 200, record nothing."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = b'{"status": "sent"}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _server(argv: list[str], root: Path, port: int, env: dict[str, str]) -> Any:
    return LocalBackend().process(
        name="downstream", argv=argv, env={**env, "PYTHONPATH": str(PROJECT_ROOT)}, log_path=root / "server.log",
        roles=("downstream",), health=Health(tcp=("127.0.0.1", port)), cwd=PROJECT_ROOT, stop_grace_s=5)


def measure_floor(connections: int, seconds: float = 5.0) -> dict[str, Any]:
    """wrk against the bare endpoint: what this machine allows any Python server right now."""
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        root, port = Path(tmp), free_port()
        (root / "post.lua").write_text(SCRIPT)
        proc = _server([sys.executable, "-m", "bench.downstream_cost", str(port)], root, port, {})
        proc.start()
        try:
            proc.wait_healthy(30)
            return {**run_wrk(f"http://127.0.0.1:{port}", connections, seconds, root / "post.lua"),
                    "connections": connections, "seconds": seconds}
        finally:
            proc.stop()


def measure(connections: int, seconds: float = 5.0, pace_ms: int | None = None) -> dict[str, Any]:
    """Start the service on a fresh ledger, run wrk against it, check every answered call was recorded.

    pace_ms: each connection waits that long before each request (the tail at a set rate, not flat out).
    """
    with tempfile.TemporaryDirectory(prefix="bench-downstream-") as tmp:
        root = Path(tmp)
        ledger = create_ledger(root / "ledger.db")
        port = free_port()
        proc = _server([sys.executable, "-m", "harness.servers.downstream", "--port", str(port)], root, port,
                       {ENV_LEDGER: ledger.url, ENV_SYSTEM: "bench", ENV_PROCESS: "downstream"})
        script = root / "post.lua"
        script.write_text(SCRIPT + (PACED % pace_ms if pace_ms is not None else ""))
        proc.start()
        try:
            proc.wait_healthy(30)
            result = run_wrk(f"http://127.0.0.1:{port}", connections, seconds, script)
        finally:
            proc.stop()
        recorded = len(ledger.events("call"))
        ledger.close()
    # wrk counts answered requests only; a request cut off at the end may be recorded yet unanswered.
    if recorded < result["requests"]:
        raise AssertionError(f"{result['requests']} calls answered but only {recorded} recorded")
    return {**result, "recorded": recorded, "connections": connections, "seconds": seconds, "pace_ms": pace_ms}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="the bare endpoint (the floor) on 127.0.0.1")
    ap.add_argument("port", type=int)
    uvicorn.run(bare_app, host="127.0.0.1", port=ap.parse_args().port, loop="uvloop", http="httptools",
                lifespan="off", access_log=False, log_level="warning")
