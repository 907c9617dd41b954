"""Load shapes for the harness's locustfile, picked by ``HARNESS_SHAPE`` (Locust runs one per test).

Closed loop, from the common options ``-u`` (users), ``-r`` (spawn rate) and ``-t`` (run time):
``steady`` holds -u users, ``ramp`` rises linearly to -u users over -t, ``spike`` holds -u users
and multiplies them by ``--spike-factor`` during the middle fifth of -t. Open loop: ``open`` runs
one sender per Locust process on the shared schedule of :mod:`harness.load.loadgen.plan` and ends the
test once every request has an outcome.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from locust import LoadTestShape
from locust.runners import MasterRunner

from harness.load.loadgen import plan

DEFAULT_RUN_TIME_S = 60
"""Run time of ``ramp`` and ``spike`` when ``-t`` is not given."""
STOP_SLACK_S = 10.0
"""The open loop ends this long after its last request's timeout even if a process never reported."""


class _Closed(LoadTestShape):
    """Base of the closed-loop shapes: reads -u, -r and -t."""

    abstract: ClassVar[bool] = True
    use_common_options: ClassVar[bool] = True

    def _options(self) -> Any:
        assert self.runner is not None
        return self.runner.environment.parsed_options

    def _common(self) -> tuple[int, float, float | None]:
        """(users, spawn rate, run time or None) from the common options."""
        o = self._options()
        return int(o.num_users or 1), float(o.spawn_rate or 1), float(o.run_time) if o.run_time else None

    def _elapsed(self) -> float:
        """Seconds since the test started; infinite once asked to stop (every shape then ends)."""
        return float("inf") if plan.stopping() else float(self.get_run_time())  # type: ignore[no-untyped-call]


class SteadyShape(_Closed):
    """-u users for -t seconds (or until stopped)."""

    def tick(self) -> tuple[int, float] | None:
        """Locust asks once a second: (users, spawn rate), or None to stop."""
        users, spawn_rate, run_time = self._common()
        return None if self._elapsed() >= (run_time or float("inf")) else (users, spawn_rate)


class RampShape(_Closed):
    """From 1 user up to -u users, linearly over -t seconds."""

    def tick(self) -> tuple[int, float] | None:
        """Locust asks once a second: (users, spawn rate), or None to stop."""
        users, spawn_rate, run_time = self._common()
        run_time = run_time or DEFAULT_RUN_TIME_S
        t = self._elapsed()
        return None if t >= run_time else (max(1, math.ceil(users * t / run_time)), spawn_rate)


class SpikeShape(_Closed):
    """-u users, times ``--spike-factor`` from 40 % to 60 % of -t."""

    def tick(self) -> tuple[int, float] | None:
        """Locust asks once a second: (users, spawn rate), or None to stop."""
        users, spawn_rate, run_time = self._common()
        run_time = run_time or DEFAULT_RUN_TIME_S
        t = self._elapsed()
        if t >= run_time:
            return None
        peak = round(users * self._options().spike_factor)
        # Spawn the spike within about a second: a slow ramp would be no spike.
        return (peak, max(spawn_rate, float(peak))) if 0.4 <= t / run_time < 0.6 else (users, spawn_rate)


class OpenLoopShape(LoadTestShape):
    """Open loop at ``--rate`` for ``--duration`` (or ``--plan``): one sender per Locust process."""

    open_loop: ClassVar[bool] = True
    """Tells the locustfile to announce the schedule's start."""

    def reset_time(self) -> None:
        """Start the clock; a new test starts with no process done."""
        super().reset_time()  # type: ignore[no-untyped-call]
        plan.reset_done()

    def tick(self) -> tuple[int, float] | None:
        """One user per process until every request has an outcome."""
        assert self.runner is not None
        env = self.runner.environment
        p = plan.plan_of(env.parsed_options)
        limit = plan.DISTRIBUTED_LEAD_S + p.due_s(p.count - 1) + p.timeout_s + STOP_SLACK_S if p.count else 0.0
        elapsed = float(self.get_run_time())  # type: ignore[no-untyped-call]
        if plan.finished(env) or plan.stopping() or elapsed > limit:
            return None
        n = self.runner.worker_count if isinstance(self.runner, MasterRunner) else 1
        return n, float(n)


SHAPES: dict[str, type[LoadTestShape]] = {"steady": SteadyShape, "ramp": RampShape, "spike": SpikeShape,
                                          "open": OpenLoopShape}
"""Shapes by their ``HARNESS_SHAPE`` name."""


def by_name(name: str) -> type[LoadTestShape]:
    """The shape class called name; ValueError names the known ones."""
    try:
        return SHAPES[name]
    except KeyError:
        raise ValueError(f"HARNESS_SHAPE={name!r}: expected one of {', '.join(SHAPES)}") from None
