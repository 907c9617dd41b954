"""Tests of harness/ledger.py on both backends (a real SQLite file, a real PostgreSQL server),
including durability under SIGKILL of writers. Postgres-only behaviour: test_ledger_pg.py."""

from __future__ import annotations

import itertools
import os
import random
import signal
import sqlite3
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

import pytest

from harness.ledger import (
    ENV_LEDGER,
    ENV_PROCESS,
    ENV_SYSTEM,
    Ledger,
    LedgerMissing,
    Recorder,
    SqliteLedger,
    SqliteStore,
    TaskRow,
    create_ledger,
    open_ledger,
    sqlite_url,
    task_rows,
)
from harness.ledger.postgres import PostgresLedger
from harness.model.history import Event, FaultRecord, Op

BACKENDS = ("sqlite", "postgres")
_names = itertools.count()




def new_ledger(request: pytest.FixtureRequest, backend: str, run_dir: Path) -> Ledger:
    """A fresh ledger of backend for a run in run_dir, as the runner makes one."""
    store = request.getfixturevalue("pg_store") if backend == "postgres" else SqliteStore()
    return store.create(run_dir, f"test_{os.getpid()}_{next(_names)}")


@pytest.fixture(params=BACKENDS)
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Ledger:
    return new_ledger(request, request.param, tmp_path / "run")


def op(task_id: str, outcome: str = "ok", phase: str = "measure", t: float = 10.0) -> Op:
    return Op(task_id, "native", "sleep", phase, t, t + 0.01, outcome, 202 if outcome == "ok" else None)


def ev(task_id: str, type: str, t: float, attempt: int = 1, pid: int = 100, process: str = "api") -> Event:
    return Event(task_id, "native", type, attempt, process, pid, t)


# ---- creation and URLs ----------------------------------------------------------------------


def test_create_makes_parent_dirs_and_a_wal_database(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ledger.db"
    led = create_ledger(path)
    assert path.exists()
    assert led.url == sqlite_url(path) == f"sqlite:///{path.resolve()}"
    assert led.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in led.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"ops", "events", "spans", "faults", "samples", "meta"}


def test_create_refuses_an_existing_ledger_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    create_ledger(path).record_op(op("t1"))
    with pytest.raises(FileExistsError, match="already exists"):
        create_ledger(path)
    assert [o.task_id for o in open_ledger(sqlite_url(path)).ops()] == ["t1"]


def test_open_by_url_of_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no ledger at"):
        open_ledger(sqlite_url(tmp_path / "nope.db"))


def test_unsupported_url_raises() -> None:
    with pytest.raises(ValueError, match="unsupported ledger URL"):
        open_ledger("mysql://localhost/ledger")


def test_the_url_picks_the_backend(ledger: Ledger) -> None:
    expected = PostgresLedger if ledger.url.startswith("postgresql://") else SqliteLedger
    assert type(ledger) is expected
    assert type(open_ledger(ledger.url)) is expected


# ---- write/read round trips ------------------------------------------------------------------


def test_record_op_round_trip_in_invoke_order(ledger: Ledger) -> None:
    a = Op("a", "hatchet", "cpu", "measure", 20.0, 20.5, "fail", 503, "busy", "client-1")
    b = Op("b", "hatchet", "sleep", "warmup", 5.0, 5.1, "ok", 202)
    c = Op("c", "hatchet", "sleep", "measure", 10.0, 20.0, "info", None, "timeout")
    for o in (a, b, c):
        ledger.record_op(o)
    assert ledger.ops() == [b, c, a]
    assert ledger.ops(phase="measure") == [c, a]
    assert ledger.ops(phase="warmup") == [b]


def test_record_ops_bulk_and_transaction_rollback(ledger: Ledger) -> None:
    ledger.record_ops([op(f"t{i}", t=float(i)) for i in range(5)])
    assert [o.task_id for o in ledger.ops()] == [f"t{i}" for i in range(5)]
    with pytest.raises(RuntimeError), ledger.transaction() as conn:
        conn.execute("INSERT INTO meta(key, value) VALUES ('x', '1')")
        raise RuntimeError("abort")
    assert ledger.meta() == {}


