"""Hatchet engine settings from its own performance docs, measured: each candidate against the defaults.

``python -m bench.engine_settings [--reps 2] [--seconds 20] [--json out.json]``

For every candidate (``CANDIDATES``: settings from frontend/docs/.../self-hosting/improving-performance.mdx
that apply on one machine) and repetition, a fresh copy of the ``hatchet`` system's servers (Postgres,
RabbitMQ, the engine with the candidate's settings added) is started, Hatchet's own load tester runs
against it exactly as the capacity reference does (``apps/hatchet/ceilings.py``: 64 emitters, pushes at
600/s), and the copy is stopped. Reported: runs per second, pushes per second, and runs per CPU-second of
the engine, its Postgres and its RabbitMQ (less sensitive to a shared machine than runs per second).
The candidates' order is rotated each repetition so a drift of the machine does not favour one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import psutil

from apps.hatchet import ceilings
from apps.hatchet.engine import HatchetEngine
from harness.backends.base import Proc
from harness.model.spec import SystemSpec, find_systems
from harness.runtime.infra import Infra

CANDIDATES: dict[str, dict[str, str]] = {
    "defaults": {},
    # improving-performance.mdx: "Larger buffer sizes and longer flush intervals batch more work per write, which
    # lowers broker and database load at the cost of a small increase in latency" (defaults 10 and 10ms).
    "buffers 100 / 25ms": {"SERVER_DEFAULT_BUFFER_SIZE": "100", "SERVER_DEFAULT_BUFFER_FLUSH_INTERVAL": "25ms"},
    # improving-performance.mdx: SERVER_MSGQUEUE_RABBITMQ_QOS=200 "to increase the throughput of this internal queue"
    # (default 100).
    "rabbitmq qos 200": {"SERVER_MSGQUEUE_RABBITMQ_QOS": "200"},
    # improving-performance.mdx: "The default max connection pool size is 50 per engine instance. If you have a high
    # throughput, you may need to increase this value".
    "database pool 100": {"DATABASE_MAX_CONNS": "100"},
    # improving-performance.mdx names optimistic scheduling: a trigger is assigned to a worker in its own gRPC
    # handler while one of SERVER_OPTIMISTIC_SCHEDULING_SLOTS is free (default 5; pkg/scheduling/v1/pool.go:85),
    # else it waits for the scheduler's loop.
    "optimistic slots 20": {"SERVER_OPTIMISTIC_SCHEDULING_SLOTS": "20"},
    "buffers + optimistic 20": {"SERVER_DEFAULT_BUFFER_SIZE": "100", "SERVER_DEFAULT_BUFFER_FLUSH_INTERVAL": "25ms",
                                "SERVER_OPTIMISTIC_SCHEDULING_SLOTS": "20"},
}
"""Candidate settings (engine environment) by name; ``defaults`` is the engine as shipped."""


def _with_settings(spec: SystemSpec, extra: dict[str, str]) -> SystemSpec:
    servers = tuple(dataclasses.replace(t, settings={**t.settings, **extra}) if t.plugin.startswith("apps.hatchet")
                    else t for t in spec.servers)
    return dataclasses.replace(spec, servers=servers)


def _cpu_s(procs: list[Proc]) -> float:
    total = 0.0
    for proc in procs:
        if proc.pid is None:
            continue
        try:
            root = psutil.Process(proc.pid)
            for p in (root, *root.children(recursive=True)):
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            continue
    return total


def measure(name: str, extra: dict[str, str], seconds: int, work: Path) -> dict[str, Any]:
    """One measurement of one candidate on a fresh copy of the hatchet system's servers."""
    spec = _with_settings(find_systems()["hatchet"], extra)
    infra = Infra(work / "logs")
    try:
        got = infra.acquire(spec, "bench", private=[t.name for t in spec.servers], log_dir=work / "logs")
        engine = got.servers["engine"].server
        assert isinstance(engine, HatchetEngine)
        before = _cpu_s(got.processes())
        result = ceilings.engine_runs_per_s(engine.client_env("bench_", engine.address), work / "loadtest",
                                            seconds=seconds)
        used = _cpu_s(got.processes()) - before
    finally:
        infra.close()
    executed = result.get("executed") or 0
    return {"candidate": name, "settings": extra, "runs_per_s": result.get("runs_per_s"),
            "pushed_per_s": result.get("pushed_per_s"), "executed": executed, "stack_cpu_s": round(used, 1),
            "runs_per_cpu_s": round(executed / used, 1) if used > 0 else None,
            "emitter_bound": result.get("emitter_bound"), "error": result.get("error")}


def main() -> None:
    """Measure every candidate ``--reps`` times and print the medians."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--only", default="", help="comma-separated candidate names (default: all)")
    args = ap.parse_args()
    rows: list[dict[str, Any]] = []
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(CANDIDATES)
    unknown = sorted(set(names) - set(CANDIDATES))
    if unknown:
        ap.error(f"unknown candidate(s): {', '.join(unknown)} (known: {', '.join(CANDIDATES)})")
    for rep in range(args.reps):
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
                row = {**measure(name, CANDIDATES[name], args.seconds, Path(tmp)), "rep": rep + 1}
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(f"\n{'candidate':<22} {'runs/s (median, all)':<32} {'runs per stack CPU-s':<26} pushed/s")
    for name in names:
        mine = [r for r in rows if r["candidate"] == name and r["runs_per_s"]]
        runs = [r["runs_per_s"] for r in mine]
        eff = [r["runs_per_cpu_s"] for r in mine if r["runs_per_cpu_s"]]
        pushed = [r["pushed_per_s"] for r in mine]
        print(f"{name:<22} {statistics.median(runs) if runs else 0:>6.1f} {runs!s:<24} "
              f"{statistics.median(eff) if eff else 0:>6.1f} {eff!s:<18} {pushed}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
