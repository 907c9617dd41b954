"""capacity: a rising open-loop rate finds each system's knee on this machine (harness/capacity.py)."""

import dataclasses
from typing import Any

from harness.front.pytest_plugin import RunScenario
from harness.model.scenario import Scenario

SCENARIO = Scenario(
    tier_s=250,
    name="capacity",
    fault="none: the open-loop rate rises by step_factor every step_s until two steps in a row fall behind",
    claim="each system's knee: the highest rate it accepts, and completes, without a growing backlog",
    # 10/s x 1.25 every 4 s reaches ~2 100/s (near one Locust process's closed-loop ceiling here) within
    # 100 s; the load stops two steps past the knee. Steps of 1.25 put a knee within 25 % of the truth.
    defaults={"rate": 10.0, "step_s": 4.0, "step_factor": 1.25, "duration_s": 100.0, "drain_quiet_s": 20.0,
              "drain_deadline_s": 120.0, "ladders": 3},
    # Hatchet's SDK triggers through the event loop's default executor (6 threads here): the naive
    # configuration runs beside the tuned one, so the pitfall is measured in the same run.
    # hatchet-lite (the Postgres queue) beside the production set-up (RabbitMQ): what the queue costs; celery-fsync
    # (Redis fsyncing every write, as Hatchet's Postgres does) beside Celery's everysec: durability on equal footing.
    also=("hatchet-naive", "hatchet-lite", "celery-fsync"),
    # Knees and latencies on two cores: each system alone on the machine.
    side_by_side=False,
)


QUICK = {"rate": 20.0, "step_s": 1.5, "step_factor": 1.5, "duration_s": 30.0, "ladders": 1, "reference_s": 6.0,
         "warmup": 3}
"""The CI tier's ladder: steps of x1.5 every 1.5 s, once, 6 s ceilings (a knee within 50 %, a sanity check of the
machinery); `make report` and `harness run capacity` keep the scenario's own (x1.25 every 4 s, three ladders, 20 s
ceilings) for the published figures."""


CI_SCENARIO = dataclasses.replace(SCENARIO, also=("hatchet-naive",))
"""The CI tier's capacity: the compared systems and hatchet-naive (the pitfall its assertion is about); hatchet-lite
and celery-fsync, which only add figures, are measured by `make report` (the scenario's own ``also``)."""


def test_capacity(run_scenario: RunScenario) -> None:
    r = run_scenario(CI_SCENARIO, **QUICK)
    for run in r.runs.values():
        cap = run.capacity
        print(f"{run.system}: knee {cap['knee_rate']:g}/s (completes {cap['max_sustained_tps']:g}/s), "
              f"accepts up to {cap['accept_knee_rate']:g}/s ({cap['max_accepted_tps']:g}/s), "
              f"saturated {cap['saturated']}; steps: "
              + ", ".join(f"{s['rate']:g}->{s['completed_tps']:g}" for s in cap["steps"]))
        assert cap["knee_rate"] > 0, f"{run.system}: no step sustained: {cap['steps']}"
        assert cap["max_sustained_tps"] > 0, f"{run.system}: {run.summary}"
        assert cap["reference"]["generator_req_per_s"] > 0, cap["reference"]
        assert run.links["proxied"] == [], f"no fault here, so no link goes through Toxiproxy: {run.links}"
    hatchet, naive = r.hatchet, r.runs["hatchet-naive"]
    ref = hatchet.capacity["reference"]
    print(f"hatchet reference: engine {ref.get('engine_runs_per_s')} runs/s (hatchet-loadtest), Postgres commits/s "
          f"{ref.get('postgres_commits_per_s')}; knee/engine {hatchet.capacity.get('knee_vs_engine')}; "
          f"naive knee {naive.capacity['knee_rate']:g}/s")
    assert ref["engine_runs_per_s"] > 0, ref["details"].get("engine")
    assert all(v > 0 for v in ref["postgres_commits_per_s"].values()) and len(ref["postgres_commits_per_s"]) == 3
    # Measured: on two shared cores the engine and its Postgres hold both configurations near the same knee, so the
    # knees are printed, not ranked. What the executor decides is where a trigger waits: past its knee the naive
    # API's triggers queue for one of the SDK's six threads, the tuned API's never do.
    past = {run.system: _spans_past_knee(run.capacity) for run in (hatchet, naive)}
    print(f"one step past the knee: (rate/s, trigger.wait p50/p99 ms, trigger.call p50 ms): {past}")
    assert past["hatchet"] is not None and past["hatchet-naive"] is not None, past
    rate, wait, wait_p99, call = past["hatchet-naive"]
    busy = rate * (call + wait) / 1000  # Little's law: triggers in the executor at once
    # The sized executor never makes a trigger wait. The SDK's default one (6 threads here) does once about as many
    # triggers are in it as it has threads; a naive ladder whose knee came earlier (the engine under the machine's
    # load) never got there, and then the executor is not what set its knee: said, not asserted.
    assert past["hatchet"][1] < 5.0, f"the sized executor made triggers wait: {past['hatchet']}"
    if busy >= SDK_THREADS * 2 / 3:
        assert wait_p99 > 5 * max(past["hatchet"][2], 1.0), \
            f"{busy:.1f} triggers in the SDK's {SDK_THREADS}-thread executor at once, no wait beyond the sized one's"
    else:
        print(f"hatchet-naive's knee came with {busy:.1f} triggers in its executor at once, under its {SDK_THREADS} "
              "threads: the executor did not set it in this ladder")


SDK_THREADS = 6
"""The SDK's default trigger executor on this machine kind: min(32, cores + 4) with 2 cores."""


def _spans_past_knee(cap: dict[str, Any]) -> tuple[float, float, float, float] | None:
    """One step past the knee: its rate, trigger.wait p50 and p99, trigger.call p50 (ms)."""
    steps = sorted((float(rate), {s["stage"]: s for s in stages}) for rate, stages in cap["where_time_goes"].items()
                   if float(rate) > cap["knee_rate"] * 1.0001)
    if not steps or "span trigger.wait" not in steps[0][1] or "span trigger.call" not in steps[0][1]:
        return None
    rate, by = steps[0]
    return (rate, by["span trigger.wait"]["p50_ms"], by["span trigger.wait"]["p99_ms"],
            by["span trigger.call"]["p50_ms"])
