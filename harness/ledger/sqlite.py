"""The embedded default ledger: one SQLite file in WAL mode per run directory.

Every write is its own transaction, so a record is in the WAL file once the call returns and
survives SIGKILL of the writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.ledger.base import LEDGER_FILE, Ledger, LedgerMissing, path_of, sqlite_url


class SqliteLedger(Ledger):
    """The embedded default: one SQLite file in WAL mode, in the run directory."""

    def __init__(self, url: str, *, create: bool = False, path: Path | None = None) -> None:
        super().__init__(url, path=path or path_of(url))
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(self.ddl())
        elif not self.path.exists():
            raise LedgerMissing(f"no ledger at {self.path}")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        # NORMAL in WAL mode: a commit is written to the WAL before the call returns, which is
        # what survives SIGKILL of this process; only an OS crash could drop the last commits.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=60000")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (one per thread and per forked process)."""
        conn: sqlite3.Connection = super().conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Group writes into one transaction."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @classmethod
    def create(cls, path: Path) -> SqliteLedger:
        """Create a new ledger file at path; an existing one is never reused (two runs would mix)."""
        if path.exists():
            raise FileExistsError(f"a ledger already exists at {path}: each run needs a fresh directory")
        return cls(sqlite_url(path), create=True)


class SqliteStore:
    """The default: each run's ledger is a SQLite file in its run directory."""

    def create(self, run_dir: Path, name: str) -> Ledger:
        """``run_dir/ledger.db``, which must not exist yet."""
        return SqliteLedger.create(run_dir / LEDGER_FILE)

    def describe(self, under: Path | None = None) -> dict[str, Any]:
        """The backend, and the file of each system's run."""
        return {"backend": "sqlite", "where": f"<system>/{LEDGER_FILE}",
                "settings": "WAL, synchronous=NORMAL, one transaction per record"}

    def secrets(self) -> list[str]:
        """None."""
        return []

    def close(self) -> None:
        """Nothing to stop."""
