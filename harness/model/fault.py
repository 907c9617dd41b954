"""Faults as data: what to do, to whom, for how long.

A :class:`Fault` says what to do (``kill``, ``terminate``, ``pause``, ``link-down``, ``latency``,
``timeout``, ``reset-peer``, ``bandwidth``), to whom (a process name or role, or a link pattern
such as ``*->engine``) and for how long; the nemeses (:mod:`harness.nemesis`) inject it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROCESS_ACTIONS = ("kill", "terminate", "pause")
"""Faults that signal a process group."""
TOXICS = {
    "latency": ("latency", {"latency": 1000, "jitter": 0}),
    "timeout": ("timeout", {"timeout": 0}),
    "reset-peer": ("reset_peer", {"timeout": 0}),
    "bandwidth": ("bandwidth", {"rate": 1}),
}
"""Link faults made of one Toxiproxy toxic: action -> (toxic type, default attributes)."""
LINK_ACTIONS = ("link-down", *TOXICS)
"""Faults on Toxiproxy links."""


@dataclass(frozen=True)
class Fault:
    """One fault to inject."""

    action: str
    """What to do (see PROCESS_ACTIONS and LINK_ACTIONS)."""
    target: str
    """Process name or role (``api``, ``worker-2``, ``engine``, ``api|worker``...) or link pattern (``*->engine``)."""
    duration_s: float = 0.0
    """Downtime before restart (kill, terminate), pause length, or how long a link fault lasts."""
    pick: str = "first"
    """Which of several matching processes: ``first``, ``all`` or ``random`` (seeded)."""
    params: dict[str, Any] = field(default_factory=dict)
    """Toxic attributes, or anything else the action needs."""

    def __post_init__(self) -> None:
        if self.action not in PROCESS_ACTIONS + LINK_ACTIONS:
            raise ValueError(f"unknown fault action {self.action!r}")
        if self.pick not in ("first", "all", "random"):
            raise ValueError(f"unknown pick {self.pick!r}")
