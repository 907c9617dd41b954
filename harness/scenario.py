"""Scenarios and their parameters: a name, a claim, a load, and a schedule of faults.

A scenario is data: :class:`Scenario` says what to send and what faults to inject when, built
from :class:`Params` (every knob has a default and can be overridden by name from the command
line or pytest). The runner (:mod:`harness.runner`) does the rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from apps.common.contract import TaskConfig
from harness.load import LoadPlan
from harness.schedule import Step


class ParamError(ValueError):
    """An unknown parameter or a value of the wrong type."""


@dataclass(frozen=True)
class Params:
    """Every knob of a scenario run; scenarios change defaults, users override by name."""

    seed: int = 1
    """Seeds the fault schedule, random picks and the job's pseudo-random failures."""
    rate: float = 20.0
    """Measured load: requests per second (open loop)."""
    duration_s: float = 8.0
    """Measured load: seconds of sending."""
    step_s: float = 0.0
    """Above 0: the rate rises by step_factor every step_s seconds within duration_s (a capacity ladder)."""
    step_factor: float = 1.5
    """Rate of each ladder step over the one before."""
    warmup: int = 5
    """Tasks sent (and waited for) before measuring; they also prove the stack works end to end."""
    kind: str = "sleep"
    """Job kind: ``sleep`` (I/O-like) or ``cpu`` (CPU-bound)."""
    job_s: float = 0.2
    """Work time of each attempt."""
    fail_p: float = 0.0
    """Probability that an attempt raises."""
    hang_p: float = 0.0
    """Probability that an attempt hangs for hang_s first."""
    hang_s: float = 0.0
    """How long a hanging attempt hangs."""
    hang_ignores_cancel: bool = False
    """A hanging attempt ignores cancellation (keeps going after a timeout)."""
    downstream: bool = False
    """Jobs call the downstream service before their effect."""
    retries: int = 3
    """Retries per task (where the system retries)."""
    execution_timeout_s: float = 30.0
    """Per-attempt timeout (where the system enforces one)."""
    slots: int = 50
    """Concurrent tasks per worker process."""
    trigger_threads: int = 64
    """Threads the Hatchet API gives its trigger calls (the SDK sends them through the event loop's default
    executor); 0 keeps asyncio's default size, min(32, cores + 4): the naive configuration."""
    fault_at_s: float = 5.0
    """When the scenario's fault hits, seconds into the measured load."""
    downtime_s: float = 1.0
    """How long the fault lasts before heal (restart, resume, link up)."""
    grace_s: float = 10.0
    """Graceful-shutdown time of app processes; a stop SIGKILLs them right after it."""
    client_timeout_s: float = 10.0
    """A request unanswered this long is indeterminate."""
    drain_deadline_s: float = 150.0
    """Longest wait, after the load and heal, for accepted tasks to complete."""
    drain_quiet_s: float = 0.0
    """End the drain early once the effect log is quiet this long (0: the system's own ``drain.quiet_s``)."""

    def override(self, values: Mapping[str, Any]) -> Params:
        """A copy with values replaced; strings are converted to each field's type."""
        types = {f.name: type(getattr(self, f.name)) for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for key, value in values.items():
            name = key.replace("-", "_")
            if name not in types:
                raise ParamError(f"unknown parameter {key!r} (known: {', '.join(sorted(types))})")
            changes[name] = _coerce(name, value, types[name])
        return dataclasses.replace(self, **changes)

    def load(self) -> LoadPlan:
        """The measured load."""
        n = int(self.duration_s // self.step_s) if self.step_s > 0 else 0
        steps = tuple((round(self.rate * self.step_factor**k, 3), self.step_s) for k in range(n))
        return LoadPlan(rate=self.rate, duration_s=self.duration_s, kind=self.kind, params=self.job_params(),
                        timeout_s=self.client_timeout_s, steps=steps)

    def job_params(self) -> dict[str, Any]:
        """Parameters every task carries to its job."""
        return {"duration_s": self.job_s, "fail_p": self.fail_p, "hang_p": self.hang_p, "hang_s": self.hang_s,
                "hang_ignores_cancel": self.hang_ignores_cancel, "downstream": self.downstream}

    def task_config(self) -> TaskConfig:
        """Settings passed to the system's processes."""
        return TaskConfig(retries=self.retries, execution_timeout_s=self.execution_timeout_s, slots=self.slots,
                          trigger_threads=self.trigger_threads, seed=self.seed)


def _coerce(name: str, value: Any, typ: type) -> Any:
    if isinstance(value, bool) and typ is not bool:
        raise ParamError(f"parameter {name}: expected {typ.__name__}, got {value!r}")
    if isinstance(value, typ):
        return value
    if isinstance(value, int) and typ is float:
        return float(value)
    if not isinstance(value, str):
        raise ParamError(f"parameter {name}: expected {typ.__name__}, got {value!r}")
    try:
        if typ is bool:
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        return typ(value)
    except ValueError:
        raise ParamError(f"parameter {name}: expected {typ.__name__}, got {value!r}") from None


@dataclass(frozen=True)
class Scenario:
    """A named experiment: load plus a schedule of faults, run against each system."""

    name: str
    """Name on the command line and in results (part of the interface)."""
    fault: str
    """One line: what is done to the systems."""
    claim: str
    """One line: what the folklore claims and the run measures."""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    """This scenario's changes to the Params defaults."""
    steps: Callable[[Params], list[Step]] = lambda p: []
    """The fault schedule, built from the run's params."""
    tier: str = "default"
    """``default`` (runs in ``pytest scenarios/``) or ``soak`` (``-m soak``)."""
    systems: tuple[str, ...] | None = None
    """The systems it always runs against (e.g. ``("calibration",)``); None: the ones the user selects
    (``--system``, ``--systems``; native and Hatchet by default). Scenarios naming their systems are no part
    of the native-vs-Hatchet comparison, so ``harness run all`` leaves them out."""

    also: tuple[str, ...] = ()
    """System variants that run right after their base system whenever it is selected (``hatchet-naive``:
    the SDK's default trigger executor beside the tuned one, in one results.json)."""

    def systems_for(self, selected: Sequence[str]) -> list[str]:
        """Names of the systems a run covers: this scenario's own when it names them, else selected plus ``also``."""
        if self.systems is not None:
            return list(self.systems)
        out: list[str] = []
        for name in selected:
            out += [name, *(v for v in self.also if v.startswith(f"{name}-") and v not in selected)]
        return out

    def params(self, overrides: Mapping[str, Any] | None = None) -> Params:
        """The run's parameters: Params defaults, then this scenario's, then the user's."""
        return Params().override(self.defaults).override(overrides or {})
