"""Schedules: when faults happen, as steps of (trigger, fault).

Triggers: :class:`At` a time after the measured load starts, :class:`AfterAccepted` N accepted
tasks, :class:`WhenInFlight` at least k attempts running, :class:`Every` period (with seeded
jitter). A step may hold several faults and inject one per firing, picked by the seed. The same
seed gives the same schedule.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

from harness.model.fault import LINK_ACTIONS, Fault


@dataclass(frozen=True)
class Observation:
    """What the runner knows when it asks the schedule what is due."""

    elapsed_s: float
    """Seconds since the measured load started."""
    accepted: int
    """Measured tasks accepted so far."""
    in_flight: int
    """Attempts started and not finished (-1 when not measured: no step needs it)."""


class Trigger(Protocol):
    """Decides when its step fires."""

    @property
    def needs_in_flight(self) -> bool:
        """True when the runner must count in-flight attempts for it (a ledger query)."""

    def due(self, obs: Observation, fired: int, seed: str) -> bool:
        """True when the step should fire now, given how many times it already fired (seed: the step's)."""


@dataclass(frozen=True)
class At:
    """Fire once at a time after the measured load starts."""

    seconds: float
    needs_in_flight: bool = False

    def due(self, obs: Observation, fired: int, seed: str) -> bool:
        """Once elapsed reaches seconds."""
        return fired == 0 and obs.elapsed_s >= self.seconds


@dataclass(frozen=True)
class AfterAccepted:
    """Fire once after n measured tasks were accepted."""

    n: int
    needs_in_flight: bool = False

    def due(self, obs: Observation, fired: int, seed: str) -> bool:
        """Once accepted reaches n."""
        return fired == 0 and obs.accepted >= self.n


@dataclass(frozen=True)
class WhenInFlight:
    """Fire once when at least k attempts are running (after ``not_before_s``)."""

    k: int
    not_before_s: float = 0.0
    needs_in_flight: bool = True

    def due(self, obs: Observation, fired: int, seed: str) -> bool:
        """Once in_flight reaches k."""
        return fired == 0 and obs.elapsed_s >= self.not_before_s and obs.in_flight >= self.k


@dataclass(frozen=True)
class Every:
    """Fire every period_s from start_s until until_s, each firing jittered by up to jitter_s (seeded)."""

    period_s: float
    start_s: float = 0.0
    until_s: float = float("inf")
    jitter_s: float = 0.0
    needs_in_flight: bool = False

    def due(self, obs: Observation, fired: int, seed: str) -> bool:
        """When the next period's (jittered) time has come."""
        # Each firing's jitter comes from (seed, firing number): times never depend on polling.
        jitter = random.Random(f"{seed}:{fired}").uniform(0, self.jitter_s)
        at = self.start_s + fired * self.period_s + jitter
        return at < self.until_s and obs.elapsed_s >= at


@dataclass(frozen=True)
class Step:
    """One line of a schedule: when it fires, and the fault (or seeded pick of faults) it injects."""

    when: Trigger
    """When it fires."""
    fault: Fault
    """What it injects (the first choice, when there are several)."""
    alternatives: tuple[Fault, ...] = ()
    """Further choices: each firing injects one of ``fault`` and these, picked by the seed."""

    @property
    def choices(self) -> tuple[Fault, ...]:
        """Every fault this step may inject."""
        return (self.fault, *self.alternatives)



class Schedule:
    """The steps of a scenario with their firing state."""

    def __init__(self, steps: list[Step], seed: int) -> None:
        self.steps = steps
        """The steps, in declaration order."""
        self.seed = seed
        """Seed of jitter (random picks of targets use the nemesis's generator, seeded alike)."""
        self._fired = [0] * len(steps)

    @property
    def needs_in_flight(self) -> bool:
        """True when some trigger looks at in-flight attempts."""
        return any(s.when.needs_in_flight for s in self.steps)

    def due(self, obs: Observation) -> list[Fault]:
        """Faults to inject now (each step's firing count goes up)."""
        out = []
        for i, step in enumerate(self.steps):
            if step.when.due(obs, self._fired[i], f"{self.seed}:{i}"):
                pick = random.Random(f"{self.seed}:{i}:{self._fired[i]}:pick").randrange(len(step.choices))
                self._fired[i] += 1
                out.append(step.choices[pick])
        return out


def link_targets(steps: list[Step]) -> dict[str, set[str]]:
    """Link patterns some step may fault, with the actions: known before the run, so the stack routes exactly
    those links where a fault can reach them (Toxiproxy, or a partition between hosts)."""
    out: dict[str, set[str]] = {}
    for step in steps:
        for fault in step.choices:
            if fault.action in LINK_ACTIONS:
                out.setdefault(fault.target, set()).add(fault.action)
    return out
