"""baseline: no fault. Both systems must lose nothing; the numbers show the cost of durability."""

from harness.front.pytest_plugin import RunScenario
from harness.model.scenario import Scenario

SCENARIO = Scenario(
    tier_s=55,
    name="baseline",
    fault="none",
    claim="every system loses 0; the cost of durability in latency and throughput",
    expect={"native": "keeps", "hatchet": "keeps", "celery": "keeps"},
)


def test_baseline(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    for run in r.runs.values():
        assert run.accepted == run.attempted, f"{run.system}: {run.summary}"
        assert run.lost == 0, f"{run.system}: {run.summary}"
        assert run.completed == run.accepted, f"{run.system}: {run.summary}"
