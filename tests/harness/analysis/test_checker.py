"""Tests of harness/checker.py: classification, identities, latency percentiles and recovery time."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

import pytest

from harness.analysis.checker import (
    Classification,
    Latency,
    catch_up_time,
    check,
    check_identities,
    classify,
    completion_rate,
    percentile,
    recovery_time,
)
from harness.ledger import Ledger, TaskRow, create_ledger
from harness.model.history import Event, FaultRecord, Op


def row(
    task_id: str,
    *,
    phase: str | None = "measure",
    outcome: str | None = "ok",
    starts: int = 1,
    errors: int = 0,
    effects: int = 1,
    calls: int = 0,
    n_ops: int = 1,
) -> TaskRow:
    """A per-task aggregate as task_rows would build it (times are irrelevant to classify)."""
    sent = phase is not None
    return TaskRow(
        task_id=task_id,
        phase=phase,
        outcome=outcome if sent else None,
        invoke_t=100.0 if sent else None,
        complete_t=100.01 if sent else None,
        n_ops=n_ops if sent else 0,
        starts=starts,
        errors=errors,
        effects=effects,
        calls=calls,
        first_effect_t=101.0 if effects else None,
        last_effect_t=101.0 + effects - 1 if effects else None,
    )


# ---- classify: one class at a time ---------------------------------------------------------


def test_completed_task_counts_once_as_accepted_and_completed() -> None:
    c = classify([row("t1")])
    assert (c.attempted, c.accepted, c.completed, c.lost) == (1, 1, 1, 0)
    assert (c.effects, c.attempts, c.duplicated, c.retried) == (1, 1, 0, 0)
    assert check_identities(c) == []


def test_accepted_without_effect_is_lost_and_silent() -> None:
    c = classify([row("t1", starts=1, effects=0)])
    assert (c.accepted, c.completed, c.lost, c.failed, c.silent_loss) == (1, 0, 1, 0, 1)
    assert c.lost_ids == ["t1"]
    assert check_identities(c) == []


def test_accepted_never_started_is_silent_loss_not_failed() -> None:
    c = classify([row("t1", starts=0, errors=0, effects=0)])
    assert (c.lost, c.failed, c.silent_loss, c.attempts) == (1, 0, 1, 0)


def test_lost_with_every_attempt_errored_is_failed() -> None:
    c = classify([row("t1", starts=3, errors=3, effects=0)])
    assert (c.lost, c.failed, c.silent_loss) == (1, 1, 0)
    assert c.retried == 1, "three attempt starts is a retried task"
    assert c.attempts == 3
    assert check_identities(c) == []


def test_lost_with_some_attempt_not_errored_is_silent_loss() -> None:
    # Three starts, two errors: the third attempt vanished without a word (e.g. its process was killed).
    c = classify([row("t1", starts=3, errors=2, effects=0)])
    assert (c.lost, c.failed, c.silent_loss) == (1, 0, 1)


def test_duplicated_task_is_completed_with_extra_effects() -> None:
    c = classify([row("t1", starts=2, effects=2), row("t2", starts=1, effects=3)])
    assert (c.completed, c.duplicated, c.extra_effects, c.effects) == (2, 2, 3, 5)
    assert c.duplicated_ids == ["t1", "t2"]
    assert c.retried == 1, "t2 produced three effects from one start: duplicated but not retried"
    assert check_identities(c) == []


def test_retried_task_that_completed_once_is_not_duplicated() -> None:
    c = classify([row("t1", starts=2, errors=1, effects=1)])
    assert (c.completed, c.retried, c.duplicated, c.lost, c.failed) == (1, 1, 0, 0, 0)


def test_no_answer_without_effect_is_indeterminate_only() -> None:
    c = classify([row("t1", outcome="info", starts=0, effects=0)])
    assert (c.attempted, c.indeterminate, c.recovered, c.accepted, c.lost) == (1, 1, 0, 0, 0)
    assert check_identities(c) == []


def test_no_answer_with_effect_is_recovered() -> None:
    c = classify([row("t1", outcome="info", effects=1)])
    assert (c.indeterminate, c.recovered, c.completed, c.accepted) == (1, 1, 0, 0)
    assert check_identities(c) == []


def test_refused_without_effect() -> None:
    c = classify([row("t1", outcome="fail", starts=0, effects=0)])
    assert (c.attempted, c.refused, c.refused_ran, c.accepted) == (1, 1, 0, 0)
    assert check_identities(c) == []


def test_refused_that_ran_anyway_is_refused_ran() -> None:
    c = classify([row("t1", outcome="fail", effects=1)])
    assert (c.refused, c.refused_ran, c.completed) == (1, 1, 0)
    assert check_identities(c) == []


def test_effect_for_unsent_task_is_unexpected_and_breaks_identities() -> None:
    c = classify([row("t1"), row("ghost", phase=None)])
    assert c.unexpected == 1
    assert c.attempted == 1, "an unexpected task is not an attempted one"
    assert c.effects == 1, "effects count measured tasks only"
    assert check_identities(c) == ["1 task ids ran that the client never sent"]


def test_id_sent_twice_is_counted_and_breaks_identities() -> None:
    c = classify([row("t1", n_ops=2)])
    assert c.ids_sent_twice == 1
    assert check_identities(c) == ["1 task ids were sent more than once"]


def test_warmup_rows_are_ignored() -> None:
    rows = [row("w1", phase="warmup"), row("w2", phase="warmup", effects=0), row("w3", phase="warmup", effects=2)]
    assert classify(rows) == Classification()


def test_phase_argument_selects_the_warmup_rows() -> None:
    rows = [row("w1", phase="warmup"), row("m1"), row("m2")]
    assert classify(rows, phase="warmup").attempted == 1
    assert classify(rows).attempted == 2


def test_downstream_calls_and_duplicate_calls() -> None:
    c = classify([row("t1", calls=1), row("t2", calls=2), row("t3", calls=0)])
    assert (c.downstream_calls, c.duplicate_calls) == (3, 1)


def test_id_lists_are_capped_at_50() -> None:
    rows = [row(f"l{i}", effects=0) for i in range(60)] + [row(f"d{i}", effects=2) for i in range(55)]
    c = classify(rows)
    assert (c.lost, c.duplicated) == (60, 55)
    assert c.lost_ids == [f"l{i}" for i in range(50)]
    assert c.duplicated_ids == [f"d{i}" for i in range(50)]


def test_mixed_run_counts_every_class_and_holds_identities() -> None:
    rows = [
        row("completed"),
        row("dup", starts=2, effects=2),
        row("retried", starts=3, errors=2, effects=1),
        row("silent", starts=1, effects=0),
        row("failed", starts=4, errors=4, effects=0),
        row("info", outcome="info", starts=0, effects=0),
        row("recovered", outcome="info", starts=1, effects=2),
        row("refused", outcome="fail", starts=0, effects=0),
        row("refused-ran", outcome="fail", effects=1),
        row("warm", phase="warmup"),
    ]
    c = classify(rows)
    assert (c.attempted, c.accepted, c.refused, c.indeterminate) == (9, 5, 2, 2)
    assert (c.completed, c.lost, c.failed, c.silent_loss) == (3, 2, 1, 1)
    assert (c.recovered, c.refused_ran, c.unexpected, c.ids_sent_twice) == (1, 1, 0, 0)
    assert (c.duplicated, c.extra_effects, c.retried) == (2, 2, 3)
    assert c.effects == 1 + 2 + 1 + 2 + 1
    assert c.attempts == 1 + 2 + 3 + 1 + 4 + 0 + 1 + 0 + 1
    assert sorted(c.lost_ids) == ["failed", "silent"]
    assert c.duplicated_ids == ["dup", "recovered"]
    assert check_identities(c) == []


# ---- check_identities ----------------------------------------------------------------------


def _consistent() -> Classification:
    c = classify([
        row("a"), row("b", starts=2, effects=2), row("c", effects=0), row("d", starts=2, errors=2, effects=0),
        row("e", outcome="info", effects=1), row("f", outcome="fail", effects=0),
    ])
    assert check_identities(c) == []
    return c


@pytest.mark.parametrize(
    ("change", "starts_with"),
    [
        ({"attempted": 7}, "attempted 7 != accepted 4 + refused 1 + indeterminate 1"),
        ({"lost": 3}, "accepted 4 != completed 2 + lost 3"),
        ({"effects": 9}, "effects 9 != completed 2 + recovered 1 + refused_ran 0 + extra 1"),
        ({"failed": 3}, "failed 3 not within lost 2"),
        ({"failed": -1}, "failed -1 not within lost 2"),
        ({"unexpected": 2}, "2 task ids ran that the client never sent"),
        ({"ids_sent_twice": 3}, "3 task ids were sent more than once"),
    ],
)
def test_each_tampered_count_names_its_broken_identity(change: dict[str, Any], starts_with: str) -> None:
    broken = check_identities(dataclasses.replace(_consistent(), **change))
    assert broken == [starts_with]


def test_several_broken_identities_are_all_reported() -> None:
    c = dataclasses.replace(_consistent(), accepted=10, unexpected=1)
    broken = check_identities(c)
    assert len(broken) == 3
    assert broken[0].startswith("attempted ")
    assert broken[1].startswith("accepted 10 != ")
    assert "never sent" in broken[2]


# ---- latency -------------------------------------------------------------------------------


def test_percentile_is_nearest_rank() -> None:
    xs = [float(i) for i in range(1, 11)]
    assert percentile(xs, 50) == 5.0
    assert percentile(xs, 90) == 9.0
    assert percentile(xs, 90.1) == 10.0
    assert percentile(xs, 100) == 10.0
    assert percentile(xs, 0) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 25) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 26) == 2.0
    assert percentile([7.0], 99) == 7.0


def test_percentile_ranks_exactly_for_common_sizes() -> None:
    # ceil(p/100*n) must not be pushed one rank up by floating point error.
    for n in range(1, 1001):
        xs = list(range(1, n + 1))
        for p in (50, 95, 99):
            assert percentile(xs, p) == -(-p * n // 100), (p, n)


def test_latency_of_reports_milliseconds_and_sorts_its_input() -> None:
    seconds = [i / 1000 for i in range(1, 101)]
    random.Random(3).shuffle(seconds)
    lat = Latency.of(seconds)
    assert lat == Latency(p50=50.0, p95=95.0, p99=99.0, max=100.0, n=100)


def test_latency_of_one_sample() -> None:
    assert Latency.of([0.25]) == Latency(p50=250.0, p95=250.0, p99=250.0, max=250.0, n=1)


def test_latency_of_empty_input_is_none() -> None:
    assert Latency.of([]) == Latency(p50=None, p95=None, p99=None, max=None, n=0)


# ---- completion rate and recovery time -------------------------------------------------------


def test_completion_rate_counts_half_open_window() -> None:
    times = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert completion_rate(times, 2.0, 4.0) == 1.0  # 2.0 and 3.0, not 4.0
    assert completion_rate(times, 1.0, 5.0) == 1.0
    assert completion_rate(times, 0.0, 10.0) == 0.5
    assert completion_rate(times, 5.5, 7.0) == 0.0
    assert completion_rate(times, 3.0, 3.0) == 0.0
    assert completion_rate(times, 4.0, 2.0) == 0.0
    assert completion_rate([], 0.0, 1.0) == 0.0


def _steady(start_tenths: int, stop_tenths: int, step_tenths: int = 1) -> list[float]:
    """Completion times from start to stop (exclusive), in tenths of a second."""
    return [k / 10 for k in range(start_tenths, stop_tenths, step_tenths)]


def test_recovery_time_is_none_when_fault_never_healed() -> None:
    done = _steady(0, 300)
    assert recovery_time(done, FaultRecord(t_start=10.0, t_end=None, action="kill", target="api"), t0=0.0) is None


def test_recovery_time_is_zero_without_pre_fault_completions() -> None:
    done = _steady(150, 300)  # nothing completed before the fault
    fault = FaultRecord(t_start=10.0, t_end=12.0, action="kill", target="api")
    assert recovery_time(done, fault, t0=0.0) == 0.0


def test_recovery_time_is_zero_for_fault_at_start() -> None:
    done = _steady(0, 300)
    fault = FaultRecord(t_start=0.0, t_end=1.0, action="kill", target="api")
    assert recovery_time(done, fault, t0=0.0) == 0.0


def test_recovery_time_after_a_dip() -> None:
    # 10/s before the fault at 10 s, nothing from 10 to 15 s, 10/s again from 15 s; healed at 12 s.
    # Reference rate over [5, 10) is 10/s, so recovery needs 18 completions in a 2 s window:
    # [14.75, 16.75) holds 15.0 .. 16.7, the first such window on the 0.25 s grid.
    done = _steady(0, 100) + _steady(150, 300)
    fault = FaultRecord(t_start=10.0, t_end=12.0, action="kill", target="api")
    assert recovery_time(done, fault, t0=0.0) == 2.75


def test_recovery_time_is_none_when_rate_stays_low() -> None:
    done = _steady(0, 100) + _steady(150, 300, step_tenths=5)  # 2/s after the fault
    fault = FaultRecord(t_start=10.0, t_end=12.0, action="kill", target="api")
    assert recovery_time(done, fault, t0=0.0) is None


def test_recovery_time_is_none_when_nothing_completes_after_heal() -> None:
    done = _steady(0, 100)
    fault = FaultRecord(t_start=10.0, t_end=12.0, action="kill", target="api")
    assert recovery_time(done, fault, t0=0.0) is None


def test_recovery_reference_window_starts_no_earlier_than_t0() -> None:
    # Completions at 10/s from 8 s; t0 = 8 s, fault at 10 s: the reference is 10/s over [8, 10), not
    # 4/s over [5, 10). Post-heal rate of 5/s recovers against 4/s but must not against 10/s.
    done = _steady(80, 100) + _steady(120, 300, step_tenths=2)
    fault = FaultRecord(t_start=10.0, t_end=12.0, action="kill", target="api")
    assert recovery_time(done, fault, t0=8.0) is None
    assert recovery_time(done, fault, t0=0.0) == 0.0


# ---- check over a real ledger ----------------------------------------------------------------


def _ledger_with_run(tmp_path: Path, *, all_lost: bool = False) -> Ledger:
    led = create_ledger(tmp_path / "ledger.db")
    t0 = 1000.0
    led.set_meta("t0", t0)
    led.record_op(Op("w1", "native", "sleep", "warmup", t0 - 5, t0 - 4.99, "ok"))
    led.record_event(Event("w1", "native", "effect", 1, "api", 1, t0 - 4.5))
    for i in range(20):
        led.record_op(Op(f"t{i}", "native", "sleep", "measure", t0 + i * 0.5, t0 + i * 0.5 + 0.01, "ok", 202))
        led.record_event(Event(f"t{i}", "native", "start", 1, "api", 1, t0 + i * 0.5 + 0.02))
        if not all_lost:
            led.record_event(Event(f"t{i}", "native", "effect", 1, "api", 1, t0 + i * 0.5 + 0.2))
    led.record_op(Op("r1", "native", "sleep", "measure", t0 + 1, t0 + 1.01, "fail", 503))
    led.record_op(Op("i1", "native", "sleep", "measure", t0 + 2, t0 + 12, "info", None, "timeout"))
    fid = led.fault_started("kill", "api", {"signal": 9}, t=t0 + 4)
    led.fault_ended(fid, t=t0 + 5)
    return led


def test_check_over_a_real_ledger(tmp_path: Path) -> None:
    led = _ledger_with_run(tmp_path)
    result = check(led, "native")
    assert result.identities_broken == []
    c = result.counts
    assert (c.attempted, c.accepted, c.completed, c.refused, c.indeterminate, c.lost) == (22, 20, 20, 1, 1, 0)
    assert result.t0 == 1000.0
    assert result.e2e_latency_ms.n == 20
    assert result.e2e_latency_ms.p50 == pytest.approx(200.0, abs=0.01)
    assert result.api_latency_ms.max == pytest.approx(10.0, abs=0.01)
    # 20 completions from the first invoke (t0) to the last effect (t0 + 9.7).
    assert result.throughput_tps == pytest.approx(20 / 9.7, abs=0.001)
    assert result.faults[0]["at_s"] == 4.0 and result.faults[0]["until_s"] == 5.0
    assert result.faults[0]["detail"] == {"signal": 9}
    # 2/s before the fault at t0 + 4 and again right after the heal at t0 + 5.
    assert result.faults[0]["recovery_s"] == 0.0 and result.recovery_s == 0.0
    doc = result.as_result()
    assert doc["system"] == "native" and doc["applicable"] is True and doc["completed"] == 20


def test_check_when_every_accepted_task_is_lost(tmp_path: Path) -> None:
    led = _ledger_with_run(tmp_path, all_lost=True)
    result = check(led, "native")
    assert (result.counts.lost, result.counts.silent_loss, result.counts.completed) == (20, 20, 0)
    assert result.identities_broken == []
    assert result.e2e_latency_ms == Latency(None, None, None, None, n=0)
    assert result.throughput_tps == 0.0


def test_check_recovery_is_none_when_one_fault_never_heals(tmp_path: Path) -> None:
    led = _ledger_with_run(tmp_path)
    assert check(led, "native").recovery_s == 0.0
    led.fault_started("pause", "api", t=1006.0)  # never healed
    result = check(led, "native")
    assert [f["recovery_s"] for f in result.faults] == [0.0, None]
    assert result.faults[1]["until_s"] is None
    assert result.recovery_s is None


def test_catch_up_is_the_time_until_every_task_accepted_before_the_heal_ran() -> None:
    rows = [
        row("a")._replace(invoke_t=1.0, first_effect_t=12.5),
        row("b")._replace(invoke_t=9.0, first_effect_t=14.0),
        row("late")._replace(invoke_t=11.0, first_effect_t=30.0),  # sent after the heal: not counted
        row("warm", phase="warmup")._replace(invoke_t=0.5, first_effect_t=None),
    ]
    assert catch_up_time(rows, healed_at=10.0) == 4.0
    assert catch_up_time(rows, healed_at=20.0) == 10.0
    assert catch_up_time([row("x")._replace(invoke_t=1.0, first_effect_t=2.0)], healed_at=10.0) == 0.0


def test_catch_up_is_none_when_a_task_accepted_before_the_heal_never_ran() -> None:
    rows = [row("a")._replace(invoke_t=1.0, first_effect_t=None, effects=0)]
    assert catch_up_time(rows, healed_at=10.0) is None


def test_a_skipped_fault_is_listed_but_has_no_recovery(tmp_path: Path) -> None:
    led = _ledger_with_run(tmp_path)
    led.fault_ended(led.fault_started("skipped", "kill engine", {"reason": "no engine"}, t=1006.0), t=1006.0)
    result = check(led, "native")
    skipped = [f for f in result.faults if f["action"] == "skipped"]
    assert skipped == [{"at_s": 6.0, "until_s": 6.0, "action": "skipped", "target": "kill engine",
                        "detail": {"reason": "no engine"}, "recovery_s": None, "recovery_kind": None}]
    assert result.recovery_s == 0.0, "a skipped fault neither recovers nor keeps the run from recovering"
