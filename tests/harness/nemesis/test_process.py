"""The process nemesis against a real SQLite ledger and a real process writing to it as fast as it can.

A process stopped inside a ledger write would hold SQLite's one write lock for the whole pause: every
other writer (the clients, the nemesis recording its own heal) would wait, and the run would measure
our wiring. The nemesis takes that lock while the stop lands, so a paused process never holds it.
"""

from __future__ import annotations

import sqlite3
import sys
import textwrap
import time
from pathlib import Path

from harness.backends.local import LocalBackend, ManagedProcess
from harness.ledger.sqlite import SqliteLedger
from harness.model.env import ENV_LEDGER, ENV_PROCESS, ENV_SYSTEM
from harness.model.fault import Fault
from harness.model.paths import PROJECT_ROOT
from harness.nemesis.process import ProcessNemesis

WRITER = textwrap.dedent("""
    from harness.ledger import Recorder
    rec = Recorder.from_env()
    n = 0
    while True:
        n += 1
        rec.started(f"t{n}", 1)
""")
PAUSES = 40


class _Targets:
    """The one piece of a stack the process nemesis reads: which processes a fault's target names."""

    def __init__(self, proc: ManagedProcess) -> None:
        self.proc = proc

    def targets(self, pattern: str) -> list[ManagedProcess]:
        return [self.proc] if pattern == self.proc.name else []


def _written(path: Path) -> int:
    with sqlite3.connect(path, timeout=10) as conn:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


def test_a_paused_process_never_holds_the_ledgers_write_lock(tmp_path: Path) -> None:
    ledger = SqliteLedger.create(tmp_path / "ledger.db")
    writer = LocalBackend().process(
        name="writer", argv=[sys.executable, "-c", WRITER], log_path=tmp_path / "writer.log", cwd=PROJECT_ROOT,
        env={ENV_LEDGER: ledger.url, ENV_SYSTEM: "sut", ENV_PROCESS: "writer", "PYTHONPATH": str(PROJECT_ROOT)})
    nemesis = ProcessNemesis()
    nemesis.setup(_Targets(writer), ledger, None)  # type: ignore[arg-type]
    writer.start()
    try:
        while _written(ledger.path) < 200:  # it is writing in earnest
            time.sleep(0.05)
        locked = 0
        for _ in range(PAUSES):
            active = nemesis.invoke(Fault("pause", "writer", duration_s=0.1))
            try:
                with sqlite3.connect(ledger.path, timeout=0.5, isolation_level=None) as other:
                    other.execute("INSERT INTO meta(key, value) VALUES ('probe', '1') "
                                  "ON CONFLICT(key) DO UPDATE SET value = value + 1")
            except sqlite3.OperationalError as exc:
                assert "locked" in str(exc), exc
                locked += 1
            nemesis.heal(active)
            time.sleep(0.02)
        n = _written(ledger.path)
    finally:
        writer.kill()
    print(f"{PAUSES} pauses of a process writing {n} records: {locked} left the ledger locked")
    assert n > 1000, "the writer hardly wrote: the test would prove nothing"
    assert locked == 0
