"""Small synthetic results.json documents and run directories for the report's tests (no system runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SYSTEMS = ("native", "hatchet", "hatchet-naive", "celery", "celery-defaults")
"""A full default-tier run's systems, in results.json order."""
BASES = {"hatchet-naive": "hatchet", "celery-defaults": "celery"}
"""Each variant's base system."""
SCENARIOS: dict[str, tuple[tuple[str, ...], dict[str, str], dict[str, str]]] = {
    # name: (systems that ran, expect, not applicable with reason)
    "app-kill": (("native", "hatchet", "celery"), {"native": "loses", "hatchet": "keeps", "celery": "keeps"}, {}),
    "baseline": (("native", "hatchet", "celery"), {"native": "keeps", "hatchet": "keeps", "celery": "keeps"}, {}),
    "broker-outage": (("native", "hatchet", "celery", "celery-defaults"), {"celery": "keeps"},
                      {"native": "no broker", "hatchet": "no broker"}),
    "broker-restart": (("native", "hatchet", "celery", "celery-defaults"),
                       {"celery": "keeps", "celery-defaults": "loses"},
                       {"native": "no broker", "hatchet": "no broker"}),
    "calibration-kill": (("native",), {}, {}),
    "capacity": (("native", "hatchet", "hatchet-naive", "celery"), {}, {}),
    "cpu-heavy": (("native", "hatchet", "celery"), {"hatchet": "keeps", "celery": "keeps"}, {}),
    "db-outage": (("native", "hatchet", "celery"), {"hatchet": "keeps"}, {"native": "no database",
                                                                          "celery": "no database"}),
    "deploy-restart": (("native", "hatchet", "celery"), {"native": "loses", "hatchet": "keeps", "celery": "keeps"}, {}),
    "downstream-outage": (("native", "hatchet", "celery"), {"native": "loses", "hatchet": "keeps",
                                                            "celery": "keeps"}, {}),
    "engine-restart": (("native", "hatchet", "celery"), {"hatchet": "keeps"}, {"native": "no engine",
                                                                               "celery": "no engine"}),
    "flaky-task": (("native", "hatchet", "celery"), {"native": "loses", "hatchet": "keeps", "celery": "keeps"}, {}),
    "mq-outage": (("native", "hatchet", "celery"), {"hatchet": "keeps"}, {"native": "no queue", "celery": "no queue"}),
    "mq-restart": (("native", "hatchet", "celery"), {"hatchet": "keeps"}, {"native": "no queue", "celery": "no queue"}),
    "overload": (("native", "hatchet", "celery"), {"hatchet": "keeps", "celery": "keeps"}, {}),
    "task-timeout": (("native", "hatchet", "celery"), {"hatchet": "keeps", "celery": "keeps"}, {}),
    "worker-kill": (("native", "hatchet", "celery"), {"native": "loses", "hatchet": "keeps", "celery": "keeps"}, {}),
    "worker-partition": (("native", "hatchet", "celery"), {"hatchet": "keeps", "celery": "keeps"},
                         {"native": "no worker link"}),
    "chaos-monkey": (("native", "hatchet", "celery"), {"hatchet": "keeps"}, {}),
}
"""A default tier of 19 scenarios, as a nightly run has them."""
LOSSES = {("app-kill", "native"): 40, ("worker-kill", "native"): 12, ("flaky-task", "native"): 9,
          ("downstream-outage", "native"): 30, ("broker-restart", "celery-defaults"): 17,
          ("worker-kill", "celery"): 3}
"""Lost tasks where there are some (celery's worker-kill loss breaks its claim)."""
DUPLICATES = {("worker-partition", "hatchet"): 4, ("task-timeout", "hatchet"): 6, ("worker-kill", "hatchet"): 2}
"""Duplicated tasks where there are some."""


