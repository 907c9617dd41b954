"""Tests of harness/schedule.py: triggers, seeded jitter and firing counts."""

from __future__ import annotations

from harness.model.fault import Fault
from harness.model.schedule import AfterAccepted, At, Every, Observation, Schedule, Step, WhenInFlight

KILL_API = Fault("kill", "api", duration_s=1.0)
KILL_WORKER = Fault("kill", "worker")
CUT_ENGINE = Fault("link-down", "*->engine", duration_s=2.0)


def obs(elapsed_s: float = 0.0, accepted: int = 0, in_flight: int = -1) -> Observation:
    return Observation(elapsed_s=elapsed_s, accepted=accepted, in_flight=in_flight)


def firing_times(schedule: Schedule, until_s: float, step_s: float = 0.01) -> list[float]:
    """Elapsed times at which the schedule's faults fire, polling every step_s."""
    times: list[float] = []
    for k in range(round(until_s / step_s) + 1):
        t = round(k * step_s, 6)
        times.extend(t for _ in schedule.due(obs(t)))
    return times


def test_at_fires_once_when_time_reached() -> None:
    trig = At(5.0)
    assert not trig.needs_in_flight
    assert not trig.due(obs(4.99), 0, "s")
    assert trig.due(obs(5.0), 0, "s")
    assert trig.due(obs(50.0), 0, "s")
    assert not trig.due(obs(50.0), 1, "s"), "an At trigger fires once"


def test_after_accepted_fires_once_at_n() -> None:
    trig = AfterAccepted(100)
    assert not trig.needs_in_flight
    assert not trig.due(obs(accepted=99), 0, "s")
    assert trig.due(obs(accepted=100), 0, "s")
    assert trig.due(obs(accepted=150), 0, "s")
    assert not trig.due(obs(accepted=150), 1, "s")


def test_when_in_flight_needs_k_running_and_not_before() -> None:
    trig = WhenInFlight(k=10, not_before_s=3.0)
    assert trig.needs_in_flight
    assert not trig.due(obs(elapsed_s=1.0, in_flight=50), 0, "s"), "too early"
    assert not trig.due(obs(elapsed_s=4.0, in_flight=9), 0, "s"), "too few in flight"
    assert not trig.due(obs(elapsed_s=4.0, in_flight=-1), 0, "s"), "not measured is never enough"
    assert trig.due(obs(elapsed_s=4.0, in_flight=10), 0, "s")
    assert not trig.due(obs(elapsed_s=4.0, in_flight=10), 1, "s"), "fires once"


def test_every_without_jitter_fires_on_the_period_grid() -> None:
    trig = Every(period_s=2.0, start_s=1.0, until_s=7.0)
    assert not trig.due(obs(0.99), 0, "s")
    assert trig.due(obs(1.0), 0, "s")
    assert not trig.due(obs(2.9), 1, "s")
    assert trig.due(obs(3.0), 1, "s")
    assert trig.due(obs(5.0), 2, "s")
    assert not trig.due(obs(100.0), 3, "s"), "the firing at 7.0 is not before until_s"


def test_every_jitter_is_bounded() -> None:
    trig = Every(period_s=10.0, jitter_s=2.0)
    for seed in ("1:0", "2:0", "3:0", "abc"):
        for fired in range(5):
            base = fired * 10.0
            assert not trig.due(obs(base - 0.001), fired, seed)
            assert trig.due(obs(base + 2.0), fired, seed)


def test_every_jitter_depends_on_seed_not_on_polling() -> None:
    def times(seed: int, step_s: float) -> list[float]:
        sched = Schedule([Step(Every(period_s=3.0, until_s=30.0, jitter_s=1.0), KILL_WORKER)], seed=seed)
        return firing_times(sched, 31.0, step_s)

    a = times(7, 0.01)
    assert len(a) == 10
    assert a == times(7, 0.01), "same seed, same firing times"
    assert times(8, 0.01) != a, "another seed, other firing times"
    # Polling four times more often moves each firing by less than the coarser step.
    fine = times(7, 0.0025)
    assert all(abs(x - y) <= 0.01 + 1e-9 for x, y in zip(a, fine, strict=True))
    # The jitter is real: not every firing lands on the 3 s grid.
    assert any(abs(t - 3.0 * i) > 0.05 for i, t in enumerate(a))
    assert all(3.0 * i <= t <= 3.0 * i + 1.0 + 0.01 for i, t in enumerate(a))


def test_every_jitter_differs_between_steps_of_one_schedule() -> None:
    trig = Every(period_s=5.0, until_s=20.0, jitter_s=1.0)
    sched = Schedule([Step(trig, KILL_API), Step(trig, KILL_WORKER)], seed=1)
    per_fault: dict[str, list[float]] = {"api": [], "worker": []}
    for k in range(2101):
        t = round(k * 0.01, 6)
        for fault in sched.due(obs(t)):
            per_fault[fault.target].append(t)
    assert len(per_fault["api"]) == len(per_fault["worker"]) == 4
    assert per_fault["api"] != per_fault["worker"], "each step has its own jitter seed"


def test_schedule_due_fires_each_step_its_number_of_times() -> None:
    sched = Schedule(
        [
            Step(At(2.0), KILL_API),
            Step(AfterAccepted(5), KILL_WORKER),
            Step(Every(period_s=1.0, start_s=0.5, until_s=4.0), CUT_ENGINE),
        ],
        seed=3,
    )
    fired: list[Fault] = []
    for k in range(101):
        t = k * 0.1
        fired += sched.due(obs(elapsed_s=t, accepted=k))
    assert fired.count(KILL_API) == 1
    assert fired.count(KILL_WORKER) == 1
    assert fired.count(CUT_ENGINE) == 4  # 0.5, 1.5, 2.5, 3.5
    assert len(fired) == 6


def test_schedule_due_returns_steps_in_declaration_order() -> None:
    sched = Schedule([Step(At(1.0), KILL_WORKER), Step(At(0.0), KILL_API)], seed=0)
    assert sched.due(obs(0.5)) == [KILL_API]
    assert sched.due(obs(2.0)) == [KILL_WORKER]
    assert sched.due(obs(3.0)) == []


def test_every_catches_up_one_firing_per_poll() -> None:
    sched = Schedule([Step(Every(period_s=1.0), KILL_API)], seed=0)
    assert sched.due(obs(3.5)) == [KILL_API]
    assert sched.due(obs(3.5)) == [KILL_API]
    assert sched.due(obs(3.5)) == [KILL_API]
    assert sched.due(obs(3.5)) == [KILL_API]  # firings at 0, 1, 2, 3
    assert sched.due(obs(3.5)) == []


def test_needs_in_flight() -> None:
    assert not Schedule([], seed=1).needs_in_flight
    assert not Schedule([Step(At(1.0), KILL_API), Step(Every(2.0), KILL_API)], seed=1).needs_in_flight
    assert Schedule([Step(At(1.0), KILL_API), Step(WhenInFlight(3), KILL_WORKER)], seed=1).needs_in_flight
