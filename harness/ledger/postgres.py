"""The Postgres ledger: the SQLite ledger's schema, queries and API, in a PostgreSQL server.

Writers on several machines (Locust processes, apps, the downstream service) then share one
history. Each scenario and system gets a fresh schema, ``ledger_<run-id>_<scenario>_<system>``,
created once and never reused (``CREATE SCHEMA`` fails if it exists); its URL names it in libpq's
``options=-csearch_path=...``, so the same URL works in ``psql``. When the run ends the runner
copies it into the run directory's ``ledger.db`` (SQLite, same schema, row ids kept): reports
read that file, so they can be rebuilt after the server is gone.

Durability. Every write is one autocommitted statement: the call returns once the server has
committed it. Connections set ``synchronous_commit=off`` (a per-session setting, so it holds on
any server): the commit returns once its WAL record is in the server's memory, before it is
flushed to disk. A committed transaction belongs to the server, so SIGKILL of the writer (what
the harness does to systems, and what the 300-kill test does to writers) cannot undo a write
whose call returned. What ``off`` gives up is the last ~0.6 s (3 x ``wal_writer_delay``) of
commits if the *server* or the machine crashes; the ledger's server is outside every system and
its faults, so no scenario kills it (SQLite's ``synchronous=NORMAL`` makes the same trade for an
OS crash). With ``on`` every commit would wait for a WAL flush to disk: a few hundred writes a
second per writer here instead of thousands. Nothing is ever retried: a retry after a lost
answer could write a record twice.

Speed. Single records (events, spans, samples, ops) go through INSERTs prepared once per
connection and sent with libpq's text protocol (psycopg's ``pgconn.exec_prepared``): 1.5 to 2.5
times the rate of psycopg's general ``execute`` path, measured here; reads and batches use the
general path. The connection is TCP to the URL's host, as from another machine.

Forks. A forked child must never close its parent's connections (closing sends the server a
Terminate on the shared socket and ends the parent's session): at fork, every open connection
of this process is kept alive in the child, its socket replaced by /dev/null, then let go.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, cast
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors, pq, sql

from harness.ledger.base import COLUMNS, LEDGER_FILE, WITH_ID, Ledger, LedgerMissing, LedgerOptionError, insert_sql
from harness.ledger.sqlite import SqliteLedger

CONNECT_TIMEOUT_S = 10
"""Longest wait for a connection (an unreachable server fails within it)."""
CHECK_TIMEOUT_S = 5
"""Longest wait when ``--ledger`` is checked before a run."""
PREPARED = ("ops", "events", "spans", "samples")
"""Tables whose single-record inserts are prepared on every connection."""
EMBEDDED_DB = "ledger"
"""The database the harness's own ledger server holds the schemas in."""
SCHEMA_PREFIX = "ledger_"
"""Every run's schema name starts with it."""


# ---- URLs ---------------------------------------------------------------------------------


def _query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def with_schema(url: str, schema: str) -> str:
    """url with ``search_path`` set to schema (added to any ``options`` it already has)."""
    parts = urlsplit(url)
    query = _query(url)
    options = " ".join([*(v for k, v in query if k == "options"), f"-c search_path={schema}"])
    rest = [(k, v) for k, v in query if k != "options"]
    return urlunsplit(parts._replace(query=urlencode([*rest, ("options", options)], quote_via=quote)))


def schema_of(url: str) -> str | None:
    """The schema a ledger URL names (the last ``search_path`` in its options), if any."""
    found = [m for k, v in _query(url) if k == "options" for m in re.findall(r"search_path=([^\s,]+)", v)]
    return found[-1] if found else None


def password_of(url: str) -> str | None:
    """The password in url (user:password@, or a ``password`` parameter), if any."""
    parts = urlsplit(url)
    return parts.password or next((v for k, v in _query(url) if k == "password"), None)


def redact(url: str) -> str:
    """url without its password and options: what a manifest or a message may show."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    query = [(k, v) for k, v in _query(url) if k not in ("password", "options")]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query)))


def schema_name(name: str) -> str:
    """A schema name for one run: ``ledger_`` and name in lower-case letters, digits and ``_``, at most 63 bytes."""
    base = SCHEMA_PREFIX + re.sub(r"[^a-z0-9_]", "_", name.lower())
    if len(base) <= 63:
        return base
    return base[:54] + "_" + hashlib.sha256(name.encode()).hexdigest()[:8]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_server(url: str) -> None:
    """Raise :class:`LedgerOptionError` unless the server answers and lets us create a schema."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=CHECK_TIMEOUT_S) as conn, \
                conn.transaction(force_rollback=True):
            conn.execute("CREATE SCHEMA harness_ledger_probe")
    except (psycopg.Error, ValueError) as exc:
        raise LedgerOptionError(f"--ledger {redact(url)}: cannot use it ({_first_line(exc)})") from None


# ---- forks --------------------------------------------------------------------------------

_OPEN: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()
_HELD: list[psycopg.Connection[Any]] = []
_LOCK = threading.Lock()  # held across a fork: no thread adds a connection while they are counted


def _hold() -> None:
    # Strong references across the fork: the child frees other threads' locals (and their connections)
    # before its after-fork hooks run.
    _LOCK.acquire()
    _HELD[:] = list(_OPEN)


def _release_in_parent() -> None:
    _HELD.clear()
    _LOCK.release()


def _let_go_in_child() -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        for conn in _HELD:
            try:
                os.dup2(devnull, conn.pgconn.socket)  # the Terminate that finish() sends goes nowhere
                conn.pgconn.finish()
            except (psycopg.Error, OSError):
                pass
    finally:
        os.close(devnull)
        _HELD.clear()
        _OPEN.clear()
        _LOCK.release()


