"""The measured load as data: what to send, when, with which job parameters.

A :class:`LoadPlan` is what a load driver (:mod:`harness.load.drivers`) sends and what the
locustfile receives as ``--plan JSON``; the capacity analysis reads its steps back.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

START_LINE = "open loop starts at"
"""What the locustfile logs once the open loop's start time is fixed (followed by epoch seconds)."""


@dataclass(frozen=True)
class LoadPlan:
    """What to send."""

    rate: float
    """Requests per second (open loop)."""
    duration_s: float
    """How long to send."""
    kind: str = "sleep"
    """Job kind of every task."""
    params: dict[str, Any] = field(default_factory=dict)
    """Job parameters of every task."""
    timeout_s: float = 10.0
    """A request without an answer after this long is ``info``."""
    phase: str = "measure"
    """``warmup`` or ``measure``."""
    id_prefix: str = "m"
    """Prefix of the client-made task ids (unique per phase)."""
    steps: tuple[tuple[float, float], ...] = ()
    """Stepped open loop: ``(rate, seconds)`` pieces sent back to back; empty: ``rate`` for ``duration_s``."""

    def schedule(self) -> tuple[tuple[float, float], ...]:
        """The ``(rate, seconds)`` pieces of the plan (one piece when it has no steps)."""
        return self.steps or ((self.rate, self.duration_s),)

    def step_counts(self) -> list[int]:
        """Requests per piece of the schedule."""
        return [round(rate * seconds) for rate, seconds in self.schedule()]

    @property
    def count(self) -> int:
        """How many requests the plan sends."""
        return sum(self.step_counts())

    def due_s(self, i: int) -> float:
        """When request i is due, in seconds after the start (whatever the answers: open loop)."""
        offset = 0.0
        for (rate, seconds), n in zip(self.schedule(), self.step_counts(), strict=True):
            if i < n:
                return offset + i / rate
            i -= n
            offset += seconds
        raise IndexError("request index beyond the plan")

    def task_id(self, i: int) -> str:
        """Client-made id of request i."""
        return f"{self.id_prefix}{i:07d}"

    def to_json(self) -> str:
        """The plan as one line of JSON (what the locustfile's ``--plan`` takes)."""
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> LoadPlan:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)
        data["steps"] = tuple((float(r), float(s)) for r, s in data.get("steps", ()))
        return cls(**data)

