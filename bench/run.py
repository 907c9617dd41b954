"""The harness's own cost and spread: ``python -m bench.run {ledger,checker,stack,spread,downstream,tier,all}``.

- ``ledger``: per backend (SQLite; Postgres, the harness's own server), Recorder writes per second from
  4 concurrent processes (goals >= 20,000/s and >= 10,000/s), and the Recorder's cost per task,
  ``started`` + ``effect`` (SQLite's goal p99 <= 1 ms; Postgres's reported), alone and next to other writers;
- ``checker``: one check of a 1,000,000-task history written straight into SQLite (goal <= 10 s);
- ``stack``: cold start of Postgres + the Hatchet engine, warm start of each system's stack (goal <= 15 s);
- ``spread``: baseline repeated 5 times on both systems: coefficient of variation of throughput and latency;
- ``downstream``: the downstream service under wrk, 10 and 100 keep-alive connections, 5 s each (goal at 10:
  >= 2,000 calls/s with p99 <= 5 ms; at 100: no socket error), and 10 connections paced near 2,000 calls/s
  (the tail at that rate, reported), every answered call recorded;
- ``tier``: wall times of the smoke tier, the default tier (``pytest scenarios/``) and ``.ci/run`` on a fresh
  clone (long: not part of ``all``).

Each figure is the median of its repeats (the machine may be shared; every repeat is kept). ``all``
(``make bench``) runs every one but ``tier``, prints a table and writes
``reports/bench/bench-<time>.json`` (``--json PATH`` elsewhere). Exit status 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import checker_cost, downstream_cost, ledger_cost, spread, stack_cost
from bench.figures import Figure, cv, machine
from harness.model.paths import PROJECT_ROOT
from harness.model.spec import selections

BENCH_DIR = PROJECT_ROOT / "reports" / "bench"
"""Where results land by default."""


WRITE_GOALS = {"sqlite": 20_000, "postgres": 10_000}
"""Writes per second from 4 processes each ledger backend must reach."""


def ledger_figures(repeats: int) -> list[Figure]:
    """Per backend (SQLite, Postgres): write throughput from 4 processes, and the Recorder's cost per task."""
    figures = []
    cases = [("alone", 0, 0.0), ("beside 3 writers at 1,000/s each", 3, 1000.0),
             ("beside 3 writers flat out (stress)", 3, 0.0)]
    for backend in ledger_cost.BACKENDS:
        with ledger_cost.fresh_ledgers(backend) as new:
            how = ("one transaction per write" if backend == "sqlite"
                   else "one autocommitted INSERT per write over TCP, synchronous_commit=off")
            figures.append(Figure(
                f"ledger writes ({backend}), 4 processes flat out", "writes/s",
                [round(ledger_cost.writes_per_second(new, 4, 5.0)) for _ in range(repeats)],
                at_least=WRITE_GOALS[backend], note=f"Recorder.effect in a loop for 5 s per process, {how}"))
            for label, background, per_s in cases:
                costs = [ledger_cost.recorder_cost_ms(new, 20_000, background, per_s) for _ in range(repeats)]
                # SQLite's goal is the design's; Postgres's cost (a round trip per write) is reported beside it.
                goal = 1.0 if backend == "sqlite" and "stress" not in label else None
                figures.append(Figure(
                    f"Recorder start+effect per task ({backend}), p99, {label}", "ms", [c["p99"] for c in costs],
                    at_most=goal, note="20,000 tasks timed; p50/p99.9/max are medians over repeats",
                    extra={k: statistics.median(c[k] for c in costs) for k in ("p50", "p99.9", "max")}))
    return figures


