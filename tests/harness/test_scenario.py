"""Tests of harness/scenario.py: parameter overrides, their coercion and layering."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from apps.common.contract import TaskConfig
from harness.faults import Fault
from harness.scenario import ParamError, Params, Scenario
from harness.schedule import At, Step


def test_override_returns_a_copy() -> None:
    base = Params()
    changed = base.override({"rate": 50.0})
    assert changed.rate == 50.0
    assert base.rate == Params.rate == 20.0
    assert dataclasses.replace(changed, rate=base.rate) == base


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("rate", "2.5", 2.5),
        ("rate", "10", 10.0),
        ("rate", 7, 7.0),
        ("duration_s", "1e1", 10.0),
        ("retries", "7", 7),
        ("retries", " 4 ", 4),
        ("seed", 42, 42),
        ("kind", "cpu", "cpu"),
        ("downstream", "true", True),
        ("downstream", "TRUE", True),
        ("downstream", "yes", True),
        ("downstream", "1", True),
        ("downstream", "false", False),
        ("downstream", "No", False),
        ("downstream", "0", False),
        ("hang_ignores_cancel", True, True),
    ],
)
def test_override_coerces_to_the_field_type(name: str, value: Any, expected: Any) -> None:
    got = getattr(Params().override({name: value}), name)
    assert got == expected
    assert type(got) is type(expected)


def test_override_accepts_dashed_names() -> None:
    p = Params().override({"duration-s": "3", "fail-p": "0.5"})
    assert (p.duration_s, p.fail_p) == (3.0, 0.5)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("downstream", "maybe"),
        ("downstream", "2"),
        ("downstream", 1),
        ("retries", "2.5"),
        ("retries", "three"),
        ("retries", 2.5),
        ("retries", True),
        ("rate", "fast"),
        ("rate", None),
        ("kind", 3),
    ],
)
def test_override_rejects_values_of_the_wrong_type(name: str, value: Any) -> None:
    with pytest.raises(ParamError, match=f"parameter {name}: expected"):
        Params().override({name: value})


def test_override_rejects_bool_for_float_field() -> None:
    with pytest.raises(ParamError):
        Params().override({"rate": True})


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(ParamError) as exc:
        Params().override({"rat": "5"})
    msg = str(exc.value)
    assert "unknown parameter 'rat'" in msg
    known = sorted(f.name for f in dataclasses.fields(Params))
    assert f"(known: {', '.join(known)})" in msg


def test_param_error_is_a_value_error() -> None:
    assert issubclass(ParamError, ValueError)


# ---- Scenario.params layering ---------------------------------------------------------------


SCENARIO = Scenario(
    name="test-scenario",
    fault="kill the api at fault_at_s",
    claim="nothing",
    defaults={"rate": 5.0, "retries": 1, "fault_at_s": "2"},
    steps=lambda p: [Step(At(p.fault_at_s), Fault("kill", "api", duration_s=p.downtime_s))],
)


def test_params_defaults_then_scenario_then_user() -> None:
    p = SCENARIO.params({"rate": "7", "seed": "9"})
    assert p.rate == 7.0, "user beats scenario"
    assert p.seed == 9, "user beats Params default"
    assert p.retries == 1, "scenario beats Params default"
    assert p.fault_at_s == 2.0, "scenario defaults are coerced too"
    assert p.duration_s == Params().duration_s, "untouched fields keep Params defaults"


def test_params_without_overrides_are_scenario_defaults() -> None:
    assert SCENARIO.params() == Params(rate=5.0, retries=1, fault_at_s=2.0)
    assert SCENARIO.params({}) == SCENARIO.params(None)


def test_scenario_with_bad_default_raises() -> None:
    bad = Scenario(name="bad", fault="-", claim="-", defaults={"no_such_knob": 1})
    with pytest.raises(ParamError, match="no_such_knob"):
        bad.params()


def test_scenario_steps_follow_params() -> None:
    p = SCENARIO.params({"fault_at_s": "4.5", "downtime_s": "3"})
    (step,) = SCENARIO.steps(p)
    assert step.when == At(4.5)
    assert step.fault == Fault("kill", "api", duration_s=3.0)
    assert Scenario(name="b", fault="-", claim="-").steps(Params()) == []


def test_scenario_naming_its_systems_ignores_the_selection() -> None:
    assert SCENARIO.systems_for(["native", "hatchet"]) == ["native", "hatchet"]
    own = Scenario(name="c", fault="-", claim="-", systems=("calibration",))
    assert own.systems_for(["native", "hatchet"]) == ["calibration"]


def test_variants_named_in_also_run_after_their_base_when_it_is_selected() -> None:
    cap = Scenario(name="c", fault="-", claim="-", also=("hatchet-naive",))
    assert cap.systems_for(["native", "hatchet"]) == ["native", "hatchet", "hatchet-naive"]
    assert cap.systems_for(["native"]) == ["native"]
    assert cap.systems_for(["hatchet-naive", "hatchet"]) == ["hatchet-naive", "hatchet"], "never twice"


# ---- job_params and task_config ------------------------------------------------------------------


def test_job_params() -> None:
    p = Params().override({"job_s": "0.5", "fail_p": "0.25", "hang_p": "0.1", "hang_s": "40",
                           "hang_ignores_cancel": "yes", "downstream": "true"})
    assert p.job_params() == {"duration_s": 0.5, "fail_p": 0.25, "hang_p": 0.1, "hang_s": 40.0,
                              "hang_ignores_cancel": True, "downstream": True}


def test_task_config() -> None:
    p = Params().override({"retries": "5", "execution_timeout_s": "12", "slots": "8", "seed": "77"})
    tc = p.task_config()
    assert isinstance(tc, TaskConfig)
    assert (tc.retries, tc.execution_timeout_s, tc.slots, tc.seed) == (5, 12.0, 8, 77)
    assert tc.trigger_threads == Params().trigger_threads == 64
    assert Params().override({"trigger_threads": "0"}).task_config().trigger_threads == 0
    assert (tc.backoff_factor, tc.backoff_max_s) == (TaskConfig().backoff_factor, TaskConfig().backoff_max_s)


def test_load_plan_carries_rate_duration_kind_and_job_params() -> None:
    p = Params().override({"rate": "30", "duration_s": "4", "kind": "cpu", "client_timeout_s": "2"})
    plan = p.load()
    assert (plan.rate, plan.duration_s, plan.kind, plan.timeout_s) == (30.0, 4.0, "cpu", 2.0)
    assert plan.params == p.job_params()
