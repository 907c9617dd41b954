"""The load generator's own ceiling: requests per second Locust sends on this machine.

Runs the harness's locustfile, with its client history written to a real ledger exactly as in a
scenario, against a trivial endpoint (an asyncio server on 127.0.0.1 answering every request
with a canned 202: far cheaper per request than Locust), so whatever limit shows is Locust's:

- closed loop: ``-u USERS`` users posting back to back; requests per second over the run;
- open loop: the harness's LocustDriver at rising rates; the highest rate at which every request
  was answered and Locust kept its schedule: median latency from the intended send time, and the
  median send lag of every second, under 50 ms (p99 and worst lag are reported too: on a shared
  machine they show every scheduling hiccup).

Usage: ``.venv/bin/python bench/locust_ceiling.py [--processes 1,2] [--seconds 5] [--json OUT]``.
A rate beyond the ceiling must never be read as a system's limit (README, "Load generator ceiling").
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.analysis.checker import percentile
from harness.ledger import Ledger, create_ledger
from harness.load.drivers import LocustDriver
from harness.model.load import LoadPlan
from harness.runtime.ceilings import CannedEndpoint, closed_loop

KEEPS_UP_MS = 50.0
"""Median latency (from the intended time) and median send lag under which the open loop keeps up."""
OPEN_RATES = (500, 1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000)
"""Open-loop rates tried, in order, until one does not keep up."""


def _ledger(tmp: Path, name: str) -> Ledger:
    return create_ledger(tmp / name / "ledger.db")


def open_loop(url: str, rate: float, seconds: float, processes: int, tmp: Path) -> dict[str, Any]:
    """Send an open-loop plan at rate through the LocustDriver; did Locust keep its schedule?"""
    ledger = _ledger(tmp, f"open-{processes}-{rate:g}")
    plan = LoadPlan(rate=rate, duration_s=seconds, timeout_s=5.0)
    driver = LocustDriver(processes=processes)
    driver.start(url, plan, ledger, "canned")
    driver.wait(seconds + 60)
    ops = ledger.ops()
    latency = sorted(o.complete_t - o.invoke_t for o in ops)
    p50_ms, p99_ms = (round(1000 * percentile(latency, q), 1) for q in (50, 99))
    lag_p50 = max((s.value for s in ledger.samples("send_lag_p50_ms")), default=0.0)
    lag_max = max((s.value for s in ledger.samples("send_lag_max_ms")), default=0.0)
    ok = sum(o.outcome == "ok" for o in ops)
    return {"mode": "open", "processes": max(processes, 1), "rate": rate, "planned": plan.count, "ok": ok,
            "latency_p50_ms": p50_ms, "latency_p99_ms": p99_ms, "send_lag_p50_ms": lag_p50, "send_lag_max_ms": lag_max,
            "keeps_up": ok == plan.count and p50_ms < KEEPS_UP_MS and lag_p50 < KEEPS_UP_MS}


def main() -> None:
    """Measure and print the ceiling (and write it as JSON with --json)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--processes", default="1,2", help="Locust process counts to try (1: no master)")
    ap.add_argument("--seconds", type=int, default=5, help="length of each measurement")
    ap.add_argument("--users", type=int, default=20, help="closed-loop users")
    ap.add_argument("--json", type=Path, default=None, help="also write the measurements here")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="locust-ceiling-"))
    rows: list[dict[str, Any]] = []
    with CannedEndpoint(tmp) as canned:
        for n in (int(x) for x in args.processes.split(",")):
            processes = 0 if n == 1 else n
            rows.append(closed_loop(canned.url, args.users, args.seconds, processes, tmp))
            print(json.dumps(rows[-1]), flush=True)
            for rate in OPEN_RATES:
                rows.append(open_loop(canned.url, rate, args.seconds, processes, tmp))
                print(json.dumps(rows[-1]), flush=True)
                if not rows[-1]["keeps_up"]:
                    break
    host = f"{os.uname().nodename}, {os.cpu_count()} cores"
    print(f"\nLocust ceiling on {host} ({time.strftime('%Y-%m-%d')}), history written to a SQLite ledger:")
    for n in sorted({r["processes"] for r in rows}):
        closed = next(r for r in rows if r["mode"] == "closed" and r["processes"] == n)
        kept = [r for r in rows if r["mode"] == "open" and r["processes"] == n and r["keeps_up"]]
        tight = [r["rate"] for r in kept if r["latency_p99_ms"] < KEEPS_UP_MS]
        print(f"  {n} process(es): closed loop {closed['rps']:g} req/s ({closed['users']} users); open loop keeps "
              f"its schedule up to {max((r['rate'] for r in kept), default=0):g} req/s (p99 under "
              f"{KEEPS_UP_MS:g} ms up to {max(tight, default=0):g} req/s)")
    if args.json:
        args.json.write_text(json.dumps({"host": host, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
