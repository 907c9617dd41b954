"""The ledger: ground truth of a run, kept outside every system under test.

It holds the client history (one row per request), the effect log (one row per attempt start,
attempt error, completed side effect and downstream call), the fault history and samples over
time. The embedded default is one SQLite database in WAL mode per run directory: every write is
its own transaction, so a record is in the WAL file once the call returns and survives SIGKILL
of the writer. There is no unique constraint anywhere: a duplicate must stay visible.

Systems under test write through :class:`Recorder` (the public API, see ``Recorder.from_env``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from harness.history import Event, EventType, FaultRecord, Op, Sample, Span

SCHEMA = """
CREATE TABLE IF NOT EXISTS ops (
    id INTEGER PRIMARY KEY,
    task_id TEXT NOT NULL,
    system TEXT NOT NULL,
    kind TEXT NOT NULL,
    phase TEXT NOT NULL,
    invoke_t REAL NOT NULL,
    complete_t REAL NOT NULL,
    outcome TEXT NOT NULL,
    status INTEGER,
    error TEXT,
    client TEXT
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    task_id TEXT NOT NULL,
    system TEXT NOT NULL,
    type TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    process TEXT NOT NULL,
    pid INTEGER NOT NULL,
    t REAL NOT NULL,
    detail TEXT
);
-- Both indexes serve the checker's per-task aggregation (task_rows): t makes the events one covering, and
-- ops_by_task saves sorting every request by id: a 1,000,000-task check (bench) takes 7.7 s instead of 8.6 s.
CREATE INDEX IF NOT EXISTS events_by_task ON events (task_id, type, t);
CREATE INDEX IF NOT EXISTS ops_by_task ON ops (task_id);
-- Stage timings (spans): where a task's time went (trigger queue and call, downstream client and server).
CREATE TABLE IF NOT EXISTS spans (
    id INTEGER PRIMARY KEY,
    task_id TEXT NOT NULL,
    system TEXT NOT NULL,
    name TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    process TEXT NOT NULL,
    pid INTEGER NOT NULL,
    t_start REAL NOT NULL,
    t_end REAL NOT NULL,
    detail TEXT
);
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY,
    t_start REAL NOT NULL,
    t_end REAL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT
);
CREATE TABLE IF NOT EXISTS samples (
    t REAL NOT NULL,
    source TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

ENV_LEDGER = "HARNESS_LEDGER"
"""Environment variable holding the ledger URL (``sqlite:///abs/path/ledger.db``)."""
ENV_SYSTEM = "HARNESS_SYSTEM"
"""Environment variable naming the system under test (``native``, ``hatchet``, ...)."""
ENV_PROCESS = "HARNESS_PROCESS"
"""Environment variable naming the process within its stack (``api``, ``worker-1``, ...)."""


def sqlite_url(path: Path) -> str:
    """The ledger URL of a SQLite file."""
    return f"sqlite:///{path.resolve()}"


def _path_of(url: str) -> Path:
    if not url.startswith("sqlite:///"):
        raise ValueError(f"unsupported ledger URL {url!r} (expected sqlite:///ABSOLUTE/PATH)")
    return Path("/" + url[len("sqlite://") :].lstrip("/"))  # sqlite:////abs: one leading slash, not two


class Ledger:
    """One run's ledger database: writes from any process, reads for the checker and report."""

    def __init__(self, url: str, *, create: bool = False) -> None:
        self.url = url
        """Where the ledger lives (``sqlite:///...``)."""
        self.path = _path_of(url)
        """The SQLite file."""
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(SCHEMA)
        elif not self.path.exists():
            raise FileNotFoundError(f"no ledger at {self.path}")
        self._local = threading.local()
        self._pid = os.getpid()

    @classmethod
    def create(cls, path: Path) -> Ledger:
        """Create a new ledger file at path; an existing one is never reused (two runs would mix)."""
        if path.exists():
            raise FileExistsError(f"a ledger already exists at {path}: each run needs a fresh directory")
        return cls(sqlite_url(path), create=True)

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
        if self._pid != os.getpid():
            self._local = threading.local()
            self._pid = os.getpid()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
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

    # ---- writes -------------------------------------------------------------------------

    def record_op(self, op: Op) -> None:
        """Append one client request with its outcome."""
        self.conn.execute(
            "INSERT INTO ops(task_id, system, kind, phase, invoke_t, complete_t, outcome, status, error, client)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (op.task_id, op.system, op.kind, op.phase, op.invoke_t, op.complete_t, op.outcome, op.status,
             op.error, op.client),
        )

    def record_ops(self, ops: list[Op]) -> None:
        """Append many client requests in one transaction (bulk import from a load generator)."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO ops(task_id, system, kind, phase, invoke_t, complete_t, outcome, status, error, client)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(o.task_id, o.system, o.kind, o.phase, o.invoke_t, o.complete_t, o.outcome, o.status, o.error,
                  o.client) for o in ops],
            )

    def record_event(self, ev: Event) -> None:
        """Append one effect-log record."""
        self.conn.execute(
            "INSERT INTO events(task_id, system, type, attempt, process, pid, t, detail) VALUES (?,?,?,?,?,?,?,?)",
            (ev.task_id, ev.system, ev.type, ev.attempt, ev.process, ev.pid, ev.t, ev.detail),
        )

    def record_span(self, span: Span) -> None:
        """Append one stage timing."""
        self.conn.execute(
            "INSERT INTO spans(task_id, system, name, attempt, process, pid, t_start, t_end, detail)"
            " VALUES (?,?,?,?,?,?,?,?,?)", tuple(span),
        )

    def fault_started(self, action: str, target: str, detail: Mapping[str, Any] | None = None,
                      t: float | None = None) -> int:
        """Record that a fault began; returns its id for :meth:`fault_ended`."""
        cur = self.conn.execute(
            "INSERT INTO faults(t_start, action, target, detail) VALUES (?,?,?,?)",
            (time.time() if t is None else t, action, target, json.dumps(detail or {}, sort_keys=True)),
        )
        assert cur.lastrowid is not None
        return int(cur.lastrowid)

    def fault_ended(self, fault_id: int, t: float | None = None) -> None:
        """Record that a fault was healed (or its instantaneous action finished)."""
        self.conn.execute("UPDATE faults SET t_end=? WHERE id=?", (time.time() if t is None else t, fault_id))

    def record_sample(self, source: str, metric: str, value: float, t: float | None = None) -> None:
        """Append one measurement over time (RSS of a process, backlog, ...)."""
        self.conn.execute(
            "INSERT INTO samples(t, source, metric, value) VALUES (?,?,?,?)",
            (time.time() if t is None else t, source, metric, value),
        )

    def set_meta(self, key: str, value: Any) -> None:
        """Store one run-level fact (JSON-encoded)."""
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?,?)", (key, json.dumps(value)))

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

    # ---- reads --------------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        """All run-level facts."""
        return {k: json.loads(v) for k, v in self.conn.execute("SELECT key, value FROM meta")}

    def ops(self, phase: str | None = None) -> list[Op]:
        """The client history, in invoke order."""
        sql = "SELECT task_id, system, kind, phase, invoke_t, complete_t, outcome, status, error, client FROM ops"
        rows = self.conn.execute(sql + (" WHERE phase=?" if phase else "") + " ORDER BY invoke_t, id",
                                 (phase,) if phase else ())
        return [Op(*r) for r in rows]

    def events(self, type: EventType | None = None) -> list[Event]:
        """The effect log, in time order."""
        sql = "SELECT task_id, system, type, attempt, process, pid, t, detail FROM events"
        rows = self.conn.execute(sql + (" WHERE type=?" if type else "") + " ORDER BY t, id",
                                 (type,) if type else ())
        return [Event(*r) for r in rows]

    def spans(self, name: str | None = None) -> list[Span]:
        """Stage timings (of one stage name), in start order."""
        sql = "SELECT task_id, system, name, attempt, process, pid, t_start, t_end, detail FROM spans"
        rows = self.conn.execute(sql + (" WHERE name=?" if name else "") + " ORDER BY t_start, id",
                                 (name,) if name else ())
        return [Span(*r) for r in rows]

    def faults(self) -> list[FaultRecord]:
        """The fault history, in start order."""
        rows = self.conn.execute("SELECT t_start, t_end, action, target, detail FROM faults ORDER BY t_start, id")
        return [FaultRecord(r[0], r[1], r[2], r[3], json.loads(r[4] or "{}")) for r in rows]

    def samples(self, metric: str | None = None) -> list[Sample]:
        """Measurements over time."""
        sql = "SELECT t, source, metric, value FROM samples"
        where = (" WHERE metric=?", (metric,)) if metric else ("", ())
        return [Sample(*r) for r in self.conn.execute(sql + where[0] + " ORDER BY t", where[1])]

    def _count(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        return int(self.conn.execute(sql, args).fetchone()[0])

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
            " GROUP BY task_id, attempt, process, pid HAVING sum(type='start') > sum(type IN ('effect','error')))"
        )

    def missing_effects(self, phase: str = "measure") -> int:
        """Accepted tasks of a phase with no effect yet (the drain waits for this to reach 0)."""
        return self._count(
            "SELECT count(*) FROM ops o WHERE o.outcome='ok' AND o.phase=?"
            " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.task_id=o.task_id AND e.type='effect')",
            (phase,),
        )

    def last_activity(self) -> float | None:
        """Time of the newest effect-log record (the drain's quiet timer)."""
        row = self.conn.execute("SELECT max(t) FROM events").fetchone()
        return None if row[0] is None else float(row[0])


class Recorder:
    """What a system under test calls to record attempts and effects: the public ledger API.

    Use one per process::

        rec = Recorder.from_env()          # HARNESS_LEDGER, HARNESS_SYSTEM, HARNESS_PROCESS
        rec.started(task_id, attempt)      # first thing an attempt does
        ...do the work...
        rec.effect(task_id, attempt)       # the side effect happened
        # or, if the attempt raised:
        rec.failed(task_id, attempt, repr(exc))
        rec.span(task_id, "trigger.call", t0, t1)   # optional: where a stage's time went

    Each call is one durable write; none of them raises on a duplicate.
    """

    def __init__(self, ledger: Ledger, system: str, process: str) -> None:
        self.ledger = ledger
        """Where records go."""
        self.system = system
        """Name of the system under test."""
        self.process = process
        """Name of this process within its stack."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Recorder:
        """Build from the environment the harness gives every process of a stack."""
        env = os.environ if env is None else env
        missing = [k for k in (ENV_LEDGER, ENV_SYSTEM, ENV_PROCESS) if not env.get(k)]
        if missing:
            raise RuntimeError(f"not started by the harness: {', '.join(missing)} unset")
        return cls(Ledger(env[ENV_LEDGER]), env[ENV_SYSTEM], env[ENV_PROCESS])

    def _write(self, task_id: str, type: EventType, attempt: int, detail: str | None) -> None:
        ev = Event(task_id, self.system, type, attempt, self.process, os.getpid(), time.time(), detail)
        self.ledger.record_event(ev)

    def started(self, task_id: str, attempt: int) -> None:
        """An execution attempt of task_id began."""
        self._write(task_id, "start", attempt, None)

    def effect(self, task_id: str, attempt: int, detail: str | None = None) -> None:
        """The task's side effect was performed by this attempt."""
        self._write(task_id, "effect", attempt, detail)

    def failed(self, task_id: str, attempt: int, error: str) -> None:
        """The attempt raised; the system may retry it."""
        self._write(task_id, "error", attempt, error[:500])

    def call(self, task_id: str, attempt: int, detail: str | None = None) -> None:
        """A downstream service received a call for task_id (recorded by that service)."""
        self._write(task_id, "call", attempt, detail)

    def span(self, task_id: str, name: str, t_start: float, t_end: float, attempt: int = 0,
             detail: str | None = None) -> None:
        """One stage of task_id took from t_start to t_end (epoch seconds) in this process."""
        self.ledger.record_span(Span(task_id, self.system, name, attempt, self.process, os.getpid(), t_start, t_end,
                                     None if detail is None else detail[:500]))


class TaskRow(NamedTuple):
    """Per-task aggregate of the client history and effect log (one row per task id)."""

    task_id: str
    """Client-made id."""
    phase: str | None
    """Phase of its request, None if the client never sent it (an unexpected task)."""
    outcome: str | None
    """Client outcome, None if never sent."""
    invoke_t: float | None
    """Request send time."""
    complete_t: float | None
    """Answer time."""
    n_ops: int
    """Requests with this id (must be 1)."""
    starts: int
    """Attempt starts."""
    errors: int
    """Attempts that raised."""
    effects: int
    """Side effects recorded."""
    calls: int
    """Downstream calls received."""
    first_effect_t: float | None
    """Time of the first effect."""
    last_effect_t: float | None
    """Time of the last effect."""


def task_rows(ledger: Ledger) -> list[TaskRow]:
    """One aggregate row per task id seen in the client history or the effect log."""
    sql = """
    WITH ev AS (
        SELECT task_id,
               sum(type='start') AS starts, sum(type='error') AS errors,
               sum(type='effect') AS effects, sum(type='call') AS calls,
               min(CASE WHEN type='effect' THEN t END) AS first_effect_t,
               max(CASE WHEN type='effect' THEN t END) AS last_effect_t
        FROM events GROUP BY task_id
    ), op AS (
        SELECT task_id, min(phase) AS phase, min(outcome) AS outcome, min(invoke_t) AS invoke_t,
               min(complete_t) AS complete_t, count(*) AS n_ops
        FROM ops GROUP BY task_id
    )
    SELECT op.task_id, op.phase, op.outcome, op.invoke_t, op.complete_t, op.n_ops,
           coalesce(ev.starts,0), coalesce(ev.errors,0), coalesce(ev.effects,0), coalesce(ev.calls,0),
           ev.first_effect_t, ev.last_effect_t
    FROM op LEFT JOIN ev USING (task_id)
    UNION ALL
    SELECT ev.task_id, NULL, NULL, NULL, NULL, 0, ev.starts, ev.errors, ev.effects, ev.calls,
           ev.first_effect_t, ev.last_effect_t
    FROM ev WHERE ev.task_id NOT IN (SELECT task_id FROM op)
    """
    return [TaskRow(*r) for r in ledger.conn.execute(sql)]
