"""The command line: bad input gets one clear line and exit status 2, and nothing runs."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from apps.common.contract import TaskRequest
from harness.backends.base import free_port
from harness.front.catalog import discover
from harness.front.cli import main
from harness.front.preflight import select_runs
from harness.model.params import DAY_S, LIMITS, LONG_S, Params
from harness.model.paths import PROJECT_ROOT
from harness.model.scenario import Scenario
from harness.model.schedule import At
from harness.model.spec import SystemSpec, find_systems, selections


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=60)


def test_list_names_every_scenario_and_system() -> None:
    out = harness("list")
    assert out.returncode == 0, out.stderr
    for name in ("baseline", "app-kill", "worker-kill", "calibration", "calibration-kill", "native", "hatchet"):
        assert name in out.stdout
    assert "  calibration        [systems: calibration]" in out.stdout
    assert "systems (`all`: native, hatchet, celery; `both`: native, hatchet):" in out.stdout


def _names(runs: list[tuple[Scenario, list[SystemSpec]]]) -> dict[str, list[str]]:
    return {scenario.name: [s.name for s in specs] for scenario, specs in runs}


def test_all_is_the_three_way_comparison_and_both_native_vs_hatchet() -> None:
    runs = _names(select_runs(["all"], selections()["all"], discover(), find_systems()))
    assert "baseline" in runs and "app-kill" in runs and "broker-restart" in runs
    assert not {"calibration", "calibration-kill"} & set(runs), "calibration runs by name, not in `all`"
    assert runs["baseline"] == ["native", "hatchet", "celery"], runs
    assert runs["capacity"] == ["native", "hatchet", "hatchet-naive", "hatchet-lite", "celery", "celery-fsync"], \
        "variants in `also` follow their base"
    both = _names(select_runs(["baseline"], selections()["both"], discover(), find_systems()))
    assert both == {"baseline": ["native", "hatchet"]}


def test_a_scenario_naming_its_systems_runs_against_them_only() -> None:
    known, systems = discover(), find_systems()
    for system_arg in (selections()["both"], ("native",), ("hatchet", "native")):
        runs = _names(select_runs(["calibration", "baseline"], system_arg, known, systems))
        assert runs["calibration"] == ["calibration"], (system_arg, runs)
    assert _names(select_runs(["baseline"], ("calibration",), known, systems)) == {"baseline": ["calibration"]}


def test_help_explains_every_run_option() -> None:
    out = harness("run", "--help")
    assert out.returncode == 0
    for option in ("--system", "--seed", "--param", "--out", "SCENARIO"):
        assert option in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "no-such-scenario"], "unknown scenario 'no-such-scenario'"),
        (["run", "baseline", "--system", "rq"], "--system 'rq'"),
        (["run", "baseline", "--engine", "cloud"], "invalid choice"),
        (["run", "baseline", "--param", "rate"], "expected NAME=VALUE"),
        (["run", "baseline", "--param", "nonsense=1"], "unknown parameter 'nonsense'"),
        (["run", "baseline", "--param", "rate=fast"], "parameter rate=fast: allowed a finite number > 0"),
        (["run", "baseline", "--seed", "x"], "invalid int value"),
        (["run", "baseline", "--ledger", "mysql://h/db"], "--ledger 'mysql://h/db': expected sqlite, pg"),
        (["up", "--system", "native", "--ledger", "postgres"], "--ledger 'postgres': expected sqlite, pg"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
        (["run", "baseline", "--system", "native,native"], "--system 'native,native': native is named twice"),
        (["run", "baseline", "--param", "rate=20", "--param", "rate=30"],
         "--param rate: given twice with different values (20 and 30)"),
        (["run", "baseline", "--seed", "3", "--param", "seed=4"], "--seed 3 and --param seed=4: two different seeds"),
        (["run", "baseline", "baseline"], "scenario 'baseline' is named twice"),
        (["run", "baseline", "--parallel", "--serial"], "--parallel and --serial: choose one"),
        (["run", "baseline", "--dockerd", "auto"], "--dockerd auto starts a Docker engine for --backend docker"),
        (["run", "baseline", "--hosts", "2", "--backend", "docker"], "--hosts places processes on network hosts"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    out = harness(*args)
    assert out.returncode == 2, (out.returncode, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert message in lines[-1], out.stderr
    assert lines[-1].startswith("harness: error:")
    assert "Traceback" not in out.stderr


def test_an_unreachable_ledger_server_is_refused_before_anything_starts(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    out = harness("run", "baseline", "--out", str(tmp_path / "out"), "--ledger", f"postgresql://u:s3cret@127.0.0.1:{port}/db")
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"harness: error: --ledger postgresql://u@127.0.0.1:{port}/db: "
                                                   "cannot use it ("), out.stderr
    assert "s3cret" not in out.stderr + out.stdout
    assert "starting" not in out.stdout and not (tmp_path / "out").exists()


def test_unwritable_out_is_refused_before_anything_starts(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = harness("run", "baseline", "--out", str(blocker / "sub"))
    assert out.returncode == 2, out.stderr
    expected = f"harness: error: --out {blocker / 'sub'}: cannot create it (Not a directory)"
    assert out.stderr.strip().splitlines() == [expected]
    assert "starting stack" not in out.stdout


def test_out_holding_an_earlier_run_is_refused(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text("{}")
    out = harness("run", "baseline", "--out", str(tmp_path))
    assert out.returncode == 2, out.stderr
    why = "not empty (results of an earlier run would be mixed in); use a new directory"
    assert out.stderr.strip().splitlines() == [f"harness: error: --out {tmp_path}: {why}"]
    assert (tmp_path / "results.json").read_text() == "{}"


# ---- every parameter checked before anything starts ---------------------------------------------

ISSUE_14 = ["rate=-5", "duration_s=nan", "rate=inf", "rate=1e400", "rate=0", "warmup=-1", "step_factor=0.5",
            "downtime_s=-1", "duration_s=1e9"]
"""The inputs that used to start a run (or crash with a traceback) instead of being refused."""


@pytest.mark.parametrize("param", ISSUE_14)
def test_bad_parameters_are_refused_before_anything_starts(tmp_path: Path, param: str) -> None:
    out_dir = tmp_path / "out"
    t0 = time.monotonic()
    out = harness("run", "worker-partition", "--param", param, "--out", str(out_dir))
    took = time.monotonic() - t0
    print(f"{param}: exit {out.returncode} in {took:.2f} s: {out.stderr.strip()}")
    assert out.returncode == 2, out
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"harness: error: parameter {param}: allowed "), line
    assert out.stdout == "" and not out_dir.exists(), "nothing may start, not even the run directory"


def run_in_process(*argv: str) -> tuple[int, str, str]:
    """harness.front.cli.main in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's own errors
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def test_dry_run_prints_the_plan_and_starts_nothing(tmp_path: Path) -> None:
    code, out, err = run_in_process("run", "worker-partition", "app-kill", "--dry-run", "--seed", "7", "--system",
                                    "both", "--param", "rate=30", "--out", str(tmp_path / "never"))
    assert (code, err) == (0, ""), err
    assert out.splitlines()[0] == "dry run: nothing is started"
    assert "scenario worker-partition: cut worker-1's link" in out
    assert "    at 4 s: link-down worker-1->engine|worker-1->broker for 40 s   [nothing to hit in native]" in out
    assert "    at 5 s: kill api for 1 s\n" in out
    assert "load: 30 requests/s for 10 s, 300 requests; job sleep 2 s" in out
    assert " seed=7 " in out and "systems: native, hatchet" in out
    assert not (tmp_path / "never").exists()


