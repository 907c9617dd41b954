"""cpu-heavy: CPU-bound jobs compete with the API for the machine."""

from harness.front.pytest_plugin import RunScenario
from harness.model.scenario import Scenario

SCENARIO = Scenario(
    tier_s=70,
    name="cpu-heavy",
    fault="jobs burn CPU for job_s each (in a thread), at rate per second",
    claim="native's API latency degrades (same process); Hatchet's and Celery's APIs stay fast (separate workers)",
    defaults={"kind": "cpu", "job_s": 0.3, "rate": 6.0, "duration_s": 10.0},
    expect={"native": "keeps", "hatchet": "keeps", "celery": "keeps"},
    # Its verdict compares API latencies: each system alone on the machine.
    side_by_side=False,
)


def test_cpu_heavy(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    native, hatchet, celery = r.native, r.hatchet, r.celery
    for run in (native, hatchet, celery):
        assert run.lost == 0, f"{run.system}: {run.summary}"
    slowdown = {run.system: run.api_latency_ms["p99"] / run.api_latency_unloaded_ms["p99"]
                for run in (native, hatchet, celery)}
    # Relative to its own unloaded API: on a small machine Hatchet's workers share the cores too, so
    # its absolute API latency may still be the higher one; both are printed.
    print(f"API p99 under CPU load / unloaded: {slowdown}; absolute p99 ms: "
          + ", ".join(f"{run.system} {run.api_latency_ms['p99']}" for run in (native, hatchet, celery)))
    assert slowdown["native"] > max(slowdown["hatchet"], slowdown["celery"]), slowdown
