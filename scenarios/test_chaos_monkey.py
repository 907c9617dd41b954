"""chaos-monkey (soak): random seeded faults from the whole catalog for minutes."""

from harness.front.pytest_plugin import RunScenario
from harness.model.fault import Fault
from harness.model.scenario import Scenario
from harness.model.schedule import Every, Step

FAULTS = (
    Fault("kill", "worker", 3.0, pick="random"),
    Fault("terminate", "worker", 1.0, pick="random"),
    Fault("pause", "worker", 10.0, pick="random"),
    Fault("kill", "api", 2.0),
    Fault("kill", "engine", 5.0),
    Fault("link-down", "*->engine", 8.0, pick="random"),
    Fault("link-down", "engine->postgres", 5.0),
    Fault("latency", "*->downstream", 8.0, pick="all", params={"latency": 500}),
)

SCENARIO = Scenario(
    name="chaos-monkey",
    fault="every ~30 s one fault drawn (seeded) from kills, pauses, restarts and link faults",
    claim="nothing accepted is lost (Hatchet), whatever the faults",
    defaults={"duration_s": 300.0, "rate": 10.0, "job_s": 1.0, "downstream": True, "retries": 5},
    steps=lambda p: [Step(Every(30.0, start_s=10.0, until_s=p.duration_s - 20, jitter_s=10.0), FAULTS[0], FAULTS[1:])],
    tier="soak",
    expect={"native": "loses", "hatchet": "keeps", "celery": "keeps"},
)


def test_chaos_monkey(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    assert r.hatchet.lost == 0, r.hatchet.summary
    print(f"native under the same (applicable) faults: {r.native.summary}\ncelery: {r.celery.summary}")
