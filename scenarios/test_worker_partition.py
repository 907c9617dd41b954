"""worker-partition: one worker loses the engine for longer than the heartbeat timeout."""

from harness.faults import Fault
from harness.pytest_plugin import RunScenario
from harness.scenario import Scenario
from harness.schedule import At, Step

SCENARIO = Scenario(
    name="worker-partition",
    fault="cut worker-1's link to the engine for downtime_s (> 30 s heartbeat timeout), then heal",
    claim="the engine reassigns worker-1's tasks while its attempts still finish: duplicates, none lost",
    defaults={"job_s": 2.0, "downtime_s": 40.0, "fault_at_s": 4.0, "duration_s": 10.0},
    steps=lambda p: [Step(At(p.fault_at_s), Fault("link-down", "worker-1->engine", p.downtime_s))],
)


def test_worker_partition(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    assert not r.native.applicable, "native has no worker<->engine link: the result must say not applicable"
    hatchet = r.hatchet
    assert hatchet.lost == 0, hatchet.summary
    print(f"hatchet: {hatchet.duplicated} duplicated, {hatchet.retried} retried of {hatchet.accepted}")
