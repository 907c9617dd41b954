"""The capacity section's reading of results.json: which layer holds a knee where it is."""

from __future__ import annotations

from typing import Any

from harness.report.capacity import held_by


def _stages(**p50: float) -> list[dict[str, Any]]:
    names = {"api": "API: send → accepted (2xx)", "wait": "span trigger.wait", "call": "span trigger.call",
             "queue": "accepted → first attempt starts (queue, dispatch)"}
    return [{"stage": names[k], "n": 10, "p50_ms": v, "p99_ms": v * 2} for k, v in p50.items()]


def test_the_stage_that_grows_most_past_the_knee_holds_it() -> None:
    cap = {"knee_rate": 45.0,
           "where_time_goes": {"45": _stages(api=20, queue=900), "67.5": _stages(api=25, queue=4000)}}
    assert held_by(cap) == ("accepted → first attempt starts (queue, dispatch): p50 900 ms at the knee (45/s) → "
                            "4000 ms at 67.5/s")


def test_a_span_inside_the_api_stage_names_the_layer_when_it_grew_as_much() -> None:
    cap = {"knee_rate": 30.0, "where_time_goes": {"30": _stages(api=20, wait=1, call=15, queue=100),
                                                  "45": _stages(api=600, wait=560, call=30, queue=120)}}
    assert held_by(cap).startswith("span trigger.wait: p50 1 ms at the knee (30/s) → 560 ms at 45/s")


def test_no_step_past_the_knee_names_nothing() -> None:
    assert held_by({"knee_rate": 45.0, "where_time_goes": {"45": _stages(api=20)}}) == ""
    assert held_by({"knee_rate": 45.0}) == ""


def test_the_knee_step_is_found_under_its_six_digit_key() -> None:
    """results.json keys where_time_goes by the rate with 6 significant digits (1084.2 for 1084.202)."""
    cap = {"knee_rate": 1084.202, "where_time_goes": {"1084.2": _stages(api=100), "1355.25": _stages(api=224)}}
    assert held_by(cap) == "API: send → accepted (2xx): p50 100 ms at the knee (1084.2/s) → 224 ms at 1355.25/s"
