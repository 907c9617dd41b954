"""deploy-restart: SIGTERM every app process through its graceful path, then start new ones."""

from harness.front.pytest_plugin import RunScenario
from harness.model.fault import Fault
from harness.model.scenario import Scenario
from harness.model.schedule import At, Step

SCENARIO = Scenario(
    name="deploy-restart",
    fault="SIGTERM the API and every worker (graceful, grace_s), SIGKILL after grace_s, start new processes",
    claim="native loses tasks longer than the grace period; Hatchet finishes or reassigns them",
    defaults={"job_s": 6.0, "grace_s": 2.0, "downtime_s": 0.0, "execution_timeout_s": 15.0},
    steps=lambda p: [Step(At(p.fault_at_s), Fault("terminate", "api|worker", p.downtime_s, pick="all"))],
    expect={"native": "loses", "hatchet": "keeps", "celery": "keeps"},
    smoke=True,
)


def test_deploy_restart(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    assert r.native.lost > 0, f"native kept tasks longer than its grace period: {r.native.summary}"
    assert r.hatchet.lost == 0, f"hatchet lost tasks over a graceful restart: {r.hatchet.summary}"
    assert r.celery.lost == 0, f"celery lost tasks over a graceful restart: {r.celery.summary}"
    print(f"celery: {r.celery.duplicated} duplicated, {r.celery.retried} retried (redelivered after the kill)")
