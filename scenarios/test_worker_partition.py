"""worker-partition: one worker loses the engine for longer than the heartbeat timeout."""

from harness.front.pytest_plugin import RunScenario
from harness.model.fault import Fault
from harness.model.scenario import Scenario
from harness.model.schedule import At, Step

SCENARIO = Scenario(
    tier_s=95,
    name="worker-partition",
    fault="cut worker-1's link to its queue (Hatchet's engine, Celery's broker) for downtime_s, then heal",
    claim="the queue hands worker-1's tasks to others (Hatchet: heartbeat timeout; Celery: visibility timeout) while "
          "its attempts still finish: duplicates, none lost",
    defaults={"job_s": 2.0, "downtime_s": 40.0, "fault_at_s": 4.0, "duration_s": 10.0, "execution_timeout_s": 10.0},
    steps=lambda p: [Step(At(p.fault_at_s), Fault("link-down", "worker-1->engine|worker-1->broker", p.downtime_s))],
    expect={"hatchet": "keeps", "celery": "keeps"},
)


def test_worker_partition(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    assert not r.native.applicable, "native has no worker<->engine link: the result must say not applicable"
    hatchet = r.hatchet
    assert hatchet.lost == 0, hatchet.summary
    print(f"hatchet: {hatchet.duplicated} duplicated, {hatchet.retried} retried of {hatchet.accepted}")
    celery = r.celery
    assert celery.lost == 0, celery.summary
    print(f"celery: {celery.duplicated} duplicated, {celery.retried} retried of {celery.accepted}")
