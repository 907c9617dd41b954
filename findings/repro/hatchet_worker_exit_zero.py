"""hatchet-sdk's worker exits with status 0 when its registration is refused while the engine's database is down.

Starts Postgres and the pinned engine (engine -> Postgres through Toxiproxy) and, per try, one real
hatchet-sdk worker (the tries side by side) whose lifespan holds its start right after the engine
version check (a worker opening its own pools there is held the same way). While they are held,
the engine's link to Postgres is cut; 6.5 s later (past the engine's 5 s token cache,
``CACHE_DURATION``) they are let go: each one's listener process registers, the engine answers
``UNAUTHENTICATED: invalid auth token`` (it cannot read the token from Postgres:
hatchet-dev/hatchet#4826), the listener gives up without retrying, and the worker process exits
on its own. A try reproduces it when the worker exits with status 0 after a refused registration
(a supervisor that restarts only failed processes would leave it down). Each SDK version asked
for (``--sdk``) runs the same tries on the same engine.

Usage: ``python -m findings.repro.hatchet_worker_exit_zero [--tries 2] [--sdk hatchet-sdk==1.43.1]``.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from findings.repro import common
from harness.model.finding import CheckResult

TRIES = 2
VERSIONS = ("hatchet-sdk==1.38.0", "hatchet-sdk==1.43.1")
"""The SDK versions checked by default."""
CACHE_S = 6.5
"""Wait after the cut before the registration: past the engine's token cache (5 s)."""
EXIT_WAIT_S = 40.0
"""Longest wait for the worker to exit after its registration."""
HANG_S = 30.0
"""A worker started during the cut that neither registers nor exits within this long is hung."""


def plan(args: common.Args) -> list[str]:
    """What a run does."""
    versions = list(args.sdk) or list(VERSIONS)
    return [f"start: Postgres + hatchet-engine {common.engine_version()} (hatchet-lite), engine->postgres through "
            "Toxiproxy",
            f"versions: {', '.join(versions)} (one worker process per try, on that version's Python)",
            f"tries: {args.tries} workers per version side by side, each held after its version check; "
            f"engine->postgres cut, {CACHE_S:g} s later they register",
            "reproduced: the worker exits with status 0 after its registration was refused (UNAUTHENTICATED)"]


def worker_log(path: Path) -> dict[str, bool]:
    """What a worker's log shows."""
    text = path.read_text(errors="replace") if path.exists() else ""
    return {"unauthenticated": "UNAUTHENTICATED" in text, "invalid_auth_token": "invalid auth token" in text,
            "could_not_start_listener": "could not start action listener" in text,
            "blocked_main_loop_attribute_error": "blocked_main_loop" in text and "AttributeError" in text,
            # printed before the listener registers: a readiness check reading it passes, then the worker exits
            "said_waiting_for_tasks": "waiting for tasks" in text}


def held_registrations(st: common.HatchetStack, py: common.Runtime, tries: int) -> list[dict[str, Any]]:
    """The tries side by side: every worker passes its version check and is held; the database goes; then they
    register."""
    procs, holds = [], []
    for k in range(tries):
        name = f"worker-{py.version}-{k}"
        holds.append(st.processes.logs / f"{name}.hold")
        procs.append(st.processes.start(name, [py.python, "-m", common.client_module(), "worker", "--name", name,
                                               "--hold-file", str(holds[-1])], st.client_env("exit0")))
    for proc in procs:  # each held: past its version check, before its registration
        if not common.wait_until(functools.partial(common.log_has, proc.log_path, "engine version checked"), 90):
            raise RuntimeError(f"{proc.name} never reached its lifespan (log: {proc.log_path})")
    st.set_link("engine->postgres", False)
    try:
        time.sleep(CACHE_S)
        for hold in holds:
            hold.touch()
        deadline = time.monotonic() + EXIT_WAIT_S
        for proc in procs:
            proc.wait(max(0.0, deadline - time.monotonic()))
    finally:
        st.set_link("engine->postgres", True)
    out = []
    for k, proc in enumerate(procs):
        exited = not proc.alive()
        code = proc.exit_code() if exited else None
        if not exited:
            proc.kill()
        seen = worker_log(proc.log_path)
        out.append({"try": k, "exit_code": code, "exited": exited, **seen})
        common.say(f"{py.label} try {k + 1}: " + (f"exited with status {code}" if exited else "still running")
                   + (" after UNAUTHENTICATED" if seen["unauthenticated"] else ""))
    time.sleep(3)  # the engine reads its token again
    return out


def result(py: common.Runtime, tries: list[dict[str, Any]], seconds: float) -> CheckResult:
    """Judge one version's tries."""
    hits = [t for t in tries if t["exited"] and t["exit_code"] == 0 and t["unauthenticated"]]
    codes = ", ".join("hung" if not t["exited"] else str(t["exit_code"]) for t in tries)
    refused = sum(t["unauthenticated"] for t in tries)
    attr = sum(t["blocked_main_loop_attribute_error"] for t in tries)
    detail = (f"worker exited with status 0 after a refused registration in {len(hits)} of {len(tries)} tries "
              f"(exit statuses: {codes}; UNAUTHENTICATED in {refused}; listener AttributeError "
              f"'blocked_main_loop' in {attr})")
    return CheckResult.judge(len(hits), len(tries), seconds, detail,
                             {"hatchet-sdk": py.version, "hatchet-engine": common.engine_version()}, {"tries": tries})


def run(args: common.Args) -> list[CheckResult]:
    """Every version's tries on one engine."""
    pys = common.runtimes(args, "hatchet-sdk", VERSIONS)
    results = []
    with common.hatchet_stack(args.logs, "hatchet-lite", ["engine->postgres"]) as st:
        for py in pys:
            t0 = time.monotonic()
            tries = held_registrations(st, py, args.tries)
            results.append(result(py, tries, time.monotonic() - t0))
            common.say(f"{py.label}: exited 0 {results[-1].reproduced} of {len(tries)}")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    return common.main(argv, __doc__ or "", TRIES, plan, run)


if __name__ == "__main__":
    sys.exit(main())
