"""engine-restart: SIGKILL the Hatchet engine, restart it after downtime_s."""

from harness.front.pytest_plugin import RunScenario
from harness.model.fault import Fault
from harness.model.scenario import Scenario
from harness.model.schedule import At, Step

SCENARIO = Scenario(
    tier_s=30,
    name="engine-restart",
    fault="SIGKILL the task-queue engine, restart it after downtime_s",
    claim="accepts fail during the outage (not lost); accepted tasks finish later",
    defaults={"downtime_s": 5.0, "job_s": 0.5},
    steps=lambda p: [Step(At(p.fault_at_s), Fault("kill", "engine", p.downtime_s))],
    expect={"hatchet": "keeps"},
)


def test_engine_restart(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    assert not r.native.applicable and not r.celery.applicable, \
        "only Hatchet has an engine: the others must say not applicable"
    hatchet = r.hatchet
    assert hatchet.lost == 0, hatchet.summary
    assert hatchet.refused + hatchet.indeterminate > 0, f"no request noticed the outage: {hatchet.summary}"
