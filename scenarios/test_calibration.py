"""calibration: the calibration system, faulty at known points; the harness must report exactly those."""

from apps.calibration import expected
from harness.front.pytest_plugin import RunScenario
from harness.model.scenario import Scenario

SCENARIO = Scenario(
    tier_s=15,
    name="calibration",
    fault="none from the harness; the calibration system drops every 7th task, fails every 13th, runs every 11th twice",
    claim="the harness reports exactly the losses, failures and duplicates the calibration system is built to make",
    defaults={"rate": 50.0, "duration_s": 6.0},
    systems=("calibration",),
)


def test_calibration(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    run, plan = r.calibration, r.params.load()
    assert run.attempted == plan.count and run.accepted == plan.count, f"all {plan.count} accepted? {run.summary}"
    # Nothing refused: the accepted ids are every id the plan sends, and the counts follow from them alone.
    want = expected.for_accepted([plan.task_id(i) for i in range(plan.count)], r.params.retries)
    print(f"calibration: expected {want}\n             reported {run.summary}")
    assert not want.mismatches(run.data), f"harness miscounted: {want.mismatches(run.data)}"
    assert want.lost > 0 and want.failed > 0 and want.duplicated > 0, f"too few tasks to calibrate: {want}"
