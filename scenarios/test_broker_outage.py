"""broker-outage: every link to a system's own broker goes down for a while (Celery's Redis)."""

from harness.front.pytest_plugin import RunScenario
from harness.model.fault import Fault
from harness.model.scenario import Scenario
from harness.model.schedule import At, Step

SCENARIO = Scenario(
    tier_s=27,
    name="broker-outage",
    fault="every process's link to the broker down for downtime_s (connections cut and refused), then up again",
    claim="accepts fail while the broker is unreachable (refused, not lost); accepted tasks run once it is back",
    defaults={"downtime_s": 5.0, "job_s": 0.5},
    steps=lambda p: [Step(At(p.fault_at_s), Fault("link-down", "*->broker", p.downtime_s, pick="all"))],
    expect={"celery": "keeps"},
)


def test_broker_outage(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    assert not r.native.applicable and not r.hatchet.applicable, "only a system with a broker of its own applies"
    celery = r.celery
    assert celery.refused + celery.indeterminate > 0, f"no request noticed the outage: {celery.summary}"
    assert celery.lost == 0, f"celery lost tasks it accepted: {celery.summary}"
    print(f"celery: {celery.summary}; duplicated {celery.duplicated}, e2e p99 {celery.e2e_latency_ms['p99']} ms")
