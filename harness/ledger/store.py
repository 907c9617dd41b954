"""Where a session's ledgers live (``--ledger``): the store protocol and the option's check."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from harness.ledger.base import Ledger, LedgerOptionError, is_postgres_url


class LedgerStore(Protocol):
    """Where a session's ledgers live: one fresh ledger per scenario and system, never reused."""

    def create(self, run_dir: Path, name: str) -> Ledger:
        """A new, empty ledger for one system's run in run_dir (name: unique in the session)."""
        ...

    def describe(self, under: Path | None = None) -> dict[str, Any]:
        """``manifest.ledger`` of results.json: the backend and where (of the runs under a directory); no password."""
        ...

    def secrets(self) -> list[str]:
        """Strings that must never reach a run directory (a password in the URL)."""
        ...

    def close(self) -> None:
        """Stop what the store started."""
        ...


LEDGER_OPTIONS = "sqlite, pg (the harness's own PostgreSQL) or postgresql://USER@HOST:PORT/DB"
"""What ``--ledger`` accepts."""


def check_option(option: str) -> str:
    """Validate a ``--ledger`` value before anything starts (a URL's server must answer); returns it.

    Raises :class:`LedgerOptionError` with one line for the user.
    """
    if option in ("sqlite", "pg"):
        return option
    if not is_postgres_url(option):
        raise LedgerOptionError(f"--ledger {option!r}: expected {LEDGER_OPTIONS}")
    from harness.ledger.postgres import check_server  # psycopg is imported only by its users

    check_server(option)
    return option
