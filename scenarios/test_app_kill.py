"""app-kill: SIGKILL the API process mid-load, then restart it."""

from harness.front.pytest_plugin import RunScenario
from harness.model.fault import Fault
from harness.model.scenario import Scenario
from harness.model.schedule import At, Step

SCENARIO = Scenario(
    tier_s=60,
    name="app-kill",
    fault="SIGKILL the API process fault_at_s into the load, restart it after downtime_s",
    claim="native loses its in-flight accepted tasks; Hatchet and Celery lose none they accepted",
    defaults={"job_s": 2.0},
    steps=lambda p: [Step(At(p.fault_at_s), Fault("kill", "api", p.downtime_s))],
    expect={"native": "loses", "hatchet": "keeps", "celery": "keeps"},
    smoke=True,
)


def test_app_kill(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    assert r.native.lost > 0, f"native kept every accepted task through SIGKILL: {r.native.summary}"
    assert r.hatchet.lost == 0, f"hatchet lost accepted tasks: {r.hatchet.summary}"
    assert r.celery.lost == 0, f"celery lost accepted tasks: {r.celery.summary}"
