"""Tests of harness/scenario.py: parameter overrides, their coercion and layering."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from apps.common.contract import TaskConfig
from harness.front.catalog import discover
from harness.model.fault import Fault
from harness.model.params import LIMITS, ParamError, Params
from harness.model.scenario import Scenario
from harness.model.schedule import AfterAccepted, At, Every, Step, WhenInFlight


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
    with pytest.raises(ParamError, match=f"^parameter {name}=.*: allowed "):
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
KILL = Fault("kill", "api", 1.0)


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
    tc = TaskConfig(**p.task_config())  # plain data in the model; the apps' contract reads it
    assert (tc.retries, tc.execution_timeout_s, tc.slots, tc.seed) == (5, 12.0, 8, 77)
    assert tc.trigger_threads == Params().trigger_threads == 64
    assert Params().override({"trigger_threads": "0"}).task_config()["trigger_threads"] == 0
    assert (tc.backoff_factor, tc.backoff_max_s) == (TaskConfig().backoff_factor, TaskConfig().backoff_max_s)


def test_load_plan_carries_rate_duration_kind_and_job_params() -> None:
    p = Params().override({"rate": "30", "duration_s": "4", "kind": "cpu", "client_timeout_s": "2"})
    plan = p.load()
    assert (plan.rate, plan.duration_s, plan.kind, plan.timeout_s) == (30.0, 4.0, "cpu", 2.0)
    assert plan.params == p.job_params()


# ---- ranges: every parameter checked before anything starts -------------------------------------

def test_every_parameter_has_a_limit_and_every_default_is_inside_it() -> None:
    assert list(LIMITS) == [f.name for f in dataclasses.fields(Params)]
    Params().check()
    for scenario in discover().values():
        scenario.params()  # raises if a scenario's own defaults were out of range


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        # The nine inputs of issue 14 that used to run (or crash) instead of being refused.
        ("rate", "-5", "parameter rate=-5: allowed a finite number > 0 and <= 100000"),
        ("duration_s", "nan", "parameter duration_s=nan: allowed a finite number > 0 and <= 86400"),
        ("rate", "inf", "parameter rate=inf: allowed a finite number > 0 and <= 100000"),
        ("rate", "1e400", "parameter rate=1e400: allowed a finite number > 0 and <= 100000"),
        ("rate", "0", "parameter rate=0: allowed a finite number > 0"),
        ("warmup", "-1", "parameter warmup=-1: allowed an integer from 0 to 10000"),
        ("step_factor", "0.5", "parameter step_factor=0.5: allowed a finite number > 1 and <= 10"),
        ("downtime_s", "-1", "parameter downtime_s=-1: allowed a finite number from 0 to 86400"),
        ("duration_s", "1e9", "parameter duration_s=1e9: allowed a finite number > 0 and <= 86400 (a day; "
                              "allow_long=true: up to 2592000)"),
        # More of the same kind.
        ("seed", "-1", "parameter seed=-1: allowed an integer from 0 to 9223372036854775807"),
        ("seed", str(2**63), "parameter seed=9223372036854775808: allowed an integer from 0"),
        ("rate", 10**400, "parameter rate=1000000000000000000"),
        ("fail_p", "1.5", "parameter fail_p=1.5: allowed a finite number from 0 to 1"),
        ("slots", "0", "parameter slots=0: allowed an integer from 1 to 10000"),
        ("kind", "gpu", "parameter kind=gpu: allowed one of sleep, cpu"),
        ("job_s", "3601", "parameter job_s=3601: allowed a finite number from 0 to 3600"),
        ("execution_timeout_s", "0", "parameter execution_timeout_s=0: allowed a finite number > 0"),
        ("drain_deadline_s", "-inf", "parameter drain_deadline_s=-inf: allowed"),
        ("rate", "1\n2", "parameter rate='1\\n2': allowed"),
        ("rate", "", "parameter rate='': allowed"),
        ("retries", "9" * 5000, "parameter retries=9999"),
    ],
)
def test_out_of_range_values_are_refused_in_one_line_naming_the_range(name: str, value: Any, message: str) -> None:
    with pytest.raises(ParamError) as exc:
        SCENARIO.params({name: value})
    assert str(exc.value).startswith(message), str(exc.value)
    assert "\n" not in str(exc.value)


def test_allow_long_lifts_the_one_day_ceiling_to_thirty_days() -> None:
    assert SCENARIO.params({"duration_s": "1e6", "allow_long": "true"}).duration_s == 1e6
    with pytest.raises(ParamError, match=r"^parameter duration_s=3e6: allowed a finite number > 0 and <= 2592000$"):
        SCENARIO.params({"duration_s": "3e6", "allow_long": "true"})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"step_s": "10"}, "parameter step_s=10: allowed 0 (no ladder) or up to duration_s (8)"),
        ({"step_s": "0.001"}, "parameter step_s=0.001: allowed at least duration_s/1000 (0.008)"),
        ({"step_s": "1", "step_factor": "9", "duration_s": "8"},
         "parameter step_factor=9: the ladder's last step would send 2.39148e+07 requests/s; allowed up to 100000"),
        ({"step_s": "1", "rate": "0.0001"}, "parameter rate=0.0001: the ladder's rates must rise step by step"),
        ({"rate": "0.01"}, "parameter rate=0.01: the measured load would send no request"),
        ({"duration_s": "2"}, "parameter duration_s=2: allowed above 2, else scenario test-scenario's fault at 2 s "
                              "never fires"),
        ({"fault_at_s": "8"}, "parameter fault_at_s=8: allowed below duration_s (8), else scenario "
                              "test-scenario's fault never fires"),
    ],
)
def test_parameters_that_contradict_each_other_are_refused(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ParamError) as exc:
        SCENARIO.params(overrides)
    assert str(exc.value).startswith(message), str(exc.value)


def test_every_fault_time_past_the_load_is_named() -> None:
    late = Scenario(name="late", fault="-", claim="-", defaults={"duration_s": 60.0},
                    steps=lambda p: [Step(At(5.0), KILL), Step(At(20.0), KILL), Step(At(40.0), KILL)])
    with pytest.raises(ParamError, match=r"^parameter duration_s=20: allowed above 40, else scenario late's faults "
                                         r"at 20, 40 s never fire$"):
        late.params({"duration_s": "20"})


def test_a_schedule_that_can_never_fire_is_refused() -> None:
    every = Scenario(name="every", fault="-", claim="-", defaults={"duration_s": 60.0},
                     steps=lambda p: [Step(Every(30.0, start_s=10.0, until_s=p.duration_s - 20), KILL)])
    every.params({"duration_s": "31"})
    with pytest.raises(ParamError, match=r"^parameter duration_s=25: too short for scenario every: its faults "
                                         r"\(from 10 s until 5 s\) would never fire$"):
        every.params({"duration_s": "25"})
    after = Scenario(name="after", fault="-", claim="-", steps=lambda p: [Step(AfterAccepted(100), KILL)])
    after.params({"rate": "20", "duration_s": "5"})
    with pytest.raises(ParamError, match="waits for 100 accepted tasks, but the load sends 80"):
        after.params({"rate": "10"})
    in_flight = Scenario(name="busy", fault="-", claim="-", steps=lambda p: [Step(WhenInFlight(5, 9.0), KILL)])
    with pytest.raises(ParamError, match=r"its faults \(from 9 s until 8 s\) would never fire"):
        in_flight.params()
