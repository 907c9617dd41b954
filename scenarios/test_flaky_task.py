"""flaky-task: attempts raise with probability fail_p."""

from harness.front.pytest_plugin import RunScenario
from harness.model.scenario import Scenario

SCENARIO = Scenario(
    tier_s=95,
    name="flaky-task",
    fault="each attempt raises with probability fail_p (seeded per task and attempt)",
    claim="native loses the failed tasks; Hatchet retries them with backoff",
    defaults={"fail_p": 0.3, "retries": 3, "job_s": 0.1},
    expect={"native": "loses", "hatchet": "keeps", "celery": "keeps"},
)


def test_flaky_task(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    native, hatchet = r.native, r.hatchet
    assert native.lost > 0 and native.retried == 0, native.summary
    assert native.failed == native.lost, f"native's failures are all recorded errors: {native.summary}"
    assert hatchet.retried > 0, hatchet.summary
    assert hatchet.lost < native.lost, f"hatchet {hatchet.summary} vs native {native.summary}"
    assert hatchet.silent_loss == 0, f"hatchet lost a task without an error: {hatchet.summary}"
    celery = r.celery
    assert celery.retried > 0 and celery.lost < native.lost, f"celery {celery.summary} vs native {native.summary}"
    assert celery.silent_loss == 0, f"celery lost a task without an error: {celery.summary}"
