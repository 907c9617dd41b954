"""Process faults: SIGKILL, SIGTERM (the process's own graceful path) and SIGSTOP/SIGCONT on process groups."""

from __future__ import annotations

import random
import signal
import time

from harness.backends.base import Proc, stop_all
from harness.ledger import Ledger
from harness.model.fault import PROCESS_ACTIONS, Fault
from harness.nemesis.base import ActiveFault
from harness.runtime.stack import Stack


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
        # Signalled inside a ledger transaction: a SQLite ledger's one write lock is ours while the stop lands, so
        # no process is stopped inside a ledger write, holding every other writer off (the clients, and this
        # thread's own heal: a deadlock) until it resumes. A Postgres ledger has no such lock to hold.
        with self.ledger.transaction():
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
