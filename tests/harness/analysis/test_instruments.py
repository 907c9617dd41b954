"""The degraded check: the harness's instruments against their limits, outside fault windows."""

from __future__ import annotations

from harness.analysis.instruments import LIMITS, SUSTAINED, Limit, assess, windows
from harness.model.history import FaultRecord, Sample

T0 = 1_800_000_000.0
SERVICE = ("downstream", "service_p99_ms")


def series(values: list[float], source: str = SERVICE[0], metric: str = SERVICE[1], start: float = 1.0) -> list[Sample]:
    """One sample a second from T0 + start."""
    return [Sample(T0 + start + i, source, metric, v) for i, v in enumerate(values)]


def fault(at: float, until: float | None, action: str = "pause") -> FaultRecord:
    return FaultRecord(T0 + at, None if until is None else T0 + until, action, "api")


def test_quiet_run_is_not_degraded_and_reports_its_peaks() -> None:
    samples = series([1.0, 3.0, 2.5]) + series([0.2, 9.0], "sampler", "ledger_write_ms")
    a = assess(samples, [], T0)
    assert not a.degraded and a.reason == ""
    assert a.peaks == {"downstream.service_p99_ms": 3.0, "sampler.ledger_write_ms": 9.0} and a.samples == 5


def test_sustained_breach_outside_faults_is_degraded_with_a_reason() -> None:
    a = assess(series([2.0, 150.0, 900.0, 400.0, 3.0]), [], T0)
    assert a.degraded
    assert a.reason == ("downstream service time p99 above 100 ms for 3 samples in a row outside fault windows "
                        "(from 2.0 s, peak 900 ms)")
    assert a.as_result()["harness_degraded"] is True


def test_spikes_shorter_than_the_streak_do_not_count() -> None:
    values = [500.0] * (SUSTAINED - 1) + [1.0] + [500.0] * (SUSTAINED - 1)
    a = assess(series(values), [], T0)
    assert not a.degraded and a.peaks["downstream.service_p99_ms"] == 500.0


def test_samples_inside_a_fault_window_neither_count_nor_join_streaks() -> None:
    # 2 slow samples before the fault, 2 inside (ignored), 2 after: no run of 3 outside the window.
    slow = series([300.0] * 6)  # at 1..6 s
    a = assess(slow, [fault(2.5, 4.5)], T0)
    assert not a.degraded and a.samples == 4
    # The same, with the window healed earlier: 4 slow samples in a row after it.
    assert assess(slow, [fault(0.5, 2.5)], T0).degraded


def test_never_healed_fault_covers_to_the_end_and_skipped_faults_cover_nothing() -> None:
    slow = series([300.0] * 5)
    assert not assess(slow, [fault(2.5, None)], T0).degraded
    assert assess(slow, [fault(2.0, 2.0, action="skipped")], T0).degraded
    assert windows([fault(1.0, None), fault(2.0, 2.0, "skipped")], T0 + 9) == [(T0 + 1.0, T0 + 9)]


def test_every_limit_is_checked_and_samples_before_t0_are_ignored() -> None:
    for lim in LIMITS:
        over = series([lim.above + 1] * SUSTAINED, lim.source, lim.metric)
        assert assess(over, [], T0).degraded, lim
        assert not assess(series([lim.above] * 10, lim.source, lim.metric), [], T0).degraded, lim  # at the limit
        assert not assess(series([lim.above + 1] * SUSTAINED, lim.source, lim.metric, start=-10), [], T0).degraded
    calls = Limit("downstream", "in_progress", 20.0, "calls in progress", unit="calls")
    a = assess(series([25, 30, 21], *("downstream", "in_progress")), [], T0, limits=[calls])
    assert a.reasons == ["calls in progress above 20 calls for 3 samples in a row outside fault windows "
                         "(from 1.0 s, peak 30 calls)"]


def test_no_samples_is_not_degraded() -> None:
    a = assess([], [fault(1.0, 2.0)], T0)
    assert (a.degraded, a.samples, a.peaks) == (False, 0, {})