def checker_figures(repeats: int, tasks: int = 1_000_000) -> list[Figure]:
    """Time of a full check of a synthetic history of ``tasks`` tasks."""
    with tempfile.TemporaryDirectory(prefix="bench-checker-") as tmp:
        t = time.perf_counter()
        ledger = checker_cost.make_history(Path(tmp) / "ledger.db", tasks)
        made = time.perf_counter() - t
        runs = [checker_cost.check_seconds(ledger) for _ in range(repeats)]
    assert all(n == tasks for _, n in runs), f"the checker saw {runs[0][1]} tasks, not {tasks}"
    return [Figure(f"checker, {tasks:,}-task history", "s", [round(s, 3) for s, _ in runs], at_most=10.0,
                   note="harness.analysis.checker.check on a fresh connection (SQLite aggregation, classes, latencies)",
                   extra={"history_written_s": round(made, 1)})]


def stack_figures(repeats: int) -> list[Figure]:
    """Cold start of the shared servers, warm start of each system's stack."""
    systems = (*selections()["all"], "calibration")
    cold, warm = stack_cost.start_times(systems, repeats)
    figures = [Figure("cold start: Toxiproxy + Postgres + Hatchet engine", "s", [round(c, 2) for c in cold],
                      note="fresh data directory (initdb), migrations, engine and REST API healthy")]
    figures += [Figure(f"warm start: {name} stack, all healthy", "s", [round(w, 2) for w in warm[name]],
                       at_most=15.0, note="the system's own processes on running shared servers") for name in systems]
    return figures


def spread_figures(repeats: int = 5) -> list[Figure]:
    """Coefficient of variation of baseline throughput and end-to-end p50, per system, over repeats."""
    runs = spread.baseline_repeats(selections()["all"], repeats)
    figures = []
    for name, entries in runs.items():
        tps = [e["throughput_tps"] for e in entries]
        p50 = [e["e2e_latency_ms"]["p50"] for e in entries]
        figures.append(Figure(f"baseline throughput spread (CV), {name}", "%", [round(100 * cv(tps), 2)],
                              note=f"{repeats} repeats of baseline, default parameters",
                              extra={"throughput_tps": tps, "e2e_p50_ms": p50,
                                     "e2e_p50_cv_pct": round(100 * cv(p50), 2), "lost": [e["lost"] for e in entries]}))
    return figures


def downstream_figures(repeats: int) -> list[Figure]:
    """The downstream service's calls/s and latency under wrk at 10 and 100 keep-alive connections, and the floor.

    Each repeat runs the service at 10 connections, the bare endpoint at 10 (the floor, measured right
    after so the two see the same neighbours), then the service at 100.
    """
    runs: dict[str, list[dict[str, Any]]] = {"10": [], "floor": [], "100": [], "paced": []}
    for _ in range(repeats):
        runs["10"].append(downstream_cost.measure(10, 5.0))
        runs["floor"].append(downstream_cost.measure_floor(10, 5.0))
        runs["100"].append(downstream_cost.measure(100, 5.0))
        runs["paced"].append(downstream_cost.measure(10, 5.0, pace_ms=downstream_cost.PACE_MS))
    figures = []
    for conns in (10, 100):
        done = runs[str(conns)]
        note = f"wrk -t2 -c{conns} -d5s, POST /send with a unique task id, every answered call recorded"
        figures.append(Figure(f"downstream calls/s, {conns} keep-alive connections", "calls/s",
                              [r["calls_per_s"] for r in done], at_least=2000 if conns == 10 else None,
                              note=note, extra={"runs_detail": done}))
        figures.append(Figure(f"downstream p50, {conns} connections", "ms", [r["p50_ms"] for r in done], note=note))
        figures.append(Figure(f"downstream p99, {conns} connections", "ms", [r["p99_ms"] for r in done],
                              at_most=5.0 if conns == 10 else None, note=note))
        if conns == 100:
            figures.append(Figure(f"downstream socket errors, {conns} connections", "errors",
                                  [r["socket_errors"] for r in done], at_most=0, note=note))
    paced = runs["paced"]
    note = (f"wrk -t2 -c10 -d5s, each connection waiting {downstream_cost.PACE_MS} ms before each request"
            " (the goal's rate, not flat out)")
    figures.append(Figure("downstream calls/s, 10 connections paced", "calls/s", [r["calls_per_s"] for r in paced],
                          note=note, extra={"runs_detail": paced}))
    figures.append(Figure("downstream p99, 10 connections paced", "ms", [r["p99_ms"] for r in paced], note=note))
    floor = runs["floor"]
    figures.append(Figure("floor: bare uvicorn endpoint, nothing recorded, p99, 10 connections", "ms",
                          [r["p99_ms"] for r in floor],
                          note="same wrk right after each 10-connection run: what the machine allows now",
                          extra={"calls_per_s": [r["calls_per_s"] for r in floor]}))
    return figures


