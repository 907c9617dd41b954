"""Nothing of a run outlives it: processes, its temp directory entries, its shared memory and semaphores.

Each case runs ``harness run`` against Hatchet (Postgres, the engine, workers: where leftovers come
from) and ends it one way: killed (SIGKILL, no clean-up of its own), interrupted (SIGINT), stopped
(SIGTERM), or left to finish. ``bench/killed_runs.py`` does the accounting (a private temp directory,
a watcher noting the shared memory of the run's processes) and runs 20 random ones for README.
"""

from __future__ import annotations

import pytest

from bench.killed_runs import killed_run


@pytest.mark.parametrize(
    ("sig", "when", "after_s", "scenario", "exit_code"),
    [
        ("SIGKILL", "measured load", 3.0, "worker-kill", -9),  # mid-load: workers, engine and Postgres busy
        ("SIGINT", "starting postgres", 5.0, "baseline", 130),  # while Postgres, migrations, the engine start
        ("SIGTERM", "warm-up", 1.0, "worker-kill", 143),
        ("none", None, 0.0, "worker-kill", 0),  # the normal end, a worker SIGKILLed by the scenario on the way
    ],
)
def test_a_run_ended_any_way_leaves_nothing(sig: str, when: str | None, after_s: float, scenario: str,
                                             exit_code: int) -> None:
    o = killed_run("hatchet", scenario, sig, after_s, when=when)
    print(f"{sig} at {o.after_s} s ({o.stage}): exit {o.exit_code}, everything gone {o.gone_s} s later; the run "
          f"used {o.seen_shm} /dev/shm entries and {o.seen_segments} System V segments; left: {o.processes} "
          f"{o.temp_entries} {o.shm} {o.segments}; other runs' new entries meanwhile: {len(o.foreign_new)}")
    assert o.exit_code == exit_code, o.output
    assert o.seen_shm > 0 and o.seen_segments > 0, "Postgres ran: there was shared memory to clean up"
    assert o.processes == [], "a process of the run outlived it"
    assert o.temp_entries == [], "the state directory (Postgres data, engine keys) outlived the run"
    assert o.shm == [], "a /dev/shm entry of the run's processes outlived it"
    assert o.segments == [], "a System V segment of the run's Postgres outlived it"
