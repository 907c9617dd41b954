"""Reference ceilings: reading hatchet-loadtest's log (the real runs happen in the capacity scenario)."""

from __future__ import annotations

from apps.hatchet.ceilings import Progress, execution_times, per_second, read_log

GREY, GREEN, BOLD, RESET = "\x1b[90m", "\x1b[32m", "\x1b[1m", "\x1b[0m"
LOG = "".join([
    *(f"{GREY}2026-11-26T10:59:{t}Z{RESET} {GREEN}INF{RESET} {BOLD}executing {i} took 15{i}ms{RESET} service=x\n"
      for t, i in (("05.994", 3), ("06.494", 1), ("07.994", 4))),
    "2026-11-26T10:59:05.500Z INF pushing event 9 to load-test:event service=loadtest\n",
    "2026/11/26 11:00:00 pushed 3, executed 3, uniques 3, using 300 events/s\n",
])


def test_execution_times_are_read_from_the_workers_lines_only() -> None:
    times = execution_times(LOG)
    assert len(times) == 3
    assert [round(t - times[0], 3) for t in times] == [0.0, 0.5, 2.0]
    assert per_second(times) == [2, 0, 1]
    assert per_second([]) == []


def test_an_engine_that_fell_behind_its_pushes_still_gives_its_rate() -> None:
    """hatchet-loadtest exits 2 ("load test failed") when its worker had not run every push by the end of its wait;
    the runs it did run give the ceiling, marked unfinished."""
    behind = LOG.replace("pushed 3, executed 3", "pushed 9, executed 3") + "panic: load test failed\n"
    got = read_log(behind, 2, 600, 1)
    assert got["runs_per_s"] == 1.0 and got["finished"] is False and got["pushed_per_s"] == 9.0
    assert got["emitter_bound"] is False  # 9 pushed/s >= 1.5 x 1 run/s
    assert read_log(LOG, 0, 600, 3)["finished"] is True


def test_output_without_counts_is_an_error_with_its_panic_line() -> None:
    got = read_log("connecting...\npanic: could not connect\n\ngoroutine 1 [running]:\n", 2, 600, 20)
    assert got == {"error": "hatchet-loadtest exited 2: panic: could not connect"}


STOPPED = "".join([
    "2026-11-26T10:59:04.000Z INF pushing event 1 to load-test:event service=loadtest\n",
    "2026/11/26 10:59:05 pushed per event key: {\n", '  "load-test:event": 3\n', "}\n",
    *(f"{GREY}2026-11-26T10:59:{t}Z{RESET} {GREEN}INF{RESET} {BOLD}executing {i} took 15{i}ms{RESET} service=x\n"
      for t, i in (("05.994", 3), ("06.494", 1), ("06.500", 1), ("07.994", 2))),
])
"""hatchet-loadtest stopped once every push had started: no totals of its own."""


def test_a_load_test_is_done_once_every_push_has_started_and_its_totals_are_counted_from_its_lines() -> None:
    progress = Progress()
    done = [progress.read(line) for line in STOPPED.splitlines(keepends=True)]
    assert done == [False] * 7 + [True], done
    assert progress.pushed == 3 and progress.started == {1, 2, 3}
    got = read_log(STOPPED, 0, 600, 1)
    assert (got["pushed"], got["executed"], got["uniques"], got["finished"]) == (3, 4, 3, True), got
    assert got["runs_per_s"] == 1.5, got  # 4 starts over 2 s


def test_a_load_test_is_not_done_before_its_pushes_end() -> None:
    """Starts alone never end it: the pushes may still be going on."""
    progress = Progress()
    lines = [ln for ln in STOPPED.splitlines(keepends=True) if "executing" in ln]
    assert not any(progress.read(line) for line in lines)
    assert progress.pushed is None and len(progress.started) == 3