def _timed(command: list[str], cwd: Path, repeats: int) -> tuple[list[float], list[int]]:
    times, codes = [], []
    for _ in range(repeats):
        t = time.monotonic()
        codes.append(subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, check=False).returncode)
        times.append(round(time.monotonic() - t, 1))
    return times, codes


def tier_figures(repeats: int = 1) -> list[Figure]:
    """Wall times of the smoke tier, the default tier (``pytest scenarios/``, real stack) and ``.ci/run`` on a fresh
    clone of this checkout's HEAD (its own venv; the per-user tool cache and images are reused, as on a CI runner
    with a warm cache)."""
    out = []
    for name, marker in (("smoke tier", ["-m", "smoke"]), ("default tier", [])):
        command = [sys.executable, "-m", "pytest", "scenarios/", "-q", "-p", "no:cacheprovider", *marker]
        times, codes = _timed(command, PROJECT_ROOT, repeats)
        out.append(Figure(f"pytest scenarios/ ({name}), wall time", "s", times, note=shlex.join(command[2:]),
                          extra={"exit_codes": codes}))
    with tempfile.TemporaryDirectory(prefix="bench-clone-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "--quiet", str(PROJECT_ROOT), str(clone)], check=True)
        times, codes = _timed([str(clone / ".ci" / "run")], clone, 1)
    out.append(Figure(".ci/run on a fresh clone (lint, make test, make docker-test), wall time", "s", times,
                      note="git clone of HEAD; ~/.cache/harness-tools reused", extra={"exit_codes": codes}))
    return out


SUITES: dict[str, Callable[[int], list[Figure]]] = {
    "ledger": ledger_figures, "checker": checker_figures, "stack": stack_figures, "spread": spread_figures,
    "downstream": downstream_figures, "tier": tier_figures,
}
"""Each subcommand and what it measures, given its number of repeats."""
DEFAULT_REPEATS = {"ledger": 3, "checker": 3, "stack": 3, "spread": 5, "downstream": 3, "tier": 1}
"""Repeats of each suite unless --repeats says otherwise."""


def main(argv: list[str] | None = None) -> int:
    """Run the chosen suites, print the figures, write the JSON; 1 when a goal is missed."""
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("suite", choices=[*SUITES, "all"], help="what to measure (all: every suite but tier)")
    ap.add_argument("--repeats", type=int, default=None, help="repeats per figure (default: per suite)")
    ap.add_argument("--json", type=Path, default=None, help="where to write the results (default reports/bench/)")
    args = ap.parse_args(argv)
    names = [n for n in SUITES if n != "tier"] if args.suite == "all" else [args.suite]
    started, host = datetime.now(UTC), machine()
    figures: list[Figure] = []
    for name in names:
        print(f"== {name}", flush=True)
        for fig in SUITES[name](args.repeats or DEFAULT_REPEATS[name]):
            print(fig.line(), flush=True)
            figures.append(fig)
    host["load_average_end"] = [round(x, 2) for x in os.getloadavg()]  # with the start's: how busy the machine was
    doc = {"started_at": started.isoformat(timespec="seconds"),
           "command": shlex.join(["python", "-m", "bench.run", *(argv if argv is not None else sys.argv[1:])]),
           "machine": host, "figures": [f.as_json() for f in figures]}
    out = args.json or BENCH_DIR / f"bench-{started.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results: {out}")
    missed = [f.name for f in figures if f.met is False]
    if missed:
        print(f"goals missed: {'; '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
