"""Records of a run's history: client operations, effect-log events, faults and samples.

These are plain values; the ledger stores them and the checker reads them. The vocabulary is
Jepsen's, adapted to task queues (see shared/DESIGN.md): a client op is ``ok`` (accepted),
``fail`` (definitely refused) or ``info`` (no answer: it may or may not run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

Outcome = Literal["ok", "fail", "info"]
EventType = Literal["start", "effect", "error", "call"]
Phase = Literal["warmup", "measure"]


class Op(NamedTuple):
    """One client request: submit task_id to a system."""

    task_id: str
    """Client-made id, unique within a run."""
    system: str
    """System the request went to."""
    kind: str
    """Job kind (``sleep``, ``cpu``, ...)."""
    phase: str
    """``warmup`` (not measured) or ``measure``."""
    invoke_t: float
    """When the request was (meant to be) sent, epoch seconds."""
    complete_t: float
    """When the answer (or the give-up) came, epoch seconds."""
    outcome: str
    """``ok``, ``fail`` or ``info``."""
    status: int | None = None
    """HTTP status, if any answer came."""
    error: str | None = None
    """Why there was no answer, or the refusal body."""
    client: str | None = None
    """Which load-generator process sent it."""


class Event(NamedTuple):
    """One effect-log record written by the system under test (or its downstream)."""

    task_id: str
    """Task the record belongs to."""
    system: str
    """System that wrote it."""
    type: str
    """``start`` (attempt began), ``effect`` (side effect done), ``error`` (attempt raised), ``call``."""
    attempt: int
    """Attempt number as the system counts it (Hatchet's reassignment does not bump it)."""
    process: str
    """Process name within the stack."""
    pid: int
    """OS process id (tells two incarnations of one process apart)."""
    t: float
    """Epoch seconds."""
    detail: str | None = None
    """Error text or effect detail."""


class Span(NamedTuple):
    """How long one stage of a task took, as one process saw it (trigger, downstream call, ...)."""

    task_id: str
    """Task the span belongs to."""
    system: str
    """System (or harness component) that wrote it."""
    name: str
    """Stage, e.g. ``trigger.wait``, ``trigger.call``, ``downstream.client``, ``downstream.server``."""
    attempt: int
    """Attempt number (0 where attempts have no meaning, e.g. a trigger)."""
    process: str
    """Process name within the stack."""
    pid: int
    """OS process id."""
    t_start: float
    """Epoch seconds the stage began."""
    t_end: float
    """Epoch seconds it ended."""
    detail: str | None = None
    """Outcome or error text."""


@dataclass(frozen=True)
class FaultRecord:
    """One fault in the run history, with its window (the shaded band in reports)."""

    t_start: float
    """When the nemesis began the fault, epoch seconds."""
    t_end: float | None
    """When it was healed (None: never healed, a harness bug after heal-all)."""
    action: str
    """What was done: ``kill``, ``terminate``, ``pause``, ``link-down``, ``latency``, ..."""
    target: str
    """Process or link name it hit."""
    detail: dict[str, Any] = field(default_factory=dict)
    """Parameters of the fault."""


class Sample(NamedTuple):
    """One measurement over time."""

    t: float
    """Epoch seconds."""
    source: str
    """Process or component measured."""
    metric: str
    """``rss_bytes``, ``backlog``, ..."""
    value: float
    """The reading."""
