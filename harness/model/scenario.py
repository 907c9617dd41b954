"""Scenarios: a name, a claim, a load, and a schedule of faults.

A scenario is data: :class:`Scenario` says what to send and what faults to inject when, built
from :class:`~harness.model.params.Params` (every knob has a default and can be overridden by name
from the command line or pytest). The runner (:mod:`harness.runner`) does the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.model.params import ParamError, Params, num, show
from harness.model.schedule import AfterAccepted, At, Every, Step, WhenInFlight


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

    smoke: bool = False
    """Part of the smoke tier too (``pytest -m smoke``, ``make smoke``): the seed's claims in their shortest honest
    form, on every pull request."""
    side_by_side: bool = True
    """Its systems may run side by side (``--parallel``): its verdict rests on counts. False where it compares
    latencies or capacity, which systems sharing two cores would distort."""
    tier_s: float = 60.0
    """About how long its default-tier test takes here (every system, as ``pytest scenarios/`` runs it), from the
    tier's ``--durations``: pytest-xdist is handed the longest first, so the tier ends on short ones, not with one
    worker idle beside a long one. Only the order depends on it."""
    expect: Mapping[str, str] = field(default_factory=dict)
    """What the claim expects of each system (by name, or a variant by its base's name): ``keeps`` (loses nothing
    accepted) or ``loses``; the report colours each measured cell against it."""
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
        """The run's parameters: Params defaults, then this scenario's, then the user's; all checked.

        Raises ParamError (one line) for an unknown parameter, a value out of its range, or a schedule
        whose faults could never fire within the load: the one place both the CLI and pytest check them.
        """
        params = Params().override(self.defaults).override(overrides or {})
        params.check(overrides)
        self._check_schedule(params, overrides or {})
        return params

    def _check_schedule(self, params: Params, given: Mapping[str, Any]) -> None:
        """Every step of the fault schedule can fire while the measured load runs."""
        load_s, count = params.duration_s, params.load().count
        typed = {k.replace("-", "_"): v for k, v in given.items()}
        steps = self.steps(params)
        late = sorted({s.when.seconds for s in steps if isinstance(s.when, At) and s.when.seconds >= load_s})
        if late == [params.fault_at_s] and ("fault_at_s" in typed or "duration_s" not in typed):
            raise ParamError(f"parameter fault_at_s={show(typed.get('fault_at_s', late[0]))}: allowed below "
                             f"duration_s ({num(load_s)}), else scenario {self.name}'s fault never fires")
        if late:
            faults = "fault at" if len(late) == 1 else "faults at"
            raise ParamError(f"parameter duration_s={show(typed.get('duration_s', load_s))}: allowed above "
                             f"{num(late[-1])}, else scenario {self.name}'s {faults} "
                             f"{', '.join(num(t) for t in late)} s never {'fires' if len(late) == 1 else 'fire'}")
        for step in steps:
            when = step.when
            if isinstance(when, Every | WhenInFlight):
                start = when.start_s if isinstance(when, Every) else when.not_before_s
                end = min(load_s, when.until_s) if isinstance(when, Every) else load_s
                if start >= end:
                    raise ParamError(f"parameter duration_s={show(typed.get('duration_s', load_s))}: too short for "
                                     f"scenario {self.name}: its faults (from {num(start)} s until {num(end)} s) "
                                     f"would never fire")
            if isinstance(when, AfterAccepted) and when.n > count:
                raise ParamError(f"parameter rate={show(typed.get('rate', params.rate))}: scenario {self.name} "
                                 f"waits for {when.n} accepted tasks, but the load sends {count}")