def test_record_event_round_trip_and_type_filter(ledger: Ledger) -> None:
    e1 = Event("t1", "native", "start", 1, "api", 42, 1.0)
    e2 = Event("t1", "native", "effect", 1, "api", 42, 2.0, "done")
    e3 = Event("t1", "native", "error", 2, "worker-1", 43, 1.5, "boom")
    for e in (e1, e2, e3):
        ledger.record_event(e)
    assert ledger.events() == [e1, e3, e2]
    assert ledger.events(type="effect") == [e2]
    assert ledger.events(type="call") == []


def test_identical_events_are_both_kept(ledger: Ledger) -> None:
    e = Event("t1", "native", "effect", 1, "api", 42, 2.0)
    ledger.record_event(e)
    ledger.record_event(e)
    assert ledger.events() == [e, e]


def test_fault_started_and_ended_round_trip(ledger: Ledger) -> None:
    f1 = ledger.fault_started("kill", "api", {"signal": 9, "pick": "first"}, t=100.0)
    f2 = ledger.fault_started("link-down", "*->engine", t=50.0)
    assert f1 != f2
    assert ledger.faults() == [
        FaultRecord(50.0, None, "link-down", "*->engine", {}),
        FaultRecord(100.0, None, "kill", "api", {"pick": "first", "signal": 9}),
    ]
    ledger.fault_ended(f1, t=103.5)
    assert ledger.faults()[1] == FaultRecord(100.0, 103.5, "kill", "api", {"pick": "first", "signal": 9})
    assert ledger.faults()[0].t_end is None


def test_fault_times_default_to_now(ledger: Ledger) -> None:
    before = time.time()
    fid = ledger.fault_started("pause", "worker")
    ledger.fault_ended(fid)
    after = time.time()
    (f,) = ledger.faults()
    assert f.t_end is not None
    assert before <= f.t_start <= f.t_end <= after


def test_meta_round_trip_and_overwrite(ledger: Ledger) -> None:
    assert ledger.meta() == {}
    ledger.set_meta("t0", 1234.5)
    ledger.set_meta("params", {"rate": 20.0, "systems": ["native", "hatchet"]})
    ledger.set_meta("note", None)
    ledger.set_meta("t0", 99.0)
    assert ledger.meta() == {"t0": 99.0, "params": {"rate": 20.0, "systems": ["native", "hatchet"]}, "note": None}


def test_samples_round_trip(ledger: Ledger) -> None:
    ledger.record_sample("api", "rss_bytes", 2048.0, t=2.0)
    ledger.record_sample("engine", "backlog", 7.0, t=1.0)
    assert [(s.t, s.source, s.metric, s.value) for s in ledger.samples()] == [
        (1.0, "engine", "backlog", 7.0), (2.0, "api", "rss_bytes", 2048.0)]
    assert [s.source for s in ledger.samples("rss_bytes")] == ["api"]


def test_writes_are_visible_to_a_second_ledger_object(ledger: Ledger) -> None:
    other = open_ledger(ledger.url)
    ledger.record_op(op("t1"))
    ledger.record_event(ev("t1", "effect", 3.0))
    assert [o.task_id for o in other.ops()] == ["t1"]
    assert other.last_activity() == 3.0


# ---- task_rows ------------------------------------------------------------------------------


def test_task_rows_aggregates_ops_and_events(ledger: Ledger) -> None:
    ledger.record_op(op("done", t=1.0))
    ledger.record_op(op("retried", t=2.0))
    ledger.record_op(op("lost", t=3.0))
    ledger.record_op(op("twice", outcome="info", t=4.0))
    ledger.record_op(op("twice", outcome="ok", t=5.0))
    ledger.record_event(ev("done", "start", 1.1))
    ledger.record_event(ev("done", "call", 1.15))
    ledger.record_event(ev("done", "effect", 1.2))
    ledger.record_event(ev("retried", "start", 2.1, attempt=1))
    ledger.record_event(ev("retried", "error", 2.2, attempt=1))
    ledger.record_event(ev("retried", "start", 2.3, attempt=2))
    ledger.record_event(ev("retried", "effect", 2.9, attempt=2))
    ledger.record_event(ev("retried", "effect", 2.5, attempt=2))
    ledger.record_event(ev("ghost", "start", 7.0))
    ledger.record_event(ev("ghost", "effect", 7.5))
    rows = {r.task_id: r for r in task_rows(ledger)}
    assert set(rows) == {"done", "retried", "lost", "twice", "ghost"}
    assert rows["done"] == TaskRow("done", "measure", "ok", 1.0, 1.01, 1, 1, 0, 1, 1, 1.2, 1.2)
    assert rows["retried"] == TaskRow("retried", "measure", "ok", 2.0, 2.01, 1, 2, 1, 2, 0, 2.5, 2.9)
    assert rows["lost"] == TaskRow("lost", "measure", "ok", 3.0, 3.01, 1, 0, 0, 0, 0, None, None)
    assert rows["twice"].n_ops == 2
    assert rows["twice"].invoke_t == 4.0
    # An effect for a task id the client never sent: phase None, no op.
    assert rows["ghost"] == TaskRow("ghost", None, None, None, None, 0, 1, 0, 1, 0, 7.5, 7.5)


