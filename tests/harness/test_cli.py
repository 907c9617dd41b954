"""The command line: bad input gets one clear line and exit status 2, and nothing runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.catalog import discover
from harness.cli import select_runs
from harness.procs import free_port
from harness.scenario import Scenario
from harness.spec import PROJECT_ROOT, SystemSpec, find_systems


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
    runs = _names(select_runs(["all"], "all", discover(), find_systems()))
    assert "baseline" in runs and "app-kill" in runs and "broker-restart" in runs
    assert not {"calibration", "calibration-kill"} & set(runs), "calibration runs by name, not in `all`"
    assert runs["baseline"] == ["native", "hatchet", "celery"], runs
    assert runs["capacity"] == ["native", "hatchet", "hatchet-naive", "celery"], "variants in `also` follow their base"
    both = _names(select_runs(["baseline"], "both", discover(), find_systems()))
    assert both == {"baseline": ["native", "hatchet"]}


def test_a_scenario_naming_its_systems_runs_against_them_only() -> None:
    known, systems = discover(), find_systems()
    for system_arg in ("both", "native", "hatchet,native"):
        runs = _names(select_runs(["calibration", "baseline"], system_arg, known, systems))
        assert runs["calibration"] == ["calibration"], (system_arg, runs)
    assert _names(select_runs(["baseline"], "calibration", known, systems)) == {"baseline": ["calibration"]}


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
        (["run", "baseline", "--param", "rate=fast"], "parameter rate: expected float"),
        (["run", "baseline", "--seed", "x"], "invalid int value"),
        (["run", "baseline", "--ledger", "mysql://h/db"], "--ledger 'mysql://h/db': expected sqlite, pg"),
        (["up", "--system", "native", "--ledger", "postgres"], "--ledger 'postgres': expected sqlite, pg"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
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
