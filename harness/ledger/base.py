"""The ledger: ground truth of a run, kept outside every system under test.

It holds the client history (one row per request), the effect log (one row per attempt start,
attempt error, completed side effect and downstream call), stage timings, the fault history and
samples over time. Two backends share the schema, every query and the public API; the URL picks
one:

- ``sqlite:///ABS/PATH`` (the default): one SQLite database in WAL mode per run directory. Every
  write is its own transaction, so a record is in the WAL file once the call returns and survives
  SIGKILL of the writer.
- ``postgresql://USER@HOST:PORT/DB?options=-csearch_path%3DSCHEMA``: one fresh schema per run in a
  PostgreSQL server (:mod:`harness.ledger.postgres`), so writers on several machines share one history;
  when the run ends it is copied into the run directory's SQLite file, which reports read.

There is no unique constraint anywhere: a duplicate must stay visible.

Systems under test write through :class:`~harness.ledger.recorder.Recorder` (the public API);
the runner gets each run's fresh ledger from a :class:`~harness.ledger.store.LedgerStore`
(``--ledger``). This module holds the schema and every query, written once for both dialects.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Protocol

from harness.model.history import Event, EventType, FaultRecord, Op, Sample, Span

SCHEMA = """
CREATE TABLE IF NOT EXISTS ops (
    id {id},
    task_id TEXT NOT NULL,
    system TEXT NOT NULL,
    kind TEXT NOT NULL,
    phase TEXT NOT NULL,
    invoke_t {real} NOT NULL,
    complete_t {real} NOT NULL,
    outcome TEXT NOT NULL,
    status INTEGER,
    error TEXT,
    client TEXT
);
CREATE TABLE IF NOT EXISTS events (
    id {id},
    task_id TEXT NOT NULL,
    system TEXT NOT NULL,
    type TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    process TEXT NOT NULL,
    pid INTEGER NOT NULL,
    t {real} NOT NULL,
    detail TEXT
);
-- Both indexes serve the checker's per-task aggregation (task_rows): t makes the events one covering, and
-- ops_by_task saves sorting every request by id: a 1,000,000-task check (bench) takes 7.7 s instead of 8.6 s.
CREATE INDEX IF NOT EXISTS events_by_task ON events (task_id, type, t);
CREATE INDEX IF NOT EXISTS ops_by_task ON ops (task_id);
-- Stage timings (spans): where a task's time went (trigger queue and call, downstream client and server).
CREATE TABLE IF NOT EXISTS spans (
    id {id},
    task_id TEXT NOT NULL,
    system TEXT NOT NULL,
    name TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    process TEXT NOT NULL,
    pid INTEGER NOT NULL,
    t_start {real} NOT NULL,
    t_end {real} NOT NULL,
    detail TEXT
);
CREATE TABLE IF NOT EXISTS faults (
    id {id},
    t_start {real} NOT NULL,
    t_end {real},
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT
);
CREATE TABLE IF NOT EXISTS samples (
    t {real} NOT NULL,
    source TEXT NOT NULL,
    metric TEXT NOT NULL,
    value {real} NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
"""The tables, with the two types the dialects spell differently: ``{id}`` (row id) and ``{real}`` (a double)."""

COLUMNS: dict[str, tuple[str, ...]] = {
    "ops": ("task_id", "system", "kind", "phase", "invoke_t", "complete_t", "outcome", "status", "error", "client"),
    "events": ("task_id", "system", "type", "attempt", "process", "pid", "t", "detail"),
    "spans": ("task_id", "system", "name", "attempt", "process", "pid", "t_start", "t_end", "detail"),
    "faults": ("t_start", "t_end", "action", "target", "detail"),
    "samples": ("t", "source", "metric", "value"),
    "meta": ("key", "value"),
}
"""The columns a record fills in each table (the row id aside), in the order of its history tuple."""
WITH_ID = ("ops", "events", "spans", "faults")
"""Tables with a row id (copies keep it: ties in time order are broken by it)."""
LEDGER_FILE = "ledger.db"
"""A run's ledger file in its directory (for Postgres: the copy made when the run ends)."""



class LedgerMissing(FileNotFoundError):
    """The URL names no ledger (no file, or a schema without the ledger's tables)."""


class LedgerOptionError(ValueError):
    """A bad ``--ledger`` value or an unreachable server: one line for the user, exit status 2."""


def sqlite_url(path: Path) -> str:
    """The ledger URL of a SQLite file."""
    return f"sqlite:///{path.resolve()}"


def is_postgres_url(url: str) -> bool:
    """Whether url names a PostgreSQL server (``postgresql://`` or ``postgres://``)."""
    return url.startswith(("postgresql://", "postgres://"))


def path_of(url: str) -> Path:
    if not url.startswith("sqlite:///"):
        raise ValueError(f"unsupported ledger URL {url!r} (expected sqlite:///ABSOLUTE/PATH or postgresql://...)")
    return Path("/" + url[len("sqlite://") :].lstrip("/"))  # sqlite:////abs: one leading slash, not two


@cache
def insert_sql(table: str, columns: tuple[str, ...], param: str) -> str:
    """``INSERT INTO table(columns) VALUES (...)`` with the dialect's placeholders (``?``, ``%s``; ``$``: $1..$n)."""
    marks = [f"${i + 1}" for i in range(len(columns))] if param == "$" else [param] * len(columns)
    return f"INSERT INTO {table}({', '.join(columns)}) VALUES ({', '.join(marks)})"


class Cursor(Protocol):
    """What the shared queries need of a DB-API cursor (sqlite3's and psycopg's both fit)."""

    def fetchone(self) -> Any: ...
    def fetchall(self) -> Any: ...
    def fetchmany(self, size: int = ..., /) -> Any: ...
    def __iter__(self) -> Iterator[Any]: ...


class Ledger:
    """One run's ledger: writes from any process, reads for the checker and report.

    :func:`harness.ledger.open_ledger` opens one with the backend its URL names; every query below is
    written once, with ``?`` placeholders, in the SQL both dialects agree on. A backend supplies
    the connection, transactions, the schema's two types and how a fresh ledger is made.
    """

    PARAM: ClassVar[str] = "?"
    """The driver's placeholder."""
    TYPES: ClassVar[dict[str, str]] = {"id": "INTEGER PRIMARY KEY", "real": "REAL"}
    """The dialect's spelling of :data:`SCHEMA`'s ``{id}`` and ``{real}``."""

    def __init__(self, url: str, *, path: Path | None = None) -> None:
        self.url = url
        """Where the ledger lives: ``sqlite:///...`` or ``postgresql://...`` (which may hold a password)."""
        self._path = path
        self._local = threading.local()
        self._pid = os.getpid()

    @classmethod
    def ddl(cls) -> str:
        """The CREATE statements in this dialect."""
        return SCHEMA.format(**cls.TYPES)

    @property
    def path(self) -> Path:
        """The run's SQLite file: the ledger itself, or where a Postgres ledger is copied by :meth:`save`."""
        if self._path is None:
            raise LedgerMissing(f"ledger {self.describe()} was opened by URL: it has no file in a run directory")
        return self._path

    def describe(self) -> str:
        """Where the ledger lives, for people (never a password)."""
        return str(self._path)

    # ---- connections (one per thread and per forked process) ----------------------------

    def _connect(self) -> Any:
        raise NotImplementedError

    @property
    def conn(self) -> Any:
        """This thread's connection (one per thread and per forked process)."""
        if self._pid != os.getpid():
            # A forked child never uses its parent's connections (the backend decides how to let them go).
            self._local = threading.local()
            self._pid = os.getpid()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """Group writes into one transaction (yields the connection)."""
        raise NotImplementedError
        yield

    def save(self) -> Path:
        """Make the ledger readable from :attr:`path` once its server is gone (a SQLite ledger already is)."""
        return self.path

    # ---- the two primitives every read and write goes through ---------------------------------

    def query(self, sql: str, args: Sequence[Any] = ()) -> Cursor:
        """Run one statement (``?`` placeholders, the only ones) on this thread's connection; iterate for rows."""
        if self.PARAM != "?":  # psycopg's placeholders start with %: a literal one is doubled
            sql = sql.replace("%", "%%").replace("?", self.PARAM)
        cursor: Cursor = self.conn.execute(sql, args)
        return cursor

    def _append(self, table: str, row: Sequence[Any]) -> None:
        """Insert one record (the columns of :data:`COLUMNS`), committed when this returns."""
        self.conn.execute(insert_sql(table, COLUMNS[table], self.PARAM), row)

    def _append_many(self, table: str, rows: Iterable[Sequence[Any]], columns: tuple[str, ...] | None = None) -> None:
        with self.transaction() as conn:
            conn.cursor().executemany(insert_sql(table, columns or COLUMNS[table], self.PARAM), rows)

    # ---- writes -------------------------------------------------------------------------

    def record_op(self, op: Op) -> None:
        """Append one client request with its outcome."""
        self._append("ops", op)

    def record_ops(self, ops: list[Op]) -> None:
        """Append many client requests in one transaction (bulk import from a load generator)."""
        self._append_many("ops", ops)

    def record_event(self, ev: Event) -> None:
        """Append one effect-log record."""
        self._append("events", ev)

    def record_span(self, span: Span) -> None:
        """Append one stage timing."""
        self._append("spans", span)

    def fault_started(self, action: str, target: str, detail: Mapping[str, Any] | None = None,
                      t: float | None = None) -> int:
        """Record that a fault began; returns its id for :meth:`fault_ended`."""
        sql = insert_sql("faults", COLUMNS["faults"], "?") + " RETURNING id"
        # fetchall: SQLite commits a RETURNING statement only once every row was read.
        rows = self.query(sql, (time.time() if t is None else t, None, action, target,
                                json.dumps(detail or {}, sort_keys=True))).fetchall()
        return int(rows[0][0])

    def fault_ended(self, fault_id: int, t: float | None = None) -> None:
        """Record that a fault was healed (or its instantaneous action finished)."""
        self.query("UPDATE faults SET t_end=? WHERE id=?", (time.time() if t is None else t, fault_id))

    def record_sample(self, source: str, metric: str, value: float, t: float | None = None) -> None:
        """Append one measurement over time (RSS of a process, backlog, ...)."""
        self._append("samples", (time.time() if t is None else t, source, metric, value))

    def set_meta(self, key: str, value: Any) -> None:
        """Store one run-level fact (JSON-encoded)."""
        self.query("INSERT INTO meta(key, value) VALUES (?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                   (key, json.dumps(value)))

    # ---- reads --------------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        """All run-level facts."""
        return {k: json.loads(v) for k, v in self.query("SELECT key, value FROM meta")}

    def ops(self, phase: str | None = None) -> list[Op]:
        """The client history, in invoke order."""
        sql = f"SELECT {', '.join(COLUMNS['ops'])} FROM ops"
        rows = self.query(sql + (" WHERE phase=?" if phase else "") + " ORDER BY invoke_t, id",
                          (phase,) if phase else ())
        return [Op(*r) for r in rows]

    def events(self, type: EventType | None = None) -> list[Event]:
        """The effect log, in time order."""
        sql = f"SELECT {', '.join(COLUMNS['events'])} FROM events"
        rows = self.query(sql + (" WHERE type=?" if type else "") + " ORDER BY t, id", (type,) if type else ())
        return [Event(*r) for r in rows]

    def spans(self, name: str | None = None) -> list[Span]:
        """Stage timings (of one stage name), in start order."""
        sql = f"SELECT {', '.join(COLUMNS['spans'])} FROM spans"
        rows = self.query(sql + (" WHERE name=?" if name else "") + " ORDER BY t_start, id", (name,) if name else ())
        return [Span(*r) for r in rows]

    def faults(self) -> list[FaultRecord]:
        """The fault history, in start order."""
        rows = self.query("SELECT t_start, t_end, action, target, detail FROM faults ORDER BY t_start, id")
        return [FaultRecord(r[0], r[1], r[2], r[3], json.loads(r[4] or "{}")) for r in rows]

    def samples(self, metric: str | None = None) -> list[Sample]:
        """Measurements over time."""
        sql = "SELECT t, source, metric, value FROM samples"
        where = (" WHERE metric=?", (metric,)) if metric else ("", ())
        return [Sample(*r) for r in self.query(sql + where[0] + " ORDER BY t", where[1])]

    def _count(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        return int(self.query(sql, args).fetchone()[0])

    def count_ops(self, phase: str = "measure", prefix: str = "") -> int:
        """How many requests of a phase (with task ids starting with prefix) the client history holds."""
        return self._count("SELECT count(*) FROM ops WHERE phase=? AND substr(task_id, 1, ?)=?",
                           (phase, len(prefix), prefix))

    def count_accepted(self, phase: str = "measure") -> int:
        """How many requests of a phase were accepted so far (for schedules)."""
        return self._count("SELECT count(*) FROM ops WHERE outcome='ok' AND phase=?", (phase,))

    def count_in_flight(self) -> int:
        """How many attempts started and have neither an effect nor an error yet."""
        return self._count(
            "SELECT count(*) FROM (SELECT 1 FROM events WHERE type IN ('start','effect','error')"
            " GROUP BY task_id, attempt, process, pid"
            " HAVING count(*) FILTER (WHERE type='start') > count(*) FILTER (WHERE type IN ('effect','error'))) AS a"
        )

    def missing_effects(self, phase: str = "measure") -> int:
        """Accepted tasks of a phase with no effect yet (the drain waits for this to reach 0)."""
        return self._count(
            "SELECT count(*) FROM ops o WHERE o.outcome='ok' AND o.phase=?"
            " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.task_id=o.task_id AND e.type='effect')",
            (phase,),
        )

    def unsettled(self, attempts: int, phase: str = "measure") -> int:
        """Accepted tasks of a phase still unsettled: no effect, and not yet ``attempts`` attempts that all ended in
        an error (the system's retries exhausted: it has given up). ``attempts`` 0: only an effect settles a task."""
        if attempts <= 0:
            return self.missing_effects(phase)
        return self._count(
            "SELECT count(*) FROM ops o WHERE o.outcome='ok' AND o.phase=?"
            " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.task_id=o.task_id AND e.type='effect')"
            " AND NOT EXISTS (SELECT 1 FROM (SELECT sum(CASE WHEN e.type='start' THEN 1 ELSE 0 END) AS s,"
            " sum(CASE WHEN e.type='error' THEN 1 ELSE 0 END) AS f FROM events e WHERE e.task_id=o.task_id) x"
            " WHERE x.s >= ? AND x.f = x.s)",
            (phase, attempts),
        )

    def last_activity(self) -> float | None:
        """Time of the newest effect-log record (the drain's quiet timer)."""
        row = self.query("SELECT max(t) FROM events").fetchone()
        return None if row[0] is None else float(row[0])


