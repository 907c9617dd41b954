"""The parameters of a scenario run: every knob with its default, type and range.

:class:`Params` is data; scenarios change its defaults (:mod:`harness.model.scenario`), users
override by name (``--param NAME=VALUE``), and :meth:`Params.check` refuses a value out of its
:data:`LIMITS` in one line before anything starts.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.model.load import LoadPlan


class ParamError(ValueError):
    """A parameter the run cannot use: unknown, of the wrong type, or out of its range (one line)."""


DAY_S = 86_400.0
"""Ceiling of every duration parameter unless ``allow_long`` is set: a typo must not start a 31-year run."""
LONG_S = 30 * DAY_S
"""Ceiling of every duration parameter with ``allow_long``."""
MAX_RATE = 100_000.0
"""Highest request rate (requests/s) of any step: about 25 Locust processes' worth on this machine."""
MAX_LADDER_STEPS = 1000
"""Most steps a capacity ladder may have (duration_s / step_s)."""
BOOL_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
"""Spellings of a boolean parameter on the command line."""


@dataclass(frozen=True)
class Params:
    """Every knob of a scenario run; scenarios change defaults, users override by name.

    :data:`LIMITS` gives each one's range; :meth:`check` enforces them before anything starts.
    """

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
    ladders: int = 1
    """A capacity ladder is sent this many times per system (drained in between): knees as median and range."""
    reference_s: float = 20.0
    """How long each reference ceiling of a capacity run measures (an engine's own load tester pushes this long)."""
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
    allow_long: bool = False
    """Lift the one-day ceiling of duration parameters (to 30 days): a long soak on purpose."""

    def override(self, values: Mapping[str, Any]) -> Params:
        """A copy with values replaced; strings are converted to each field's type (ranges: :meth:`check`)."""
        changes: dict[str, Any] = {}
        for key, value in values.items():
            name = key.replace("-", "_")
            if name not in LIMITS:
                raise ParamError(f"unknown parameter {show(repr(key))} (known: {', '.join(sorted(LIMITS))})")
            changes[name] = LIMITS[name].coerce(name, value)
        return dataclasses.replace(self, **changes)

    def check(self, given: Mapping[str, Any] | None = None) -> None:
        """Raise ParamError for the first parameter out of its range, or parameters that contradict each other.

        given: values as the user wrote them (``--param rate=1e400``), quoted in the message instead of
        the converted value.
        """
        given = {k.replace("-", "_"): v for k, v in (given or {}).items()}
        for name, limit in LIMITS.items():
            value = getattr(self, name)
            if not limit.allows(value, self.allow_long):
                raise ParamError(f"parameter {name}={show(given.get(name, value))}: "
                                 f"allowed {limit.describe(self.allow_long)}")
        self._check_load(given)

    def _check_load(self, given: Mapping[str, Any]) -> None:
        """Cross-field checks of the measured load: a ladder that fits and rises, at least one request."""
        def as_given(name: str) -> str:
            return f"{name}={show(given.get(name, getattr(self, name)))}"

        if self.step_s > 0:
            if self.step_s > self.duration_s:
                raise ParamError(f"parameter {as_given('step_s')}: allowed 0 (no ladder) or up to duration_s "
                                 f"({self.duration_s:g})")
            if self.duration_s / self.step_s > MAX_LADDER_STEPS:
                raise ParamError(f"parameter {as_given('step_s')}: allowed at least duration_s/{MAX_LADDER_STEPS} "
                                 f"({self.duration_s / MAX_LADDER_STEPS:g}): a ladder has at most "
                                 f"{MAX_LADDER_STEPS} steps")
            rates = [r for r, _ in self.load().steps]
            if rates[-1] > MAX_RATE:
                raise ParamError(f"parameter {as_given('step_factor')}: the ladder's last step would send "
                                 f"{rates[-1]:.6g} requests/s; allowed up to {MAX_RATE:.0f} (lower step_factor, "
                                 f"rate or duration_s)")
            if any(b <= a for a, b in itertools.pairwise(rates)) or rates[0] <= 0:
                raise ParamError(f"parameter {as_given('rate')}: the ladder's rates must rise step by step, but "
                                 f"rounded to 0.001/s they go {', '.join(f'{r:g}' for r in rates[:3])}...")
        if self.load().count < 1:
            raise ParamError(f"parameter {as_given('rate')}: the measured load would send no request "
                             f"(rate x duration_s = {self.rate * self.duration_s:.3g}); allowed rate x duration_s "
                             f">= 0.5")

    def ladder_plans(self) -> list[LoadPlan]:
        """The measured load of each repetition of a ladder (ids ``m...``, ``m2-...``): one plan without a ladder."""
        plan = self.load()
        if not plan.steps:
            return [plan]
        return [dataclasses.replace(plan, id_prefix="m" if k == 0 else f"m{k + 1}-") for k in range(self.ladders)]

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

    def task_config(self) -> dict[str, Any]:
        """Settings passed to the system's processes (``apps.common.contract.TaskConfig``'s fields)."""
        return {"retries": self.retries, "execution_timeout_s": self.execution_timeout_s, "slots": self.slots,
                "trigger_threads": self.trigger_threads, "seed": self.seed}


