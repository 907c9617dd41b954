"""overload: tasks arrive faster than the workers can run them."""

from harness.front.pytest_plugin import RunScenario
from harness.model.scenario import Scenario

SCENARIO = Scenario(
    tier_s=65,
    name="overload",
    fault="arrival rate above the workers' capacity (rate x job_s > slots x workers)",
    claim="native runs everything at once in its own memory; Hatchet's backlog grows in Postgres, Celery's in Redis",
    defaults={"rate": 80.0, "duration_s": 8.0, "job_s": 1.0, "slots": 15},
    expect={"native": "keeps", "hatchet": "keeps", "celery": "keeps"},
)


def test_overload(run_scenario: RunScenario) -> None:
    r = run_scenario(SCENARIO)
    native, hatchet, celery = r.native, r.hatchet, r.celery
    for run in (native, hatchet, celery):
        assert run.lost == 0, f"{run.system}: {run.summary}"
    print(f"pending max: native {native.pending_max}, hatchet {hatchet.pending_max}; "
          f"in flight max: native {native.in_flight_max}, hatchet {hatchet.in_flight_max}; "
          f"API RSS MB: native {native.rss_mb['api']}, hatchet {hatchet.rss_mb['api']}")
    assert hatchet.in_flight_max <= 2 * 15, "hatchet ran more at once than its slots"
    assert hatchet.pending_max > native.pending_max, "the backlog should queue in hatchet, not in native"
    assert native.in_flight_max > hatchet.in_flight_max, "native runs everything at once"
    print(f"celery: pending max {celery.pending_max}, in flight max {celery.in_flight_max}")
    assert celery.in_flight_max <= 2 * 15, "celery ran more at once than its prefork children"
    assert celery.pending_max > native.pending_max, "the backlog should queue in celery's broker, not in native"
