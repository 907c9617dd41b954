"""downstream-burst: the harness's own probe of its downstream service under a burst of calls (native only).

A native API frozen for 10 s takes every request queued meanwhile at once when it thaws, so about a
hundred jobs call the downstream service together; then the downstream links get 500 ms of latency.
The old stand-in service (a thread per connection, an accept backlog of 5) fell behind for good
after this: every attempt failed with ReadTimeout from ~10 s after the latency fault to the end of
the run, an artefact of the harness, not of BackgroundTasks. This scenario keeps that probe: after
the last heal, attempts must stop failing within RECOVER_S, and the harness's instruments must not
have found it the bottleneck (harness.analysis.instruments).
"""

from harness.front.pytest_plugin import RunScenario
from harness.model.fault import Fault
from harness.model.scenario import Scenario
from harness.model.schedule import At, Step

RECOVER_S = 15.0
"""After the last heal, attempts may fail this long (those caught by the faults); none after it."""

SCENARIO = Scenario(
    tier_s=90,
    name="downstream-burst",
    fault="SIGKILL the API 3 s at 5 s, SIGSTOP it 10 s at 20 s (a burst of calls on thaw), "
          "500 ms latency on every job->downstream link 8 s at 40 s",
    claim="the harness's downstream service keeps up with a burst of calls: failures stop within 15 s of the "
          "last heal instead of lasting to the end (a probe of the harness, native only)",
    defaults={"duration_s": 80.0, "rate": 10.0, "job_s": 1.0, "downstream": True},
    steps=lambda p: [Step(At(5.0), Fault("kill", "api", 3.0)),
                     Step(At(20.0), Fault("pause", "api", 10.0)),
                     Step(At(40.0), Fault("latency", "*->downstream", 8.0, pick="all", params={"latency": 500}))],
    systems=("native",),
)


def test_downstream_burst(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    run = r.native
    ledger = r.ledger_of("native")
    try:
        t0 = float(ledger.meta()["t0"])
        measured = {op.task_id for op in ledger.ops("measure")}
        events = [e for e in ledger.events() if e.task_id in measured]
    finally:
        ledger.close()
    healed = max(f["until_s"] for f in run.faults)
    cutoff = healed + RECOVER_S
    errors = [e.t - t0 for e in events if e.type == "error"]
    late_starts = sum(1 for e in events if e.type == "start" and e.t - t0 > cutoff)
    late_effects = sum(1 for e in events if e.type == "effect" and e.t - t0 > cutoff)
    late_errors = [t for t in errors if t > cutoff]
    print(f"downstream-burst: last heal at {healed:.1f} s; {len(errors)} failed attempts in all, "
          f"{len(errors) - len(late_errors)} up to {cutoff:.1f} s, {len(late_errors)} after it "
          f"(last failure at {max(errors, default=0.0):.1f} s); after it {late_starts} attempts started and "
          f"{late_effects} effects; harness degraded: {run.harness_degraded} {run.harness_degraded_reason}")
    assert late_starts >= 50 and late_effects >= 50, f"too little load after {cutoff:.1f} s to tell: {run.summary}"
    assert not late_errors, f"{len(late_errors)} attempts failed more than {RECOVER_S:g} s after the last heal"
    assert not run.harness_degraded, run.harness_degraded_reason
