"""The supervisor: restarts a server of a run that exited on its own, as systemd or Kubernetes would.

Production deployments run every process under a supervisor with a restart policy, so a process
that crashes comes back; without one, a crash would count as permanent loss, which no competent
deployment has. Each exit the nemesis did not cause is recorded in the run's fault history as a
``crash`` (with the exit status), from the moment it is noticed until the process is healthy
again, so the report shows it like any fault: the crash is a finding, the restart is the policy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from harness.backends.base import Proc
from harness.ledger import Ledger

RESTART_DELAY_S = 1.0
"""Wait before restarting (systemd's RestartSec)."""

_restarts: dict[int, threading.Thread] = {}
"""Restarts under way by process object, across supervisors: runs side by side share servers, and a shared one is
restarted once however many runs watch it."""
_restarts_lock = threading.Lock()


class Supervisor:
    """Watches the processes of one run; restarts those that exit while no fault holds them down."""

    def __init__(self, ledger: Ledger, processes: Callable[[], list[Proc]], progress: Callable[[str], None]) -> None:
        self.ledger = ledger
        """Where crashes are recorded."""
        self.processes = processes
        """The processes to watch (looked up each time)."""
        self.progress = progress
        """One-line progress callback."""
        self.crashes = 0
        """Exits noticed so far."""
        self._restarting: dict[str, threading.Thread] = {}

    def check(self, held: Iterable[str] = ()) -> None:
        """Restart (in the background) every watched process that is not running, except those in held
        (down on purpose: a fault is in progress) and those already being restarted."""
        held = set(held)
        for proc in self.processes():
            busy = self._restarting.get(proc.name)
            if proc.name in held or proc.incarnation == 0 or proc.alive() or (busy and busy.is_alive()):
                continue
            with _restarts_lock:
                other = _restarts.get(id(proc))
                if other is not None and other.is_alive():
                    continue  # a run beside this one is restarting it already
                self.crashes += 1
                code = proc.exit_code()
                record = self.ledger.fault_started("crash", proc.name, {"exit_code": code})
                self.progress(f"  {proc.name} exited on its own (status {code}): restarting it")
                thread = threading.Thread(target=self._restart, args=(proc, record), name=f"restart-{proc.name}",
                                          daemon=True)
                self._restarting[proc.name] = _restarts[id(proc)] = thread
                thread.start()

    def _restart(self, proc: Proc, record: int) -> None:
        time.sleep(RESTART_DELAY_S)
        try:
            proc.restart()
        except Exception as exc:  # noqa: BLE001 - a process that cannot come back stays down; the run shows it
            self.progress(f"  {proc.name} did not come back: {exc}")
        finally:
            self.ledger.fault_ended(record)

    def wait(self, timeout: float = 120.0) -> None:
        """Let restarts under way finish (before the stack goes down)."""
        deadline = time.monotonic() + timeout
        for thread in list(self._restarting.values()):
            thread.join(max(0.0, deadline - time.monotonic()))
