"""The pytest plugin checks ``--param`` like the CLI: a bad value stops pytest before any scenario starts."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.front.pytest_plugin import Loss, RunView, unexplained
from harness.model.paths import PROJECT_ROOT
from harness.model.scenario import Scenario


def pytest_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HARNESS_REPORTS_DIR": str(tmp_path / "reports")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scenarios/", "--param", "rate=-5"], "ERROR: parameter rate=-5: allowed a finite number > 0"),
        (["scenarios/test_app_kill.py", "--param", "duration_s=4"],
         "ERROR: parameter duration_s=4: allowed above 5, else scenario app-kill's fault at 5 s never fires"),
        (["scenarios/test_baseline.py", "--seed", "-3"], "ERROR: parameter seed=-3: allowed an integer from 0"),
        (["scenarios/test_baseline.py", "--param", "warmup"], "ERROR: --param 'warmup': expected NAME=VALUE"),
        # The same options and checks as `harness run` (harness/front/options.py):
        (["scenarios/test_baseline.py", "--system", "native,native"],
         "ERROR: --system 'native,native': native is named twice"),
        (["scenarios/test_baseline.py", "--systems", "native,native"],
         "ERROR: --system 'native,native': native is named twice"),
        (["scenarios/test_baseline.py", "--param", "rate=20", "--param", "rate=30"],
         "ERROR: --param rate: given twice with different values (20 and 30)"),
    ],
)
def test_bad_param_is_a_usage_error_before_any_scenario_runs(tmp_path: Path, args: list[str], message: str) -> None:
    out = pytest_run(tmp_path, *args)
    print(out.stderr.strip())
    assert out.returncode == pytest.ExitCode.USAGE_ERROR, out.stdout + out.stderr
    assert out.stderr.strip().splitlines()[0].startswith(message), out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert not (tmp_path / "reports").exists(), "no run directory: nothing started"


def test_only_the_scenarios_that_will_run_are_checked(tmp_path: Path) -> None:
    # chaos-monkey (soak, deselected by default) could not fire in 20 s; the default tier can.
    files = ["scenarios/test_baseline.py", "scenarios/test_chaos_monkey.py"]
    out = pytest_run(tmp_path, *files, "--param", "duration_s=20", "--collect-only", "-q")
    assert out.returncode == 0, out.stdout + out.stderr
    soak = pytest_run(tmp_path, *files, "--param", "duration_s=20", "--collect-only", "-q", "-m", "soak")
    assert soak.returncode == pytest.ExitCode.USAGE_ERROR
    assert "scenario chaos-monkey: its faults (from 10 s until 0 s) would never fire" in soak.stderr


def test_the_cli_and_pytest_share_one_definition_of_every_run_option() -> None:
    from harness.front.cli import _parser
    from harness.front.options import OPTIONS

    run = next(a for a in _parser()._subparsers._group_actions[0].choices.values() if a.prog.endswith(" run"))  # type: ignore[union-attr]
    cli = {flag: a.help for a in run._actions for flag in a.option_strings}
    plugin = pytest_run_help()
    for option in OPTIONS:
        for flag in option.flags:
            assert cli[flag] == option.help, flag
            assert flag in plugin, f"{flag} missing from pytest --help"
    print(f"{len(OPTIONS)} options, {sum(len(o.flags) for o in OPTIONS)} flags, the same in both doors")


def pytest_run_help() -> str:
    out = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         timeout=120)
    return out.stdout


def test_a_loss_is_explained_only_by_its_faults_instant() -> None:
    run = RunView({"lost": 3})
    losses = [Loss("a", 4.5, False), Loss("b", 7.0, False), Loss("c", 6.0, True)]
    bad = unexplained(run, losses, 5.0, 10.0)
    print(f"fault 5-10 s: unexplained {[x.task_id for x in bad]}")
    assert [x.task_id for x in bad] == ["c"], "accepted 0.5 s before the fault or during it: explained; started: not"
    assert [x.task_id for x in unexplained(run, losses, 5.2, 6.5)] == ["b", "c"]
    assert unexplained(RunView({"lost": 4}), losses, 0.0, 10.0) == losses, "ids missing from results.json: all count"


def test_the_tier_hands_out_the_scenarios_that_run_alone_first_then_the_longest(tmp_path: Path) -> None:
    out = pytest_run(tmp_path, "scenarios/", "--collect-only", "-q", "-n", "0")
    assert out.returncode == 0, out.stdout + out.stderr
    files = [line.split("::")[0] for line in out.stdout.splitlines() if line.startswith("scenarios/")]
    print(files)
    scenarios = [importlib.import_module(name.removesuffix(".py").replace("/", ".")).SCENARIO for name in files]
    assert all(isinstance(s, Scenario) for s in scenarios)
    alone = [s.name for s in scenarios if not s.side_by_side]
    assert [s.name for s in scenarios[:len(alone)]] == alone == ["capacity", "cpu-heavy"], files
    rest = [s.tier_s for s in scenarios[len(alone):]]
    assert rest == sorted(rest, reverse=True) and len(rest) == 18, files
