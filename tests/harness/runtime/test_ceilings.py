"""Reference ceilings: reading hatchet-loadtest's log (the real runs happen in the capacity scenario)."""

from __future__ import annotations

from apps.hatchet.ceilings import execution_times, per_second

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
