"""broker-restart: SIGKILL a system's own broker and restart it (Celery's Redis, with and without persistence)."""

from harness.front.pytest_plugin import RunScenario
from harness.model.fault import Fault
from harness.model.scenario import Scenario
from harness.model.schedule import At, Step

SCENARIO = Scenario(
    tier_s=65,
    name="broker-restart",
    fault="SIGKILL the broker fault_at_s into the load, restart it on the same data after downtime_s",
    claim="with an append-only log the broker keeps every queued task; with Redis's defaults (snapshots only) it "
          "loses them",
    # Few slots make a backlog: tasks wait in the broker's queue (what persistence is about) when it dies.
    defaults={"downtime_s": 3.0, "job_s": 1.0, "slots": 4, "execution_timeout_s": 10.0},
    steps=lambda p: [Step(At(p.fault_at_s), Fault("kill", "broker", p.downtime_s))],
    # Redis's persistence decides this scenario: the defaults variant (RDB snapshots only) runs beside AOF.
    expect={"celery": "keeps", "celery-defaults": "loses"},
    also=("celery-defaults",),
)


def test_broker_restart(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    assert not r.native.applicable and not r.hatchet.applicable, "only a system with a broker of its own applies"
    aof, defaults = r.celery, r.runs["celery-defaults"]
    assert aof.lost == 0, f"celery with AOF lost tasks over a broker restart: {aof.summary}"
    assert defaults.lost > 0, f"celery with Redis's defaults kept every task over a kill: {defaults.summary}"
    print(f"celery (AOF): {aof.summary}\ncelery-defaults (RDB): {defaults.summary}")
