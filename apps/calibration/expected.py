"""What the harness must report for a calibration run, computed from the rules, not by the checker.

Accepted tasks: every count follows from their ids alone (:func:`for_accepted`), since the
calibration app records everything before it answers 202. Requests that got no 202 (refused, or
unanswered because the API was killed mid-request) may have run partly: their share is read from
the raw effect log, one task at a time (:func:`for_unanswered`), so the expectation stays exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from apps.calibration.rules import Fate, fate
from harness.ledger import Ledger


@dataclass(frozen=True)
class Expected:
    """Counts of one calibration run, named as in results.json."""

    accepted: int = 0
    """Requests answered 202."""
    completed: int = 0
    """Accepted tasks with an effect: run once or twice."""
    lost: int = 0
    """Accepted tasks without one: dropped or failed."""
    failed: int = 0
    """Lost tasks whose every attempt errored."""
    silent_loss: int = 0
    """Lost tasks with no record at all: dropped."""
    duplicated: int = 0
    """Tasks with two effects (unanswered ones included)."""
    retried: int = 0
    """Tasks with more than one attempt start (unanswered ones included)."""
    recovered: int = 0
    """Unanswered requests whose task had an effect."""
    refused_ran: int = 0
    """Refused requests whose task had an effect (the app refuses nothing itself: a kill's refusals never ran)."""
    effects: int = 0
    """Effect records of measured tasks."""
    attempts: int = 0
    """Attempt starts of measured tasks."""

    def __add__(self, other: Expected) -> Expected:
        return Expected(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def mismatches(self, run: Mapping[str, Any]) -> list[str]:
        """``name: reported X, expected Y`` for every count the run's results.json entry gets wrong."""
        return [f"{k}: reported {run.get(k)}, expected {v}" for k, v in asdict(self).items() if run.get(k) != v]


def for_accepted(task_ids: Iterable[str], retries: int) -> Expected:
    """The counts accepted tasks must produce, from their ids and the retries each failing task makes."""
    n = {f: 0 for f in Fate}
    for task_id in task_ids:
        n[fate(task_id)] += 1
    fail_attempts = 1 + retries
    return Expected(
        accepted=sum(n.values()),
        completed=n[Fate.ONCE] + n[Fate.TWICE],
        lost=n[Fate.DROPPED] + n[Fate.FAILED],
        failed=n[Fate.FAILED],
        silent_loss=n[Fate.DROPPED],
        duplicated=n[Fate.TWICE],
        retried=n[Fate.TWICE] + (n[Fate.FAILED] if fail_attempts > 1 else 0),
        effects=n[Fate.ONCE] + 2 * n[Fate.TWICE],
        attempts=n[Fate.ONCE] + 2 * n[Fate.TWICE] + fail_attempts * n[Fate.FAILED],
    )


def for_unanswered(ledger: Ledger, phase: str = "measure") -> Expected:
    """What requests without a 202 left in the effect log (a kill mid-request): counted per task."""
    outcome = {o.task_id: o.outcome for o in ledger.ops(phase) if o.outcome != "ok"}
    starts = dict.fromkeys(outcome, 0)
    effects = dict.fromkeys(outcome, 0)
    for ev in ledger.events():
        if ev.task_id in outcome:
            starts[ev.task_id] += ev.type == "start"
            effects[ev.task_id] += ev.type == "effect"
    return Expected(
        recovered=sum(1 for t, o in outcome.items() if o == "info" and effects[t]),
        refused_ran=sum(1 for t, o in outcome.items() if o == "fail" and effects[t]),
        duplicated=sum(1 for n in effects.values() if n > 1),
        retried=sum(1 for n in starts.values() if n > 1),
        effects=sum(effects.values()),
        attempts=sum(starts.values()),
    )


def for_run(ledger: Ledger, retries: int, phase: str = "measure") -> Expected:
    """The whole run's expected counts: accepted ids (from the client history) plus the unanswered share."""
    accepted = [o.task_id for o in ledger.ops(phase) if o.outcome == "ok"]
    return for_accepted(accepted, retries) + for_unanswered(ledger, phase)
