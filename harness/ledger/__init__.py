"""The ledger: ground truth of a run, kept outside every system under test.

- :mod:`~harness.ledger.base`: the schema and every query, once for both dialects;
- :mod:`~harness.ledger.sqlite` (the default, one WAL file per run) and :mod:`~harness.ledger.postgres`
  (a schema per run on a server, for writers on several machines);
- :mod:`~harness.ledger.recorder`: what apps import to record attempts and effects;
- :mod:`~harness.ledger.rows`: one row per task, for the checker; :mod:`~harness.ledger.store`: ``--ledger``.
"""

from harness.ledger.base import LEDGER_FILE, Ledger, LedgerMissing, LedgerOptionError, is_postgres_url, sqlite_url
from harness.ledger.open import create_ledger, open_ledger
from harness.ledger.recorder import Recorder
from harness.ledger.rows import TaskRow, task_rows
from harness.ledger.sqlite import SqliteLedger, SqliteStore
from harness.ledger.store import LEDGER_OPTIONS, LedgerStore, check_option
from harness.model.env import ENV_LEDGER, ENV_PROCESS, ENV_SYSTEM

__all__ = ["ENV_LEDGER", "ENV_PROCESS", "ENV_SYSTEM", "LEDGER_FILE", "LEDGER_OPTIONS", "Ledger", "LedgerMissing",
           "LedgerOptionError", "LedgerStore", "Recorder", "SqliteLedger", "SqliteStore", "TaskRow", "check_option",
           "create_ledger", "is_postgres_url", "open_ledger", "sqlite_url", "task_rows"]
