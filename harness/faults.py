"""The nemesis: fault injectors with Jepsen's small interface (setup, invoke, heal, teardown).

A :class:`Fault` says what to do (``kill``, ``terminate``, ``pause``, ``link-down``, ``latency``,
``timeout``, ``reset-peer``, ``bandwidth``), to whom (a process name or role, or a link pattern
such as ``*->engine``) and for how long. Every injection and heal is written to the ledger's
fault history, the same history the client operations are in.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.hosts import HostsBackend
from harness.ledger import Ledger
from harness.links import match_links
from harness.procs import Proc, stop_all
from harness.spec import SystemSpec
from harness.stack import Stack, planned_links, planned_processes, select

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


@dataclass
class ActiveFault:
    """A fault in progress, until healed."""

    fault: Fault
    """What was injected."""
    targets: list[str]
    """Process or link names it hit."""
    record_id: int
    """Its row in the ledger's fault history."""
    heal_at: float
    """Epoch seconds when the runner heals it."""


class Nemesis(Protocol):
    """A fault injector."""

    active: list[ActiveFault]
    """Faults it injected and has not healed yet."""

    def setup(self, stack: Stack, ledger: Ledger, rng: random.Random) -> None:
        """Bind to a run's stack and ledger."""

    def handles(self, fault: Fault) -> bool:
        """True when this nemesis can inject fault."""

    def invoke(self, fault: Fault) -> ActiveFault:
        """Inject fault now and record it."""

    def heal(self, active: ActiveFault) -> None:
        """Undo fault (restart, resume, re-enable) and record when it ended."""

    def teardown(self) -> None:
        """Heal whatever is still active."""


class ProcessNemesis:
    """SIGKILL, SIGTERM (the process's own graceful path) and SIGSTOP/SIGCONT on process groups."""

    def __init__(self) -> None:
        self.active: list[ActiveFault] = []
        """Faults injected and not healed yet."""

    def setup(self, stack: Stack, ledger: Ledger, rng: random.Random) -> None:
        """Bind to a run."""
        self.stack, self.ledger, self.rng = stack, ledger, rng

    def handles(self, fault: Fault) -> bool:
        """Process faults only."""
        return fault.action in PROCESS_ACTIONS

    def _choose(self, fault: Fault) -> list[str]:
        names = [p.name for p in self.stack.targets(fault.target)]
        if not names:
            raise LookupError(f"no process matches {fault.target!r}")
        if fault.pick == "all":
            return names
        return [self.rng.choice(names) if fault.pick == "random" else names[0]]

    def invoke(self, fault: Fault) -> ActiveFault:
        """Signal the chosen process groups."""
        names = self._choose(fault)
        sig = {"kill": signal.SIGKILL, "terminate": signal.SIGTERM, "pause": signal.SIGSTOP}[fault.action]
        t = time.time()
        for name in names:
            self._proc(name).signal(sig, group=sig != signal.SIGTERM)
        rid = self.ledger.fault_started(fault.action, ",".join(names), {"duration_s": fault.duration_s}, t=t)
        active = ActiveFault(fault, names, rid, t + fault.duration_s)
        self.active.append(active)
        return active

    def _proc(self, name: str) -> Proc:
        return next(p for p in self.stack.targets(name) if p.name == name)

    def heal(self, active: ActiveFault) -> None:
        """Resume a paused group; restart a killed or terminated process once it has exited."""
        procs = [self._proc(name) for name in active.targets]
        if active.fault.action == "pause":
            for proc in procs:
                proc.signal(signal.SIGCONT)
        else:
            stop_all(procs)  # terminate: waits out their graceful shutdown together; kill: reaps
            for proc in procs:
                proc.restart()
        self.ledger.fault_ended(active.record_id)
        self.active.remove(active)

    def teardown(self) -> None:
        """Heal everything still active."""
        for active in list(self.active):
            self.heal(active)


class LinkNemesis:
    """Cut or degrade Toxiproxy links: link-down, latency, timeout, reset-peer, bandwidth."""

    def __init__(self) -> None:
        self.active: list[ActiveFault] = []
        """Faults injected and not healed yet."""

    def setup(self, stack: Stack, ledger: Ledger, rng: random.Random) -> None:
        """Bind to a run."""
        self.stack, self.ledger, self.rng = stack, ledger, rng
        toxi = stack.infra.toxiproxy
        assert toxi is not None
        self.toxi = toxi

    def handles(self, fault: Fault) -> bool:
        """Link faults only."""
        return fault.action in LINK_ACTIONS

    def invoke(self, fault: Fault) -> ActiveFault:
        """Apply the fault to every matching link (or one, with pick=first/random)."""
        names = self.stack.link_names(fault.target)
        if not names:
            raise LookupError(f"no link matches {fault.target!r}")
        if fault.pick != "all":
            names = [self.rng.choice(names) if fault.pick == "random" else names[0]]
        t = time.time()
        for name in names:
            if fault.action == "link-down":
                self.toxi.set_enabled(name, False)
            else:
                kind, defaults = TOXICS[fault.action]
                self.toxi.add_toxic(name, f"nemesis-{fault.action}", kind, {**defaults, **fault.params})
        rid = self.ledger.fault_started(fault.action, ",".join(names), {"duration_s": fault.duration_s, **fault.params},
                                        t=t)
        active = ActiveFault(fault, names, rid, t + fault.duration_s)
        self.active.append(active)
        return active

    def heal(self, active: ActiveFault) -> None:
        """Re-enable the links or remove the toxic."""
        for name in active.targets:
            if active.fault.action == "link-down":
                self.toxi.set_enabled(name, True)
            else:
                self.toxi.remove_toxic(name, f"nemesis-{active.fault.action}")
        self.ledger.fault_ended(active.record_id)
        self.active.remove(active)

    def teardown(self) -> None:
        """Heal everything still active."""
        for active in list(self.active):
            self.heal(active)


