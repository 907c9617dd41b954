"""calibration-kill: SIGKILL the calibration API mid-load and restart it; the counts must stay exact."""

from apps.calibration import expected
from harness.front.pytest_plugin import RunScenario
from harness.model.fault import Fault
from harness.model.scenario import Scenario
from harness.model.schedule import At, Step

SCENARIO = Scenario(
    tier_s=14,
    name="calibration-kill",
    fault="SIGKILL the calibration API fault_at_s into the load, restart it after downtime_s",
    claim="a kill only turns requests into refusals or unanswered ones: the counts of accepted tasks stay exact",
    defaults={"rate": 50.0, "duration_s": 8.0, "fault_at_s": 3.0, "downtime_s": 1.0},
    steps=lambda p: [Step(At(p.fault_at_s), Fault("kill", "api", p.downtime_s))],
    systems=("calibration",),
)


def test_calibration_kill(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    run = r.calibration
    ledger = r.ledger_of("calibration")
    want = expected.for_run(ledger, r.params.retries)
    print(f"calibration-kill: expected {want}\n  of which requests cut off by the kill left "
          f"{expected.for_unanswered(ledger)}\n  reported {run.summary}")
    assert [f["action"] for f in run.faults] == ["kill"], run.faults
    assert run.refused + run.indeterminate > 0, f"the kill refused or cut off no request: {run.summary}"
    assert not want.mismatches(run.data), f"harness miscounted: {want.mismatches(run.data)}"
    assert want.lost > 0 and want.failed > 0 and want.duplicated > 0, f"too few tasks to calibrate: {want}"
