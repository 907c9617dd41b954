"""The nemesis: fault injectors with Jepsen's small interface (setup, invoke, heal, teardown).

Each fault (:mod:`harness.model.fault`) goes to the first nemesis that handles it: network
partitions between hosts (:mod:`~harness.nemesis.partition`), process signals
(:mod:`~harness.nemesis.process`), Toxiproxy link faults (:mod:`~harness.nemesis.link`). Every
injection and heal is written to the ledger's fault history, the same history the client
operations are in.
"""

from __future__ import annotations

import random

from harness.ledger import Ledger
from harness.model.fault import Fault
from harness.nemesis.base import ActiveFault, Nemesis
from harness.nemesis.link import LinkNemesis
from harness.nemesis.partition import PartitionNemesis
from harness.nemesis.process import ProcessNemesis
from harness.runtime.stack import Stack

__all__ = ["ActiveFault", "LinkNemesis", "Nemeses", "Nemesis", "PartitionNemesis", "ProcessNemesis"]


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
