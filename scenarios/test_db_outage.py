"""db-outage: the engine's link to its Postgres goes down for downtime_s."""

from harness.faults import Fault
from harness.pytest_plugin import RunScenario
from harness.scenario import Scenario
from harness.schedule import At, Step

SCENARIO = Scenario(
    name="db-outage",
    fault="partition the engine from its Postgres for downtime_s, then heal",
    claim="accepts fail during the outage (not lost); accepted tasks finish later",
    defaults={"downtime_s": 5.0, "job_s": 0.5},
    steps=lambda p: [Step(At(p.fault_at_s), Fault("link-down", "engine->postgres", p.downtime_s))],
)


def test_db_outage(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    assert not r.native.applicable and not r.celery.applicable, \
        "only Hatchet's engine has a database: the others must say not applicable"
    assert r.hatchet.lost == 0, r.hatchet.summary
