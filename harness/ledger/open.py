"""Opening a ledger by URL: the URL picks the backend."""

from __future__ import annotations

from pathlib import Path

from harness.ledger.base import Ledger, is_postgres_url
from harness.ledger.sqlite import SqliteLedger


def open_ledger(url: str) -> Ledger:
    """The existing ledger at url (``sqlite:///...`` or ``postgresql://...``); LedgerMissing when there is none."""
    if is_postgres_url(url):
        from harness.ledger.postgres import PostgresLedger  # psycopg is imported only by its users

        return PostgresLedger(url)
    return SqliteLedger(url)


def create_ledger(path: Path) -> Ledger:
    """A new SQLite ledger file at path (never an existing one: two runs would mix)."""
    return SqliteLedger.create(path)
