"""The same seed gives the same run: the same faults at the same times, and the same counts where the
system's faults are deterministic (the calibration system; flaky-task's seeded failures on native).

Real stack, small parameters (about a minute in all). A different seed must give a different
schedule, so the comparison cannot pass by comparing nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.front.catalog import discover
from harness.model.fault import Fault
from harness.model.scenario import Scenario
from harness.model.schedule import Every, Step
from harness.model.spec import find_systems
from harness.session import Session

TIME_TOLERANCE_S = 0.5
"""How far the same fault's start and end may move between runs (the runner polls every 50 ms; the
machine is shared)."""
COUNTS = ("attempted", "accepted", "refused", "indeterminate", "completed", "lost", "failed", "duplicated",
          "retried", "recovered")
"""Counts that must repeat exactly when the system's own faults are deterministic."""

SEEDED = Scenario(
    name="seeded-pauses",
    fault="every 1.5 s (seeded jitter up to 1 s) a seeded pick: pause the API or the downstream, 0.3 or 0.6 s",
    claim="the same seed gives the same fault schedule; pauses delay requests, so counts stay deterministic",
    defaults={"rate": 30.0, "duration_s": 6.0, "warmup": 2, "job_s": 0.02},
    steps=lambda p: [Step(Every(1.5, start_s=0.5, jitter_s=1.0), Fault("pause", "api", 0.3),
                          (Fault("pause", "api", 0.6), Fault("pause", "api|downstream", 0.3, pick="random")))],
    systems=("calibration",),
)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    with Session(root=tmp_path_factory.mktemp("repro"), progress=lambda m: None) as s:
        yield s


def run(session: Session, scenario: Scenario, system: str, seed: int, tag: str, **params: Any) -> dict[str, Any]:
    """One run's results.json entry."""
    doc = session.run(scenario, [find_systems()[system]], scenario.params({"seed": seed, **params}),
                      out_dir=session.root / f"{scenario.name}-{tag}")
    (entry,) = doc["runs"]
    return dict(entry)


def schedule_diff(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[str]:
    """How two fault histories differ: action, target, start and end (within TIME_TOLERANCE_S)."""
    if len(a) != len(b):
        return [f"{len(a)} faults vs {len(b)}"]
    diffs = []
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if (x["action"], x["target"]) != (y["action"], y["target"]):
            diffs.append(f"fault {i}: {x['action']} {x['target']} vs {y['action']} {y['target']}")
        for key in ("at_s", "until_s"):
            if abs(x[key] - y[key]) > TIME_TOLERANCE_S:
                diffs.append(f"fault {i}: {key} {x[key]} vs {y[key]}")
    return diffs


def test_same_seed_same_fault_schedule_and_calibration_counts(session: Session) -> None:
    first, again, other = (run(session, SEEDED, "calibration", seed, tag)
                           for seed, tag in ((1, "a"), (1, "b"), (2, "c")))
    for label, r in (("seed 1", first), ("seed 1 again", again), ("seed 2", other)):
        print(f"{label}: " + "; ".join(f"{f['action']} {f['target']} {f['at_s']}-{f['until_s']}s" for f in r["faults"]))
        print(f"  counts: {' '.join(f'{k}={r[k]}' for k in COUNTS)}")
    assert len(first["faults"]) >= 3, f"too few faults to compare: {first['faults']}"
    assert schedule_diff(first["faults"], again["faults"]) == []
    assert schedule_diff(first["faults"], other["faults"]), "seed 2 gave seed 1's schedule: the seed is not used"
    assert {k: again[k] for k in COUNTS} == {k: first[k] for k in COUNTS}
    assert first["lost"] > 0 and first["duplicated"] > 0, "the calibration faults must show"


def test_same_seed_same_flaky_task_counts_on_native(session: Session) -> None:
    flaky = discover()["flaky-task"]
    # Native redelivers nothing: a 1 s quiet drain is enough (its 5 s default would triple the wait).
    small = {"rate": 25.0, "duration_s": 4.0, "warmup": 2, "job_s": 0.05, "drain_quiet_s": 1.0}
    first, again = (run(session, flaky, "native", 1, tag, **small) for tag in ("a", "b"))
    other = run(session, flaky, "native", 2, "c", **small)
    for label, r in (("seed 1", first), ("seed 1 again", again), ("seed 2", other)):
        print(f"{label}: {' '.join(f'{k}={r[k]}' for k in COUNTS)}")
    assert first["accepted"] == first["attempted"] == 100, "the comparison needs every request accepted"
    assert {k: again[k] for k in COUNTS} == {k: first[k] for k in COUNTS}
    assert first["failed"] > 0 and first["lost_ids"] == again["lost_ids"], "the same tasks must fail"
    assert other["lost_ids"] != first["lost_ids"], "seed 2 failed seed 1's tasks: the seed is not used"