SCENARIOS = discover()
NAMES = [f.name for f in dataclasses.fields(Params)]
SPECIAL = ["nan", "-nan", "inf", "-inf", "1e400", "-1e400", "1e-400", "-0", "0", "0.0", "1", "-1", "0.5", "1.5",
           "1e9", "86400", "86401", "2592001", "100000", "100001", "3600", "10", "1000", "10000", "10001",
           str(2**63), str(2**63 - 1), "true", "false", "yes", "No", "", " ", "1_000", "0x10", "1e", "sleep", "cpu",
           "\n", "1\n2", "\x85", "\u2028", "9" * 5000]
VALUES = st.one_of(
    st.sampled_from(SPECIAL),
    st.floats().map(repr),
    st.floats(min_value=-1, max_value=200).map(lambda x: f"{x:g}"),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.text(max_size=12),
)


def inside(name: str) -> st.SearchStrategy[str]:
    """Values in the parameter's own range (mostly small), so that plans get built and cross-checked too."""
    limit = LIMITS[name]
    if limit.type is bool:
        return st.sampled_from(["true", "false", "yes", "no", "1", "0"])
    if limit.type is str:
        return st.sampled_from(limit.choices)
    lo, hi = limit.lo or 0, limit.ceiling(allow_long=False) or 1e6
    if limit.type is int:
        return st.integers(int(lo), int(min(hi, 100))).map(str) | st.integers(int(lo), int(hi)).map(str)
    return (st.floats(lo, min(hi, 60), exclude_min=limit.lo_open).map(lambda x: f"{x:.3g}")
            | st.floats(lo, hi, exclude_min=limit.lo_open).map(repr))


