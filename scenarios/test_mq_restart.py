"""mq-restart: SIGKILL the engine's message queue (RabbitMQ), restart it on the same data after downtime_s."""

from harness.front.pytest_plugin import RunScenario, described, unexplained
from harness.model.fault import Fault
from harness.model.scenario import Scenario
from harness.model.schedule import At, Step

SCENARIO = Scenario(
    tier_s=110,
    name="mq-restart",
    fault="SIGKILL the engine's message queue (RabbitMQ) fault_at_s into the load, restart it on the same data after "
          "downtime_s",
    claim="the engine refuses or delays what it cannot queue while RabbitMQ is down; every task it accepted runs",
    defaults={"downtime_s": 5.0, "job_s": 0.5},
    steps=lambda p: [Step(At(p.fault_at_s), Fault("kill", "mq", p.downtime_s))],
    expect={"hatchet": "keeps"},
)


def test_mq_restart(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    assert not r.native.applicable and not r.celery.applicable, "only Hatchet's engine has a message queue"
    hatchet = r.hatchet
    (kill,) = [f for f in hatchet.faults if f["action"] == "kill"]
    print(f"hatchet: {hatchet.summary}; killed {kill['at_s']:.1f}-{kill['until_s']:.1f} s; recovery "
          f"{hatchet.recovery_s} s; crashes {hatchet.crashes}")
    assert hatchet.identities_broken == [], hatchet.identities_broken
    # A task accepted as RabbitMQ dies can be gone (the engine publishes without confirms: the finding
    # hatchet-rabbitmq-lost-at-cut); what must hold is where a loss comes from.
    losses = r.losses("hatchet")
    print(f"lost: {described(losses)}")
    bad = unexplained(hatchet, losses, kill["at_s"], kill["until_s"])
    assert not bad, f"lost tasks the restart cannot explain (started, or accepted outside it): {bad}; {hatchet.summary}"
    assert hatchet.completed + hatchet.lost == hatchet.accepted, hatchet.summary