class PartitionNemesis:
    """``link-down`` between two hosts at the network layer: the process's host drops the service's packets.

    Only for links the stack left direct because they cross hosts (``Stack.partitionable``): the
    process's connections see what they would across machines (no reset, no refusal: silence),
    and nothing else of either host is touched. On one machine it handles nothing.
    """

    def __init__(self) -> None:
        self.active: list[ActiveFault] = []
        """Faults injected and not healed yet."""

    def setup(self, stack: Stack, ledger: Ledger, rng: random.Random) -> None:
        """Bind to a run."""
        self.stack, self.ledger, self.rng = stack, ledger, rng

    def _links(self, fault: Fault) -> list[str]:
        return match_links(fault.target, list(self.stack.partitionable))

    def handles(self, fault: Fault) -> bool:
        """link-down on links between hosts (when the run has hosts), none of them proxied."""
        stack: Stack | None = getattr(self, "stack", None)
        if fault.action != "link-down" or stack is None or not isinstance(stack.infra.backend, HostsBackend):
            return False
        return bool(self._links(fault)) and not stack.link_names(fault.target)

    def _cut(self, names: list[str], on: bool) -> None:
        backend = self.stack.infra.backend
        assert isinstance(backend, HostsBackend)
        for name in names:
            process, address, port = self.stack.partitionable[name]
            backend.hosts.drop(backend.placed[process], address, port, insert=on)

    def invoke(self, fault: Fault) -> ActiveFault:
        """Drop the links' packets (every matching link, or one with pick=first/random)."""
        names = self._links(fault)
        if fault.pick != "all":
            names = [self.rng.choice(names) if fault.pick == "random" else names[0]]
        t = time.time()
        self._cut(names, True)
        rid = self.ledger.fault_started(fault.action, ",".join(names),
                                        {"duration_s": fault.duration_s, "layer": "network (partition between hosts)"},
                                        t=t)
        active = ActiveFault(fault, names, rid, t + fault.duration_s)
        self.active.append(active)
        return active

    def heal(self, active: ActiveFault) -> None:
        """Let the packets through again."""
        self._cut(active.targets, False)
        self.ledger.fault_ended(active.record_id)
        self.active.remove(active)

    def teardown(self) -> None:
        """Heal everything still active."""
        for active in list(self.active):
            self.heal(active)


class Nemeses:
    """Several nemeses as one: each fault goes to the first that handles it."""

    def __init__(self, *members: Nemesis) -> None:
        self.members = members or (PartitionNemesis(), ProcessNemesis(), LinkNemesis())
        """The nemeses, in dispatch order."""

    def _for(self, fault: Fault) -> Nemesis:
        for m in self.members:
            if m.handles(fault):
                return m
        raise ValueError(f"no nemesis handles {fault.action!r}")

    def _of(self, active: ActiveFault) -> Nemesis:
        return next(m for m in self.members if active in m.active)

    def setup(self, stack: Stack, ledger: Ledger, rng: random.Random) -> None:
        """Bind every member."""
        for m in self.members:
            m.setup(stack, ledger, rng)

    def invoke(self, fault: Fault) -> ActiveFault:
        """Inject through the right member."""
        return self._for(fault).invoke(fault)

    def heal(self, active: ActiveFault) -> None:
        """Heal through the member that injected it."""
        self._of(active).heal(active)

    def teardown(self) -> None:
        """Heal everything, every member."""
        for m in self.members:
            m.teardown()


def not_applicable(fault: Fault, spec: SystemSpec, outside: Mapping[str, str] | None = None) -> str | None:
    """Why fault has no meaning for a system (nothing it could hit), or None when it applies.

    ``outside`` names processes and links the system has but the harness does not own (an external
    engine and its database), each with the reason: a fault hitting only those is not applicable.
    """
    outside = outside or {}
    if fault.action in PROCESS_ACTIONS:
        hit = select(fault.target, planned_processes(spec))
        missing = f"{spec.name} has no {fault.target!r} process"
    else:
        hit = match_links(fault.target, planned_links(spec))
        missing = f"{spec.name} has no link {fault.target!r}"
    if not hit:
        return missing
    return outside[hit[0]] if all(name in outside for name in hit) else None