def test_task_rows_of_empty_ledger(ledger: Ledger) -> None:
    assert task_rows(ledger) == []


# ---- counters for the runner ---------------------------------------------------------------


def test_count_accepted_by_phase(ledger: Ledger) -> None:
    ledger.record_op(op("a"))
    ledger.record_op(op("b"))
    ledger.record_op(op("c", outcome="fail"))
    ledger.record_op(op("d", outcome="info"))
    ledger.record_op(op("w", phase="warmup"))
    assert ledger.count_accepted() == 2
    assert ledger.count_accepted("warmup") == 1


def test_count_in_flight(ledger: Ledger) -> None:
    assert ledger.count_in_flight() == 0
    ledger.record_event(ev("a", "start", 1.0))
    ledger.record_event(ev("b", "start", 1.0))
    ledger.record_event(ev("c", "start", 1.0))
    assert ledger.count_in_flight() == 3
    ledger.record_event(ev("a", "effect", 2.0))
    ledger.record_event(ev("b", "error", 2.0))
    ledger.record_event(ev("c", "call", 2.0))  # a downstream call does not end an attempt
    assert ledger.count_in_flight() == 1
    # c's attempt reassigned to another process (same attempt number): both count until each ends.
    ledger.record_event(ev("c", "start", 3.0, process="worker-2", pid=200))
    assert ledger.count_in_flight() == 2
    ledger.record_event(ev("c", "effect", 4.0, process="worker-2", pid=200))
    assert ledger.count_in_flight() == 1
    ledger.record_event(ev("c", "effect", 5.0))
    assert ledger.count_in_flight() == 0


def test_a_task_is_settled_by_an_effect_or_by_every_attempt_failing(ledger: Ledger) -> None:
    for task in ("done", "gave-up", "retrying", "running", "waiting"):
        ledger.record_op(op(task))
    ledger.record_event(ev("done", "start", 1.0))
    ledger.record_event(ev("done", "effect", 1.1))
    for attempt in (1, 2):
        ledger.record_event(ev("gave-up", "start", 1.0 + attempt, attempt=attempt))
        ledger.record_event(ev("gave-up", "error", 1.5 + attempt, attempt=attempt))
    ledger.record_event(ev("retrying", "start", 1.0))
    ledger.record_event(ev("retrying", "error", 1.1))
    ledger.record_event(ev("running", "start", 1.0))
    ledger.record_event(ev("running", "error", 1.1))
    ledger.record_event(ev("running", "start", 2.0, attempt=2))
    counts = {attempts: ledger.unsettled(attempts) for attempts in (0, 1, 2, 3)}
    print(f"unsettled by attempts allowed: {counts}")
    # 2 attempts allowed: gave-up has failed both (settled); running's second attempt is still going.
    assert counts == {0: 4, 1: 2, 2: 3, 3: 4}, counts


def test_missing_effects(ledger: Ledger) -> None:
    ledger.record_op(op("a"))
    ledger.record_op(op("b"))
    ledger.record_op(op("refused", outcome="fail"))
    ledger.record_op(op("w", phase="warmup"))
    assert ledger.missing_effects() == 2
    assert ledger.missing_effects("warmup") == 1
    ledger.record_event(ev("a", "start", 1.0))
    ledger.record_event(ev("a", "error", 1.1))
    assert ledger.missing_effects() == 2, "an errored attempt is not an effect"
    ledger.record_event(ev("a", "effect", 1.2))
    ledger.record_event(ev("b", "call", 1.2))
    assert ledger.missing_effects() == 1
    ledger.record_event(ev("b", "effect", 1.3))
    assert ledger.missing_effects() == 0


