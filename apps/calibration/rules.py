"""The calibration system's faults: which tasks it drops, fails or runs twice, by task id alone.

A task's fate depends only on k, its number in the measured load: the digits of its client-made id
plus one (``m0000006`` is the 7th task sent). In order of precedence (a k matching several rules
gets the first one that matches):

1. ``k % 7 == 0``: dropped: answered 202, never run, nothing recorded (a silent loss);
2. ``k % 13 == 0``: failed for good: each of its ``1 + retries`` attempts records a start and an
   error, none an effect (a loss the system knows about);
3. ``k % 11 == 0``: run twice: two attempts, each with a start and an effect (a duplicate);

every other task runs once. The rule reads the id rather than counting requests in memory: the
count would restart at 0 when the API is killed and restarted (and would depend on which requests
reached the process before the kill), whereas the id is made by the client and survives both, so
the expected counts are a pure function of which ids were accepted.

Only ids of the measured load (prefix ``m``, the harness's ``LoadPlan.id_prefix``) are faulted:
the warm-up's ``w...`` tasks must all complete, since they prove the pipeline before measuring.
"""

from __future__ import annotations

import re
from enum import StrEnum

FAULTED_PREFIX = "m"
"""Ids of the measured load; other ids (the warm-up's) always run once."""
DROP_EVERY, FAIL_EVERY, TWICE_EVERY = 7, 13, 11
"""The k-th task is dropped, failed or run twice when k is a multiple of these (that precedence)."""
_ID = re.compile(r"^([A-Za-z_.:-]*?)(\d+)$")


class Fate(StrEnum):
    """What the calibration system does with one accepted task."""

    ONCE = "once"
    """Runs once: one start, one effect."""
    DROPPED = "dropped"
    """Never runs: no record at all."""
    FAILED = "failed"
    """Every attempt errors: a start and an error per attempt, no effect."""
    TWICE = "twice"
    """Runs twice: two starts, two effects."""


def ordinal(task_id: str) -> int | None:
    """k of a measured task (its id's number plus one), None for any other id."""
    m = _ID.match(task_id)
    if m is None or m.group(1) != FAULTED_PREFIX:
        return None
    return int(m.group(2)) + 1


def fate(task_id: str) -> Fate:
    """The fate of a task, from its id alone (see the module's rules and their precedence)."""
    k = ordinal(task_id)
    if k is None:
        return Fate.ONCE
    if k % DROP_EVERY == 0:
        return Fate.DROPPED
    if k % FAIL_EVERY == 0:
        return Fate.FAILED
    if k % TWICE_EVERY == 0:
        return Fate.TWICE
    return Fate.ONCE
