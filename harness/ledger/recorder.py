"""What a system under test writes through: the public ledger API, one durable write per call."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from harness.ledger.base import Ledger
from harness.ledger.open import open_ledger
from harness.model.env import ENV_LEDGER, ENV_PROCESS, ENV_SYSTEM
from harness.model.history import Event, EventType, Span


class Recorder:
    """What a system under test calls to record attempts and effects: the public ledger API.

    Use one per process::

        rec = Recorder.from_env()          # HARNESS_LEDGER, HARNESS_SYSTEM, HARNESS_PROCESS
        rec.started(task_id, attempt)      # first thing an attempt does
        ...do the work...
        rec.effect(task_id, attempt)       # the side effect happened
        # or, if the attempt raised:
        rec.failed(task_id, attempt, repr(exc))
        rec.span(task_id, "trigger.call", t0, t1)   # optional: where a stage's time went

    Each call is one durable write; none of them raises on a duplicate.
    """

    def __init__(self, ledger: Ledger, system: str, process: str) -> None:
        self.ledger = ledger
        """Where records go."""
        self.system = system
        """Name of the system under test."""
        self.process = process
        """Name of this process within its stack."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Recorder:
        """Build from the environment the harness gives every process of a stack."""
        env = os.environ if env is None else env
        missing = [k for k in (ENV_LEDGER, ENV_SYSTEM, ENV_PROCESS) if not env.get(k)]
        if missing:
            raise RuntimeError(f"not started by the harness: {', '.join(missing)} unset")
        return cls(open_ledger(env[ENV_LEDGER]), env[ENV_SYSTEM], env[ENV_PROCESS])

    def _write(self, task_id: str, type: EventType, attempt: int, detail: str | None) -> None:
        ev = Event(task_id, self.system, type, attempt, self.process, os.getpid(), time.time(), detail)
        self.ledger.record_event(ev)

    def started(self, task_id: str, attempt: int) -> None:
        """An execution attempt of task_id began."""
        self._write(task_id, "start", attempt, None)

    def effect(self, task_id: str, attempt: int, detail: str | None = None) -> None:
        """The task's side effect was performed by this attempt."""
        self._write(task_id, "effect", attempt, detail)

    def failed(self, task_id: str, attempt: int, error: str) -> None:
        """The attempt raised; the system may retry it."""
        self._write(task_id, "error", attempt, error[:500])

    def call(self, task_id: str, attempt: int, detail: str | None = None) -> None:
        """A downstream service received a call for task_id (recorded by that service)."""
        self._write(task_id, "call", attempt, detail)

    def span(self, task_id: str, name: str, t_start: float, t_end: float, attempt: int = 0,
             detail: str | None = None) -> None:
        """One stage of task_id took from t_start to t_end (epoch seconds) in this process."""
        self.ledger.record_span(Span(task_id, self.system, name, attempt, self.process, os.getpid(), t_start, t_end,
                                     None if detail is None else detail[:500]))