def run(system: str, lost: int = 0, duplicated: int = 0, **extra: Any) -> dict[str, Any]:
    """One system's results.json entry: 200 accepted, lost and duplicated as given."""
    return {"system": system, "base": BASES.get(system, ""), "color": "", "applicable": True, "attempted": 240,
            "accepted": 200, "refused": 40, "indeterminate": 0, "recovered": 0, "completed": 200 - lost,
            "lost": lost, "silent_loss": lost, "failed": 0, "duplicated": duplicated, "retried": duplicated,
            "refused_ran": 0, "unexpected": 0, "throughput_tps": 14.0,
            "e2e_latency_ms": {"p50": 20.0, "p95": 40.0, "p99": 80.0, "max": 90.0},
            "api_latency_ms": {"p50": 6.0, "p95": 45.0, "p99": 117.0, "max": 158.0}, "recovery_s": None,
            "faults": [], "identities_broken": [], **extra}


def capacity(knees: list[float], ceiling: dict[str, Any]) -> dict[str, Any]:
    """A capacity entry of repeated ladders with these knees (one ladder: the old shape, without ``ladders``)."""
    steps = [{"rate": r, "completed_tps": min(r, max(knees))} for r in (10.0, 20.0, 40.0, 80.0, 160.0)]
    if len(knees) == 1:
        return {"knee_rate": knees[0], "max_sustained_tps": knees[0] * 0.98, "accept_knee_rate": knees[0] * 2,
                "steps": steps, "reference": ceiling, "saturated": True}
    ladders = [{"knee_rate": k, "max_sustained_tps": k * 0.98, "accept_knee_rate": k * 2, "max_accepted_tps": k * 2,
                "saturated": True, "steps": steps} for k in knees]
    ordered = sorted(knees)
    median = ordered[len(ordered) // 2]
    return {"knee_rate": median, "knee_median": median, "knee_range": [ordered[0], ordered[-1]],
            "completes_median": median * 0.98, "accept_knee_median": median * 2, "ladders": ladders,
            "median_ladder": knees.index(median) + 1, "steps": steps, "max_sustained_tps": median * 0.98,
            "reference": ceiling, "saturated": True,
            "where_time_goes": {f"{median:g}": [{"stage": "answer", "n": 10, "p50_ms": 3.0, "p99_ms": 9.0}]}}


CEILINGS: dict[str, dict[str, Any]] = {"native": {"generator_req_per_s": 5000.0},
            "hatchet": {"engine_runs_per_s": 300.0, "generator_req_per_s": 5000.0,
                        "postgres_commits_per_s": {"1": 8000.0, "4": 19000.0, "8": 20000.0}},
            "hatchet-naive": {"engine_runs_per_s": 300.0, "generator_req_per_s": 5000.0},
            "celery": {"generator_req_per_s": 5000.0}}
"""Each system's reference ceilings."""
KNEES: dict[str, list[float]] = {"native": [400.0, 420.0, 380.0], "hatchet": [40.0, 44.0, 36.0],
                                 "hatchet-naive": [20.0], "celery": [150.0, 160.0, 140.0]}
"""Each system's knees over its ladders (one: results.json from before repeated ladders)."""


def doc(scenario: str, started: str = "2026-12-06T01:00:00+00:00", scale: int = 1) -> dict[str, Any]:
    """A scenario's results.json as a full default-tier run writes it (losses times scale)."""
    systems, expect, na = SCENARIOS[scenario]
    runs = []
    for system in systems:
        if system in na:
            runs.append({"system": system, "base": BASES.get(system, ""), "applicable": False, "reason": na[system]})
            continue
        r = run(system, LOSSES.get((scenario, system), 0) * scale, DUPLICATES.get((scenario, system), 0))
        if scenario == "capacity":
            r["capacity"] = capacity(KNEES[system], CEILINGS[system])
            r["throughput_tps"] = 420.0 if system == "native" else 42.0
        runs.append(r)
    return {"scenario": scenario, "fault": f"the fault of {scenario}", "claim": f"the claim of {scenario}",
            "expect": expect, "seed": 1, "started_at": started, "duration_s": 30.0,
            "manifest": {"git_sha": "0123456789abcdef", "host": "test-host", "params": {"rate": 10}}, "runs": runs}


def write_run(root: Path, scenarios: list[str], started: str = "2026-12-06T01:00:00+00:00",
              scale: int = 1) -> Path:
    """A run directory holding these scenarios' results.json (no ledgers: pages say so); returns it."""
    for name in scenarios:
        (root / name).mkdir(parents=True)
        (root / name / "results.json").write_text(json.dumps(doc(name, started, scale)))
    (root / "logs").mkdir(exist_ok=True)
    return root
