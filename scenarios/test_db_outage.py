"""db-outage: the engine's link to its Postgres goes down for downtime_s."""

from harness.front.pytest_plugin import RunScenario, described, unexplained
from harness.model.fault import Fault
from harness.model.scenario import Scenario
from harness.model.schedule import At, Step

SCENARIO = Scenario(
    tier_s=190,
    name="db-outage",
    fault="partition the engine from its Postgres for downtime_s, then heal",
    claim="accepts fail during the outage (not lost); accepted tasks finish later",
    # Quiet 75 s before a missing task counts as lost: Hatchet's idle queue loop (up to 45 s) plus its 30 s heartbeat
    # timeout; no engine restarts here (the system's own 120 s covers that).
    defaults={"downtime_s": 5.0, "job_s": 0.5, "drain_quiet_s": 75.0},
    steps=lambda p: [Step(At(p.fault_at_s), Fault("link-down", "engine->postgres", p.downtime_s))],
    expect={"hatchet": "keeps"},
    # The Postgres queue (hatchet-lite) beside RabbitMQ: is the at-most-once loss the queue's?
    also=("hatchet-lite",),
)


def test_db_outage(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    assert not r.native.applicable and not r.celery.applicable, \
        "only Hatchet's engine has a database: the others must say not applicable"
    hatchet = r.hatchet
    (cut,) = hatchet.faults
    losses = r.losses("hatchet")
    print(f"hatchet: {hatchet.summary}; cut {cut['at_s']:.1f}-{cut['until_s']:.1f} s; lost: {described(losses)}")
    assert hatchet.refused > 0, f"the cut was never felt by a client: {hatchet.summary}"
    # Measured, not hoped: Hatchet usually loses nothing here (0 of 97-129 in every run on a quiet
    # machine), but its engine acknowledges a trigger once the message is on its own internal queue
    # and pre-acks that message before writing the run; when the cut closes the connection in
    # between ("error pre-acking message ... could not trigger workflows from names: conn closed"),
    # the acknowledged run is gone: 8 of 97 in one CI run on a loaded machine (the finding
    # hatchet-pg-mq-at-most-once). So what must hold is where a loss can come from: a run no worker
    # ever started, accepted before the heal.
    bad = unexplained(hatchet, losses, 0.0, cut["until_s"])
    assert not bad, f"lost tasks a worker started or that were accepted after the heal: {bad}"