def test_last_activity(ledger: Ledger) -> None:
    assert ledger.last_activity() is None
    ledger.record_event(ev("a", "start", 5.0))
    ledger.record_event(ev("a", "effect", 9.0))
    ledger.record_event(ev("b", "start", 7.0))
    assert ledger.last_activity() == 9.0


# ---- Recorder ---------------------------------------------------------------------------------


def test_recorder_from_env_missing_all_names_them() -> None:
    with pytest.raises(RuntimeError, match="not started by the harness") as exc:
        Recorder.from_env({})
    for name in (ENV_LEDGER, ENV_SYSTEM, ENV_PROCESS):
        assert name in str(exc.value)


def test_recorder_from_env_missing_one_names_only_it(ledger: Ledger) -> None:
    with pytest.raises(RuntimeError) as exc:
        Recorder.from_env({ENV_LEDGER: ledger.url, ENV_SYSTEM: "native", ENV_PROCESS: ""})
    assert ENV_PROCESS in str(exc.value)
    assert ENV_LEDGER not in str(exc.value) and ENV_SYSTEM not in str(exc.value)


def test_recorder_writes_every_event_type(ledger: Ledger) -> None:
    rec = Recorder.from_env({ENV_LEDGER: ledger.url, ENV_SYSTEM: "hatchet", ENV_PROCESS: "worker-2"})
    assert (rec.system, rec.process) == ("hatchet", "worker-2")
    before = time.time()
    rec.started("t1", 1)
    rec.failed("t1", 1, "x" * 2000)
    rec.started("t1", 2)
    rec.call("t1", 2, "POST /call")
    rec.effect("t1", 2, "ok")
    events = ledger.events()
    assert [(e.type, e.attempt, e.detail) for e in events] == [
        ("start", 1, None), ("error", 1, "x" * 500), ("start", 2, None), ("call", 2, "POST /call"),
        ("effect", 2, "ok")]
    assert {(e.task_id, e.system, e.process, e.pid) for e in events} == {("t1", "hatchet", "worker-2", os.getpid())}
    assert all(before <= e.t <= time.time() for e in events)


def test_recorder_from_env_of_missing_ledger_raises(tmp_path: Path) -> None:
    with pytest.raises(LedgerMissing):
        Recorder.from_env({ENV_LEDGER: sqlite_url(tmp_path / "none.db"), ENV_SYSTEM: "s", ENV_PROCESS: "p"})


# ---- durability under SIGKILL -------------------------------------------------------------------

