"""mq-outage: every link to the engine's message queue (RabbitMQ) down for downtime_s, then up again."""

from harness.front.pytest_plugin import RunScenario, described, unexplained
from harness.model.fault import Fault
from harness.model.scenario import Scenario
from harness.model.schedule import At, Step

SCENARIO = Scenario(
    tier_s=115,
    name="mq-outage",
    fault="every link to the engine's message queue (engine->mq, engine-api->mq) down for downtime_s (connections "
          "cut and refused), then up again",
    claim="what the engine refuses, delays or loses while its queue is unreachable; every task it accepted runs",
    defaults={"downtime_s": 5.0, "job_s": 0.5},
    steps=lambda p: [Step(At(p.fault_at_s), Fault("link-down", "*->mq", p.downtime_s, pick="all"))],
    expect={"hatchet": "keeps"},
)


def test_mq_outage(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    assert not r.native.applicable and not r.celery.applicable, "only Hatchet's engine has a message queue"
    hatchet = r.hatchet
    (cut,) = [f for f in hatchet.faults if f["action"] == "link-down"]
    assert sorted(cut["target"].split(",")) == ["engine->mq", "engine-api->mq"], cut
    print(f"hatchet: {hatchet.summary}; cut {cut['at_s']:.1f}-{cut['until_s']:.1f} s; recovery {hatchet.recovery_s} s;"
          f" crashes {hatchet.crashes}")
    assert hatchet.identities_broken == [], hatchet.identities_broken
    # Measured, not hoped: mostly 0 lost, but 1 of 160 in a CI run (2026-12-06), accepted 0.25 s into the cut and
    # never started (the finding hatchet-rabbitmq-lost-at-cut; the engine publishes without confirms). What must
    # hold is where a loss comes from: never started, accepted in the cut's instant or during it.
    losses = r.losses("hatchet")
    print(f"lost: {described(losses)}")
    bad = unexplained(hatchet, losses, cut["at_s"], cut["until_s"])
    assert not bad, f"lost tasks the cut cannot explain (started, or accepted outside it): {bad}; {hatchet.summary}"