PAIRS = st.sampled_from(NAMES).flatmap(lambda n: st.tuples(st.just(n), st.one_of(inside(n), VALUES)))
OVERRIDES = st.lists(PAIRS, min_size=1, max_size=3).map(dict)


def assert_runnable(scenario: Scenario, params: Params) -> None:
    """What a real run needs of its plan, stated apart from the ranges that were checked."""
    numbers = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)
               if type(getattr(params, f.name)) in (int, float)}
    assert all(math.isfinite(v) and v >= 0 for v in numbers.values()), numbers
    ceiling = LONG_S if params.allow_long else DAY_S
    assert 0 < params.duration_s <= ceiling and params.drain_deadline_s <= ceiling
    load = params.load()
    assert load.count >= 1 and math.isfinite(load.due_s(load.count - 1))
    rates = [r for r, _ in load.schedule()]
    assert all(0 < r <= 100_000 for r in rates) and rates == sorted(set(rates)), rates
    assert sum(s for _, s in load.steps) <= params.duration_s
    # Every task the load sends is one the systems accept: a plan they would answer 422 is no plan.
    TaskRequest.model_validate({"task_id": load.task_id(0), "kind": load.kind, "params": load.params})
    params.task_config()
    for step in scenario.steps(params):
        if isinstance(step.when, At):
            assert step.when.seconds < params.duration_s


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(overrides=OVERRIDES, seed=st.one_of(st.none(), st.integers(min_value=-(2**64), max_value=2**64)))
def test_random_parameters_get_a_plan_or_one_line_and_exit_2(name: str, overrides: dict[str, str],
                                                            seed: int | None) -> None:
    argv = ["run", name, "--dry-run", *(f"--param={k}={v}" for k, v in overrides.items())]
    argv += [f"--seed={seed}"] if seed is not None else []
    code, out, err = run_in_process(*argv)
    event("refused" if code == 2 else "planned")
    if code == 2:
        assert out == "" and err.endswith("\n") and len(err.splitlines()) == 1, (argv, out, err)
        assert err.startswith("harness: error: ") and "Traceback" not in err, err
        return
    assert (code, err) == (0, ""), (argv, code, err)
    assert out.startswith("dry run: nothing is started\n") and f"scenario {name}:" in out
    typed = {**overrides, **({"seed": str(seed)} if seed is not None else {})}
    assert_runnable(SCENARIOS[name], SCENARIOS[name].params(typed))