def show(value: Any) -> str:
    """A value for a one-line message: as typed when that prints safely, else quoted and escaped; at most 40 chars."""
    if isinstance(value, float):
        text = num(value)
    elif isinstance(value, str) and value and value.isprintable() and value == value.strip():
        text = value
    else:
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class Limit:
    """The values one parameter may take: its type and range."""

    type: type
    """``int``, ``float``, ``bool`` or ``str``."""
    lo: float | None = None
    """Lowest value allowed (None: no bound)."""
    hi: float | None = None
    """Highest value allowed (None: no bound)."""
    lo_open: bool = False
    """lo itself is not allowed (``> 0`` rather than ``>= 0``)."""
    duration: bool = False
    """A duration: at most :data:`DAY_S`, or :data:`LONG_S` with ``allow_long`` (hi is then ignored)."""
    choices: tuple[str, ...] = ()
    """The allowed values of a ``str`` parameter."""

    def coerce(self, name: str, value: Any) -> Any:
        """value converted to this parameter's type (strings parsed); ParamError when it cannot be."""
        wrong = ParamError(f"parameter {name}={show(value)}: allowed {self.describe(False)}")
        if isinstance(value, bool) != (self.type is bool) and not isinstance(value, str):
            raise wrong
        try:
            if isinstance(value, str):
                if self.type is bool:
                    return BOOL_WORDS[value.strip().lower()]
                return self.type(value.strip()) if self.type is not str else value
            if self.type is float and isinstance(value, int | float):
                return float(value)
            if isinstance(value, self.type):
                return value
        except (KeyError, ValueError, OverflowError):
            raise wrong from None
        raise wrong

    def ceiling(self, allow_long: bool) -> float | None:
        """The highest value allowed."""
        if self.duration:
            return LONG_S if allow_long else DAY_S
        return self.hi

    def allows(self, value: Any, allow_long: bool) -> bool:
        """Whether value is of this parameter's type and in its range."""
        if self.type is bool:
            return isinstance(value, bool)
        if self.type is str:
            return isinstance(value, str) and (not self.choices or value in self.choices)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return False
        if self.type is int and not isinstance(value, int):
            return False
        hi = self.ceiling(allow_long)
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return hi is None or value <= hi

    def describe(self, allow_long: bool) -> str:
        """The range in words, e.g. ``a number > 0 and <= 86400``."""
        if self.type is bool:
            return "true or false (also yes/no, 1/0)"
        if self.type is str:
            return "one of " + ", ".join(self.choices) if self.choices else "any text"
        what = "an integer" if self.type is int else "a finite number"
        hi = self.ceiling(allow_long)
        if self.lo is not None and hi is not None and not self.lo_open:
            text = f"{what} from {num(self.lo)} to {num(hi)}"
        else:
            bounds = [f"{'>' if self.lo_open else '>='} {num(self.lo)}"] if self.lo is not None else []
            bounds += [f"<= {num(hi)}"] if hi is not None else []
            text = f"{what} {' and '.join(bounds)}"
        if self.duration and not allow_long:
            text += f" (a day; allow_long=true: up to {num(LONG_S)})"
        return text


def num(x: float) -> str:
    """A bound for a message: whole numbers in full (86400, not 8.64e+04)."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


LIMITS: dict[str, Limit] = {
    "seed": Limit(int, 0, 2**63 - 1),
    "rate": Limit(float, 0, MAX_RATE, lo_open=True),
    "duration_s": Limit(float, 0, lo_open=True, duration=True),
    "step_s": Limit(float, 0, duration=True),
    "step_factor": Limit(float, 1, 10, lo_open=True),
    "ladders": Limit(int, 1, 20),
    "reference_s": Limit(float, 1, 600),
    "warmup": Limit(int, 0, 10_000),
    "kind": Limit(str, choices=("sleep", "cpu")),
    "job_s": Limit(float, 0, 3600),  # the contract's own limit (apps/common/contract.py JobParams)
    "fail_p": Limit(float, 0, 1),
    "hang_p": Limit(float, 0, 1),
    "hang_s": Limit(float, 0, 3600),  # the contract's own limit
    "hang_ignores_cancel": Limit(bool),
    "downstream": Limit(bool),
    "retries": Limit(int, 0, 100),
    "execution_timeout_s": Limit(float, 0, lo_open=True, duration=True),
    "slots": Limit(int, 1, 10_000),
    "trigger_threads": Limit(int, 0, 1024),
    "fault_at_s": Limit(float, 0, duration=True),
    "downtime_s": Limit(float, 0, duration=True),
    "grace_s": Limit(float, 0, duration=True),
    "client_timeout_s": Limit(float, 0, lo_open=True, duration=True),
    "drain_deadline_s": Limit(float, 0, lo_open=True, duration=True),
    "drain_quiet_s": Limit(float, 0, duration=True),
    "allow_long": Limit(bool),
}
"""Type and range of every :class:`Params` field, in its order (``harness list`` prints them)."""
assert list(LIMITS) == [f.name for f in dataclasses.fields(Params)], "every parameter needs a Limit"


