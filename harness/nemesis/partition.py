"""Network partitions between the hosts of a run (``--hosts N``): a host drops a service's packets."""

from __future__ import annotations

import random
import time

from harness.backends.hosts import HostsBackend
from harness.ledger import Ledger
from harness.model.fault import Fault
from harness.model.links import match_links
from harness.nemesis.base import ActiveFault
from harness.runtime.stack import Stack


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
