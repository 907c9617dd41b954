"""downstream-outage: the job's link to its downstream service goes down for a while."""

from harness.front.pytest_plugin import RunScenario
from harness.model.fault import Fault
from harness.model.scenario import Scenario
from harness.model.schedule import At, Step

SCENARIO = Scenario(
    tier_s=75,
    name="downstream-outage",
    fault="every job->downstream link down for downtime_s (connections refused), then up again",
    claim="native loses the tasks that called during the outage; Hatchet and Celery retry them",
    defaults={"downstream": True, "retries": 5, "downtime_s": 4.0, "job_s": 0.1},
    steps=lambda p: [Step(At(p.fault_at_s), Fault("link-down", "*->downstream", p.downtime_s, pick="all"))],
    expect={"native": "loses", "hatchet": "keeps", "celery": "keeps"},
)


def test_downstream_outage(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    native, hatchet, celery = r.native, r.hatchet, r.celery
    assert native.lost > 0 and native.failed == native.lost, native.summary
    for run in (hatchet, celery):
        assert run.lost == 0, run.summary
        assert run.retried > 0, run.summary
    for run in (native, hatchet, celery):
        assert run.downstream_calls >= run.completed, f"{run.system}: an effect without a downstream call"
