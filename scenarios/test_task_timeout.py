"""task-timeout: some attempts hang past the execution timeout and ignore cancellation."""

from harness.front.pytest_plugin import RunScenario
from harness.model.scenario import Scenario

SCENARIO = Scenario(
    tier_s=80,
    name="task-timeout",
    fault="with probability hang_p an attempt hangs hang_s, past execution_timeout_s, ignoring cancellation",
    claim="Hatchet times the attempt out and retries it; the hung attempt finishes too: duplicates",
    defaults={"hang_p": 0.2, "hang_s": 12.0, "execution_timeout_s": 3.0, "hang_ignores_cancel": True,
              "retries": 2, "job_s": 0.1},
    expect={"native": "keeps", "hatchet": "keeps", "celery": "keeps"},
)


def test_task_timeout(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    native, hatchet = r.native, r.hatchet
    assert native.lost == 0 and native.retried == 0, native.summary
    assert native.e2e_latency_ms["max"] >= 12_000, f"native waited for its hung attempts: {native.e2e_latency_ms}"
    assert hatchet.lost == 0, hatchet.summary
    assert hatchet.retried > 0, f"hatchet never timed out a hung attempt: {hatchet.summary}"
    assert hatchet.duplicated > 0, f"hung attempts that ignore cancellation finish too: {hatchet.summary}"
    celery = r.celery  # soft time limit = execution timeout: the attempt is cancelled and retried
    assert celery.lost == 0 and celery.retried > 0, celery.summary
    assert celery.duplicated > 0, f"hung attempts that ignore the soft time limit finish too: {celery.summary}"
