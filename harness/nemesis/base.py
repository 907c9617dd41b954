"""What every nemesis is: Jepsen's small interface (setup, invoke, heal, teardown), and a fault in progress."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

from harness.ledger import Ledger
from harness.model.fault import Fault
from harness.runtime.stack import Stack


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
