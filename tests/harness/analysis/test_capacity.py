"""The knee from a ledger: a step is sustained while completions keep pace and latency does not grow."""

from __future__ import annotations

from pathlib import Path

from harness.analysis.capacity import KneeProbe, StepStats, analyze, knee_of, time_breakdown, with_references
from harness.ledger import Ledger, create_ledger
from harness.model.history import Event, Op, Span
from harness.model.load import LoadPlan

PLAN = LoadPlan(rate=10, duration_s=9, steps=((10, 3), (20, 3), (40, 3)))
START = 1_000_000.0
CAPACITY = 15.0
"""Tasks per second the simulated system completes, one after the other."""


def simulated_ledger(tmp_path: Path) -> Ledger:
    """Every request accepted at once; a single queue completes CAPACITY tasks per second, 0.2 s each at least."""
    ledger = create_ledger(tmp_path / "ledger.db")
    free_at = START
    for i in range(PLAN.count):
        sent = START + PLAN.due_s(i)
        done = max(sent + 0.2, free_at + 1 / CAPACITY)
        free_at = done
        ledger.record_op(Op(PLAN.task_id(i), "sim", "sleep", "measure", sent, sent + 0.002, "ok", 202))
        ledger.record_event(Event(PLAN.task_id(i), "sim", "start", 0, "api", 1, done - 0.2))
        ledger.record_event(Event(PLAN.task_id(i), "sim", "effect", 0, "api", 1, done))
    return ledger


def test_steps_below_capacity_are_sustained_and_the_knee_is_the_last_of_them(tmp_path: Path) -> None:
    cap = analyze(simulated_ledger(tmp_path), PLAN)
    assert [s["rate"] for s in cap["steps"]] == [10, 20, 40]
    assert [s["sustained"] for s in cap["steps"]] == [True, False, False]
    assert [s["accepts"] for s in cap["steps"]] == [True, True, True]  # accepting is not the bottleneck here
    assert cap["knee_rate"] == 10 and abs(cap["max_sustained_tps"] - 10) < 1
    assert cap["accept_knee_rate"] == 40
    over = cap["steps"][2]
    assert over["completed_tps"] < 0.9 * 40 and over["e2e_growth_ms"] > 250
    assert over["backlog_end"] > cap["steps"][1]["backlog_end"] > cap["steps"][0]["backlog_end"]
    assert cap["saturated"] and not cap["stopped_early"]


def test_probe_asks_to_stop_after_two_unsustained_steps(tmp_path: Path) -> None:
    ledger = simulated_ledger(tmp_path)
    probe = KneeProbe(PLAN)
    # The probe judges with the wall clock; the simulated run is long over, so every step has settled.
    assert probe.past_knee(ledger)
    assert probe.reason == "not sustained at 20/s, 40/s"


def test_the_knee_step_and_the_next_say_where_their_time_went(tmp_path: Path) -> None:
    ledger = simulated_ledger(tmp_path)
    for i in range(PLAN.count):  # a system-recorded stage: 1 ms of every request
        sent = START + PLAN.due_s(i)
        ledger.record_span(Span(PLAN.task_id(i), "sim", "trigger.call", 0, "api", 1, sent, sent + 0.001))
    cap = analyze(ledger, PLAN)
    assert list(cap["where_time_goes"]) == ["10", "20"]
    stages = {s["stage"]: s for s in cap["where_time_goes"]["10"]}
    assert stages["API: send → accepted (2xx)"]["p50_ms"] == 2.0
    assert stages["span trigger.call"]["p50_ms"] == 1.0 and stages["span trigger.call"]["n"] == 30
    assert stages["first attempt start → first effect"]["p50_ms"] == 200.0
    past = {s["stage"]: s for s in time_breakdown(ledger, PLAN, 40)}
    queued = past["accepted → first attempt starts (queue, dispatch)"]
    assert queued["p99_ms"] > 1000, "past capacity the queue, not the API, holds the time"
    assert time_breakdown(ledger, PLAN, 33) == []


def test_references_put_the_knee_beside_each_ceiling() -> None:
    cap = {"knee_rate": 150.0, "steps": []}
    refs = {"engine": {"runs_per_s": 300.0}, "postgres": {"by_clients": {"1": 8000.0}},
            "generator": {"req_per_s": 5000.0}}
    out = with_references(cap, refs)
    assert out["reference"]["engine_runs_per_s"] == 300.0
    assert out["reference"]["postgres_commits_per_s"] == {"1": 8000.0}
    assert (out["knee_vs_engine"], out["knee_vs_generator"]) == (0.5, 0.03)
    failed = with_references(cap, {"engine": {"error": "exited 2"}, "generator": {"req_per_s": 5000.0}})
    assert "engine_runs_per_s" not in failed["reference"] and "knee_vs_engine" not in failed
    assert failed["reference"]["details"]["engine"] == {"error": "exited 2"}


def _step(rate: float, sustained: bool) -> StepStats:
    return StepStats(rate=rate, planned=10, sent=10, accepted=10, accepted_tps=rate, completed_tps=rate,
                     api_p50_ms=None, api_p99_ms=None, e2e_p50_ms=None, e2e_p99_ms=None, api_growth_ms=None,
                     e2e_growth_ms=None, backlog_mid=0, backlog_end=0, send_lag_p50_ms=None, send_lag_max_ms=None,
                     accepts=True, sustained=sustained)


def test_a_step_that_drains_the_backlog_of_two_missed_ones_is_not_the_knee() -> None:
    # A CI ladder of Hatchet (2026-12-06): 45/s and 67.5/s fell behind, then 101.25/s "completed" 107/s.
    steps = [_step(20, True), _step(30, True), _step(45, False), _step(67.5, False), _step(101.25, True)]
    knee = knee_of(steps)
    print(f"knee {knee.rate if knee else None}/s of {[(s.rate, s.sustained) for s in steps]}")
    assert knee is not None and knee.rate == 30
    one_miss = [_step(20, True), _step(30, False), _step(45, True), _step(67.5, False), _step(101.25, False)]
    stumble = knee_of(one_miss)
    assert stumble is not None and stumble.rate == 45, "one missed step alone is a stumble, not the knee"
    assert knee_of([_step(20, False), _step(30, False)]) is None
