"""Tests of harness/ledger_pg.py: URLs, fresh schemas, the copy into SQLite, forks, bad --ledger values.

The shared behaviour (every query, the Recorder, the 300-kill test) runs on both backends in test_ledger.py;
these run against the harness's own ledger server too (a real PostgreSQL).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import psycopg
import pytest

from harness.backends.base import free_port
from harness.ledger import (
    LEDGER_FILE,
    LedgerMissing,
    LedgerOptionError,
    SqliteLedger,
    check_option,
    open_ledger,
    task_rows,
)
from harness.ledger.postgres import (
    PostgresLedger,
    PostgresStore,
    check_server,
    password_of,
    redact,
    schema_name,
    schema_of,
    with_schema,
)
from harness.model.history import Event, Op, Span
from harness.runtime.ledgers import EmbeddedPostgresStore

_serial = iter(range(1_000_000))


def fresh(pg_store: PostgresStore, run_dir: Path) -> PostgresLedger:
    return pg_store.create(run_dir, f"pgtest_{os.getpid()}_{next(_serial)}")


# ---- URLs (pure) --------------------------------------------------------------------------


def test_with_schema_adds_search_path_and_keeps_other_options() -> None:
    url = with_schema("postgresql://u@h:5/db?sslmode=disable", "ledger_x")
    assert url == "postgresql://u@h:5/db?sslmode=disable&options=-c%20search_path%3Dledger_x"
    assert schema_of(url) == "ledger_x"
    both = with_schema("postgresql://u@h/db?options=-c%20statement_timeout%3D5s", "ledger_y")
    assert both == "postgresql://u@h/db?options=-c%20statement_timeout%3D5s%20-c%20search_path%3Dledger_y"
    assert schema_of(both) == "ledger_y"
    assert schema_of("postgresql://u@h/db") is None


def test_redact_drops_every_password_and_the_options() -> None:
    url = with_schema("postgresql://u:s3cret@h:5/db?password=other&sslmode=disable", "ledger_x")
    assert redact(url) == "postgresql://u@h:5/db?sslmode=disable"
    assert password_of("postgresql://u:s3cret@h/db") == "s3cret"
    assert password_of("postgresql://u@h/db?password=other") == "other"
    assert password_of("postgresql://u@h/db") is None


def test_schema_names_are_safe_unique_and_short() -> None:
    assert schema_name("20261125-120000-abcd_app-kill_native") == "ledger_20261125_120000_abcd_app_kill_native"
    long_a, long_b = schema_name("x" * 80 + "a"), schema_name("x" * 80 + "b")
    assert len(long_a) == len(long_b) == 63 and long_a != long_b
    assert long_a.startswith("ledger_xxx")


@pytest.mark.parametrize("value", ["mysql://h/db", "postgres", "sqlite:///tmp/x.db", ""])
def test_a_bad_ledger_option_is_one_line(value: str) -> None:
    with pytest.raises(LedgerOptionError, match=r"^--ledger .*: expected sqlite, pg ") as exc:
        check_option(value)
    assert "\n" not in str(exc.value)


def test_an_unreachable_server_is_refused_in_one_line_without_its_password() -> None:
    url = f"postgresql://u:s3cret@127.0.0.1:{free_port()}/db"
    with pytest.raises(LedgerOptionError) as exc:
        check_option(url)
    message = str(exc.value)
    assert message.startswith(f"--ledger postgresql://u@127.0.0.1:{url.rsplit(':', 1)[1]}: cannot use it (")
    assert "s3cret" not in message and "\n" not in message


# ---- a real server ------------------------------------------------------------------------


def test_store_makes_a_fresh_schema_per_run_and_refuses_an_existing_one(pg_store: EmbeddedPostgresStore,
                                                                        tmp_path: Path) -> None:
    led = pg_store.create(tmp_path / "native", "run1_app-kill_native")
    assert led.schema == "ledger_run1_app_kill_native"
    led.record_op(Op("t1", "native", "sleep", "measure", 1.0, 1.1, "ok", 202))
    with pytest.raises(FileExistsError, match=r"already exists in .* schema ledger_run1_app_kill_native"):
        pg_store.create(tmp_path / "again", "run1_app-kill_native")
    assert [o.task_id for o in open_ledger(led.url).ops()] == ["t1"], "the refused run must not touch the first one"
    other = pg_store.create(tmp_path / "hatchet", "run1_app-kill_hatchet")
    assert other.ops() == []
    described = pg_store.describe(tmp_path)
    assert described["backend"] == "postgres"
    assert described["schemas"] == {"native": "ledger_run1_app_kill_native", "hatchet": "ledger_run1_app_kill_hatchet"}
    assert described["where"] == f"postgresql://postgres@127.0.0.1:{pg_store.server.port}/ledger?sslmode=disable"
    assert pg_store.describe(tmp_path / "elsewhere")["schemas"] == {}
    assert pg_store.secrets() == []


def test_a_run_directory_holding_a_ledger_is_refused(pg_store: EmbeddedPostgresStore, tmp_path: Path) -> None:
    (tmp_path / LEDGER_FILE).write_bytes(b"")
    with pytest.raises(FileExistsError, match="each run needs a fresh directory"):
        fresh(pg_store, tmp_path)


def test_a_schema_without_a_ledger_is_missing(pg_store: EmbeddedPostgresStore) -> None:
    with pytest.raises(LedgerMissing, match=r"no ledger in .* schema ledger_nothing_here"):
        open_ledger(with_schema(pg_store.url, "ledger_nothing_here"))


def test_check_server_accepts_the_store_and_leaves_nothing(pg_store: EmbeddedPostgresStore, tmp_path: Path) -> None:
    check_server(pg_store.url)
    check_server(pg_store.url)  # its probe schema was rolled back, or this second CREATE SCHEMA would fail
    led = fresh(pg_store, tmp_path)
    assert led.query("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'harness_ledger_probe%'").fetchone() == (0,)


def test_save_copies_every_table_into_sqlite_exactly(pg_store: EmbeddedPostgresStore, tmp_path: Path) -> None:
    led = fresh(pg_store, tmp_path / "native")
    led.set_meta("t0", 100.0)
    led.set_meta("params", {"rate": 20.0})
    led.record_ops([Op(f"m{i}", "native", "sleep", "measure", 100.0 + i / 3, 100.01 + i / 3, "ok", 202)
                    for i in range(25_003)])  # more than one batch of the copy
    led.record_op(Op("r", "native", "sleep", "measure", 99.5, 99.6, "fail", 503, "busy", "client-1"))
    led.record_event(Event("m0", "native", "start", 1, "api", 7, 100.1))
    led.record_event(Event("m0", "native", "effect", 1, "api", 7, 100.123456789012, "ok"))
    led.record_event(Event("ghost", "native", "effect", 1, "api", 7, 101.0))
    led.record_span(Span("m0", "native", "trigger.call", 0, "api", 7, 100.0, 100.05, "d"))
    fid = led.fault_started("kill", "api", {"signal": 9}, t=100.5)
    led.fault_ended(fid, t=100.6)
    led.fault_started("pause", "worker", t=100.7)
    led.record_sample("api", "rss_bytes", 123456789, t=100.2)
    assert led.save() == tmp_path / "native" / LEDGER_FILE
    copy = open_ledger(f"sqlite:///{led.path}")
    assert isinstance(copy, SqliteLedger)
    assert copy.meta() == led.meta()
    assert copy.ops() == led.ops() and len(copy.ops()) == 25_004
    assert copy.events() == led.events()
    assert copy.events()[1].t == 100.123456789012, "times are copied exactly"
    assert copy.spans() == led.spans()
    assert copy.faults() == led.faults()
    assert copy.samples() == led.samples()
    assert sorted(task_rows(copy)) == sorted(task_rows(led))  # no order is promised
    ids = "SELECT id FROM faults ORDER BY id"
    assert copy.query(ids).fetchall() == led.query(ids).fetchall(), "row ids are kept"
    with pytest.raises(FileExistsError):
        led.save()  # a copy is never overwritten


def test_a_forked_child_never_closes_its_parents_connections(pg_store: EmbeddedPostgresStore, tmp_path: Path) -> None:
    """Connections of this thread and of another live thread survive a child that drops them and exits."""
    led = fresh(pg_store, tmp_path)
    led.record_sample("main", "x", 1.0)
    ready, done = threading.Event(), threading.Event()

    def other_thread() -> None:
        led.record_sample("thread", "x", 1.0)  # this thread's own connection
        ready.set()
        done.wait(30)
        led.record_sample("thread", "x", 2.0)

    thread = threading.Thread(target=other_thread)
    thread.start()
    assert ready.wait(30)
    pid = os.fork()
    if pid == 0:  # the child: let go of everything inherited, the way a normal exit would
        try:
            led.close()
            del led
            import gc
            gc.collect()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    done.set()
    thread.join(30)
    led.record_sample("main", "x", 2.0)  # would raise "server closed the connection" had the child closed it
    assert [(s.source, s.value) for s in led.samples("x")] == [("main", 1.0), ("thread", 1.0), ("thread", 2.0),
                                                                ("main", 2.0)]


def test_a_lost_connection_makes_a_write_raise_not_vanish(pg_store: EmbeddedPostgresStore, tmp_path: Path) -> None:
    """The guarantee's boundary: with its connection gone, a write raises (nothing is retried or dropped silently)."""
    led = fresh(pg_store, tmp_path)
    led.record_sample("main", "x", 1.0)
    (backend,) = led.query("SELECT pg_backend_pid()").fetchone()
    other = open_ledger(led.url)
    assert other.query("SELECT pg_terminate_backend(?)", (backend,)).fetchone() == (True,)
    with pytest.raises(psycopg.DatabaseError):  # "server closed the connection unexpectedly"
        led.record_sample("main", "x", 2.0)
    assert [s.value for s in other.samples("x")] == [1.0], "the failed write left nothing behind"
