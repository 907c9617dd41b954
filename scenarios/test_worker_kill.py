"""worker-kill: SIGKILL a worker mid-task, then restart it (native's worker is its API process)."""

from harness.front.pytest_plugin import RunScenario
from harness.model.fault import Fault
from harness.model.scenario import Scenario
from harness.model.schedule import At, Step

SCENARIO = Scenario(
    tier_s=125,
    name="worker-kill",
    fault="SIGKILL one worker process fault_at_s into the load, restart it after downtime_s",
    claim="Hatchet reassigns the dead worker's tasks after its ~30 s heartbeat timeout: 0 lost, maybe duplicates; "
          "Celery redelivers them after its visibility timeout",
    # A 10 s execution timeout (5x the job): Celery's visibility timeout follows it (25 s), so the tier waits no
    # longer for a redelivery than the settings require.
    defaults={"job_s": 2.0, "downtime_s": 2.0, "execution_timeout_s": 10.0},
    steps=lambda p: [Step(At(p.fault_at_s), Fault("kill", "worker", p.downtime_s))],
    # Celery's defaults acknowledge a task when it starts: the naive configuration runs beside the recommended one.
    expect={"native": "loses", "hatchet": "keeps", "celery": "keeps", "celery-defaults": "loses"},
    smoke=True,
    also=("celery-defaults",),
)


def test_worker_kill(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    assert r.hatchet.lost == 0, f"hatchet lost tasks of the killed worker: {r.hatchet.summary}"
    assert r.native.lost > 0, f"native kept every accepted task through SIGKILL: {r.native.summary}"
    print(f"hatchet: {r.hatchet.duplicated} duplicated, {r.hatchet.retried} retried, "
          f"recovery {r.hatchet.recovery_s} s")
    celery, defaults = r.celery, r.runs["celery-defaults"]
    print(f"celery: {celery.summary}\ncelery-defaults: {defaults.summary}")
    # Measured: the recommended settings bring the killed worker's tasks back (retried), yet a task published
    # in the instant of the kill can be popped by the dead worker's pending BRPOP and vanish (README).
    assert celery.retried > 0, f"celery never redelivered the killed worker's tasks: {celery.summary}"
    assert celery.lost < defaults.lost, f"acks late should keep what acks early loses: {celery.summary} vs " \
                                        f"{defaults.summary}"