os.register_at_fork(before=_hold, after_in_parent=_release_in_parent, after_in_child=_let_go_in_child)


# ---- the ledger ---------------------------------------------------------------------------


def _text(value: Any) -> bytes | None:
    """A parameter in PostgreSQL's text format (repr keeps a float exact)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode()
    return (repr(value) if isinstance(value, float) else str(value)).encode()


class PostgresLedger(Ledger):
    """A run's ledger in one schema of a PostgreSQL server (the URL's ``search_path``)."""

    PARAM: ClassVar[str] = "%s"
    TYPES: ClassVar[dict[str, str]] = {"id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
                                       "real": "DOUBLE PRECISION"}

    def __init__(self, url: str, *, create: bool = False, path: Path | None = None) -> None:
        super().__init__(url, path=path)
        self.schema = schema_of(url)
        """The schema holding this ledger (None: the server's default search path)."""
        if create:
            self._create()
        self.conn  # noqa: B018  connect now: an unreachable server or a missing ledger fails here, not at a write

    @classmethod
    def create_in(cls, server_url: str, schema: str, path: Path) -> PostgresLedger:
        """A new ledger in a new schema of server_url, to be saved to path (which must not exist)."""
        if path.exists():
            raise FileExistsError(f"a ledger already exists at {path}: each run needs a fresh directory")
        return cls(with_schema(server_url, schema), create=True, path=path)

    def describe(self) -> str:
        """Server and schema (never a password)."""
        return f"{redact(self.url)} schema {self.schema}"

    def _create(self) -> None:
        if self.schema is None:
            raise ValueError(f"{redact(self.url)}: a new ledger needs its schema in the URL"
                             " (options=-csearch_path=...)")
        with psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn, \
                conn.transaction():
            try:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
            except errors.DuplicateSchema:
                raise FileExistsError(f"a ledger already exists in {self.describe()}: each run needs a fresh one"
                                      ) from None
            conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(self.schema)))
            conn.execute(self.ddl().encode())

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                               application_name="harness-ledger")
        try:
            conn.execute("SET synchronous_commit TO off")  # why it keeps the guarantee: the module's docstring
            for table in PREPARED:
                res = conn.pgconn.prepare(table.encode(), insert_sql(table, COLUMNS[table], "$").encode())
                if res.status != pq.ExecStatus.COMMAND_OK:
                    error = errors.error_from_result(res)
                    if isinstance(error, errors.UndefinedTable):
                        raise LedgerMissing(f"no ledger in {self.describe()}")
                    raise error
        except BaseException:
            conn.close()
            raise
        with _LOCK:
            _OPEN.add(conn)
        return conn

    @property
    def conn(self) -> psycopg.Connection[Any]:
        """This thread's connection (one per thread and per forked process; autocommit)."""
        conn: psycopg.Connection[Any] = super().conn
        return conn

    def _append(self, table: str, row: Any) -> None:
        # libpq takes None as NULL (psycopg's own calls pass it); its stub says bytes only.
        res = self.conn.pgconn.exec_prepared(table.encode(), cast("list[bytes]", [_text(v) for v in row]))
        if res.status != pq.ExecStatus.COMMAND_OK:
            raise errors.error_from_result(res)

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """Group writes into one transaction."""
        conn = self.conn
        with conn.transaction():
            yield conn

    def save(self, batch: int = 10_000) -> Path:
        """Copy every table into a new SQLite ledger at :attr:`path` (row ids kept); returns the path."""
        out = SqliteLedger.create(self.path)
        try:
            with self.transaction() as src, out.transaction() as dst:
                for table, columns in COLUMNS.items():
                    cols = ("id", *columns) if table in WITH_ID else columns
                    order = " ORDER BY id" if table in WITH_ID else ""
                    with src.cursor(name=f"save_{table}") as cur:  # server-side: bounded memory
                        cur.execute(f"SELECT {', '.join(cols)} FROM {table}{order}")
                        while rows := cur.fetchmany(batch):
                            dst.executemany(insert_sql(table, cols, "?"), rows)
        finally:
            out.close()
        return self.path


# ---- where a session's Postgres ledgers live ----------------------------------------------


class PostgresStore:
    """Ledgers as fresh schemas of a PostgreSQL server given by URL (``--ledger postgresql://...``).

    Schemas stay on that server after the run (each is copied into its run directory): drop them
    with ``DROP SCHEMA ledger_... CASCADE`` when they are no longer wanted.
    """

    origin = "given by --ledger"
    """Who runs the server, for the manifest."""

    def __init__(self, url: str) -> None:
        check_server(url)
        self.url = url
        """The server's URL (may hold a password: never written anywhere)."""
        self.created: dict[Path, str] = {}
        """Schema of each run directory, so far."""

    def create(self, run_dir: Path, name: str) -> PostgresLedger:
        """A new schema for one system's run; copied to ``run_dir/ledger.db`` by its ``save``."""
        ledger = PostgresLedger.create_in(self.url, schema_name(name), run_dir / LEDGER_FILE)
        assert ledger.schema is not None
        self.created[run_dir.resolve()] = ledger.schema
        return ledger

    def describe(self, under: Path | None = None) -> dict[str, Any]:
        """The backend, the server (no password), and the schema of each system's run under a directory."""
        root = under.resolve() if under else None
        return {"backend": "postgres", "where": redact(self.url), "server": self.origin,
                "schemas": {d.name: s for d, s in self.created.items() if root is None or d.parent == root},
                "copy": f"<system>/{LEDGER_FILE}",
                "settings": "one autocommitted statement per record, synchronous_commit=off per connection"}

    def secrets(self) -> list[str]:
        """The URL's password, if it has one."""
        password = password_of(self.url)
        return [password] if password else []

    def close(self) -> None:
        """Nothing to stop: the server is not ours."""
