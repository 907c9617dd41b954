"""Link faults through Toxiproxy: cut, slow, time out, reset or throttle a link."""

from __future__ import annotations

import random
import time

from harness.ledger import Ledger
from harness.model.fault import LINK_ACTIONS, TOXICS, Fault
from harness.nemesis.base import ActiveFault
from harness.runtime.stack import Stack


class LinkNemesis:
    """Cut or degrade Toxiproxy links: link-down, latency, timeout, reset-peer, bandwidth."""

    def __init__(self) -> None:
        self.active: list[ActiveFault] = []
        """Faults injected and not healed yet."""

    def setup(self, stack: Stack, ledger: Ledger, rng: random.Random) -> None:
        """Bind to a run."""
        self.stack, self.ledger, self.rng = stack, ledger, rng
        self.toxi = stack.infra.ensure_toxiproxy()

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
        links = self.stack.proxied()
        for name in names:
            if fault.action == "link-down":
                self.toxi.set_enabled(links[name].proxy, False)
            else:
                kind, defaults = TOXICS[fault.action]
                self.toxi.add_toxic(links[name].proxy, f"nemesis-{fault.action}", kind, {**defaults, **fault.params})
        rid = self.ledger.fault_started(fault.action, ",".join(names), {"duration_s": fault.duration_s, **fault.params},
                                        t=t)
        active = ActiveFault(fault, names, rid, t + fault.duration_s)
        self.active.append(active)
        return active

    def heal(self, active: ActiveFault) -> None:
        """Re-enable the links or remove the toxic."""
        links = self.stack.proxied()
        for name in active.targets:
            if active.fault.action == "link-down":
                self.toxi.set_enabled(links[name].proxy, True)
            else:
                self.toxi.remove_toxic(links[name].proxy, f"nemesis-{active.fault.action}")
        self.ledger.fault_ended(active.record_id)
        self.active.remove(active)

    def teardown(self) -> None:
        """Heal everything still active."""
        for active in list(self.active):
            self.heal(active)
