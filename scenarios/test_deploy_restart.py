"""deploy-restart: SIGTERM every app process through its graceful path, then start new ones."""

from harness.front.pytest_plugin import RunScenario, described, unexplained
from harness.model.fault import Fault
from harness.model.scenario import Scenario
from harness.model.schedule import At, Step

SCENARIO = Scenario(
    tier_s=95,
    name="deploy-restart",
    fault="SIGTERM the API and every worker (graceful, grace_s), SIGKILL after grace_s, start new processes",
    claim="native loses tasks longer than the grace period; Hatchet finishes or reassigns them",
    defaults={"job_s": 6.0, "grace_s": 2.0, "downtime_s": 0.0, "execution_timeout_s": 15.0},
    steps=lambda p: [Step(At(p.fault_at_s), Fault("terminate", "api|worker", p.downtime_s, pick="all"))],
    expect={"native": "loses", "hatchet": "keeps", "celery": "keeps"},
    smoke=True,
)


def test_deploy_restart(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    assert r.native.lost > 0, f"native kept tasks longer than its grace period: {r.native.summary}"
    assert r.hatchet.lost == 0, f"hatchet lost tasks over a graceful restart: {r.hatchet.summary}"
    celery = r.celery
    (stop,) = celery.faults
    losses = r.losses("celery")
    print(f"celery: {celery.duplicated} duplicated, {celery.retried} retried (redelivered after the kill); lost: "
          f"{described(losses)}")
    # Measured, not hoped: mostly 0 lost, but 1 of 103 accepted in a CI run (2026-12-06), published 20 ms after the
    # SIGTERM and never started: kombu's BRPOP takes a message off the list before its unacked hash records it, and
    # the worker is SIGKILLed after grace_s (the finding celery-kill-window). What must hold is where a loss comes
    # from: never started, accepted between the SIGTERM and the SIGKILL.
    bad = unexplained(celery, losses, stop["at_s"], stop["at_s"] + r.params.grace_s)
    assert not bad, f"celery lost tasks the restart cannot explain: {bad}; {celery.summary}"