def _write_until_killed(url: str, sidecar: Path, prefix: str) -> NoReturn:
    """A writer process's life (forked from this one, with every module already imported): write, confirm, repeat.

    It never returns: SIGKILL ends it; an exception is written to ``<sidecar>.err`` and exits 1.
    """
    try:
        rec = Recorder.from_env({ENV_LEDGER: url, ENV_SYSTEM: "native", ENV_PROCESS: "writer"})
        fd = os.open(sidecar, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        i = 0
        while True:
            rec.effect(f"{prefix}-{i}", 1, str(i))
            os.write(fd, f"{i}\n".encode())  # only after the ledger call returned
            i += 1
    except Exception:
        sidecar.with_suffix(".err").write_text(traceback.format_exc())
        raise
    finally:
        os._exit(1)  # never pytest's teardown in a child


def _confirmed(sidecar: Path) -> int:
    """How many writes the writer confirmed (complete lines of its sidecar; numbers are 0..n-1)."""
    if not sidecar.exists():
        return 0
    lines = sidecar.read_bytes().split(b"\n")[:-1]  # a torn last line was never confirmed
    assert [int(x) for x in lines] == list(range(len(lines)))
    return len(lines)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ledger_loses_nothing_a_writer_returned_from_under_sigkill(request: pytest.FixtureRequest, tmp_path: Path,
                                                                   backend: str) -> None:
    """Hundreds of SIGKILLs of concurrent writers: every returned write is there, once, in a sound ledger.

    Not marked slow or soak on purpose: about 30 s per backend, part of `make test` and CI.
    """
    led = new_ledger(request, backend, tmp_path / "run")
    rng = random.Random(20240611)
    # 320 kills (about 25 s here): enough to land many kills inside SQLite's commit and a WAL checkpoint, or
    # inside a Postgres round trip. Writers are forked from this process: a new interpreter importing psycopg
    # took most of a slot's time; a fork also proves that a child never closes its parent's connections.
    slots, want_kills, deadline = 6, 320, time.monotonic() + 55
    # [pid, prefix, kill time]: the kill time is drawn once the writer has confirmed its first write,
    # so every kill lands at a random moment of the write loop whatever the machine's load.
    running: list[list[Any]] = []
    incarnations: list[str] = []
    kills_mid_write = 0
    serial = 0

    def spawn() -> None:
        nonlocal serial
        prefix = f"w{serial}"
        serial += 1
        pid = os.fork()
        if pid == 0:
            _write_until_killed(led.url, tmp_path / f"{prefix}.done", prefix)
        incarnations.append(prefix)
        running.append([pid, prefix, None])

    try:
        for _ in range(slots):
            spawn()
        while kills_mid_write < want_kills and time.monotonic() < deadline:
            time.sleep(0.002)
            # A concurrent reader, as the runner is during a scenario (O(1): a scan of the growing log would
            # take the loop's time; an open read transaction is what matters to the writers' checkpoints).
            led.query("SELECT max(id) FROM events").fetchone()
            for entry in list(running):
                pid, prefix, kill_at = entry
                if os.waitpid(pid, os.WNOHANG) != (0, 0):
                    err = tmp_path / f"{prefix}.err"
                    pytest.fail(f"writer {prefix} died by itself: {err.read_text() if err.exists() else '?'}")
                if kill_at is None:
                    sidecar = tmp_path / f"{prefix}.done"
                    if sidecar.exists() and sidecar.stat().st_size > 0:
                        entry[2] = time.monotonic() + rng.uniform(0.0, 0.1)
                    continue
                if time.monotonic() < kill_at:
                    continue
                written_before = _confirmed(tmp_path / f"{prefix}.done")
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
                assert written_before > 0
                running.remove(entry)
                kills_mid_write += 1
                spawn()
    finally:
        for pid, _, _ in running:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)

    assert kills_mid_write >= 300, f"only {kills_mid_write} writers were killed while writing"

    if backend == "sqlite":
        check = sqlite3.connect(led.path)
        try:
            assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            check.close()
    dupes = led.query("SELECT task_id, count(*) FROM events GROUP BY task_id HAVING count(*) > 1").fetchall()
    assert dupes == []
    present: dict[str, set[int]] = {}
    for task_id, detail, type_ in led.query("SELECT task_id, detail, type FROM events"):
        prefix, n = task_id.rsplit("-", 1)
        assert type_ == "effect" and detail == n
        present.setdefault(prefix, set()).add(int(n))

    total_confirmed = 0
    for prefix in incarnations:
        n = _confirmed(tmp_path / f"{prefix}.done")
        total_confirmed += n
        got = present.get(prefix, set())
        missing = set(range(n)) - got
        assert not missing, f"{prefix}: {len(missing)} confirmed writes lost, e.g. {sorted(missing)[:5]}"
        # At most one write beyond the confirmed ones: the one killed between the ledger call and the sidecar.
        assert got <= set(range(n + 1)), f"{prefix}: rows that were never written: {sorted(got - set(range(n + 1)))}"
    assert total_confirmed > 1000, "too few writes for the test to mean anything"
    print(f"{backend}: {kills_mid_write} SIGKILLs of {len(incarnations)} writers; {total_confirmed} confirmed writes"
          f" all present, none twice{', integrity ok' if backend == 'sqlite' else ''}")


def test_spans_record_where_a_stage_took_its_time(ledger: Ledger) -> None:
    led = ledger
    rec = Recorder(led, "hatchet", "api")
    rec.span("t1", "trigger.call", 10.0, 10.25)
    rec.span("t1", "trigger.wait", 9.5, 10.0, detail="x" * 600)
    spans = led.spans()
    assert [(s.name, s.t_start, s.t_end) for s in spans] == [("trigger.wait", 9.5, 10.0), ("trigger.call", 10.0, 10.25)]
    assert [s.name for s in led.spans("trigger.call")] == ["trigger.call"]
    assert len(spans[0].detail or "") == 500
