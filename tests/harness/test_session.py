"""No process outlives a run: not after a failed scenario, not after Ctrl-C, not after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.backends.base import processes_marked
from harness.ledger import Ledger
from harness.model.load import LoadPlan
from harness.model.paths import PROJECT_ROOT
from harness.model.scenario import Scenario
from harness.model.spec import find_systems
from harness.session import Session


class ExplodingDriver:
    """A load driver that fails once the stack is up: a scenario failing mid-run."""

    def start(self, base_url: str, plan: LoadPlan, ledger: Ledger, system: str) -> None:
        raise RuntimeError("scenario failed on purpose")

    def wait(self, timeout: float | None = None) -> bool:
        return True

    def stop(self) -> None:
        pass


def leftovers(root: Path) -> list[tuple[int, str]]:
    """Marked processes still alive, ignoring this test process's own reaper."""
    deadline = time.monotonic() + 10
    while True:
        alive = [(pid, cmd) for pid, cmd in processes_marked(str(root.resolve()))
                 if "harness.backends.reaper" not in cmd]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


@pytest.mark.parametrize("system", ["native", "hatchet"])
def test_failed_scenario_leaves_no_process(tmp_path: Path, system: str) -> None:
    spec = find_systems()[system]
    session = Session(root=tmp_path, progress=lambda m: None, driver_factory=ExplodingDriver)
    scenario = Scenario(name="explodes", fault="none", claim="none")
    try:
        with pytest.raises(RuntimeError, match="on purpose"):
            session.run(scenario, [spec], scenario.params())
        # The failed run stopped its own processes; only the shared servers are left until close.
        shared = [cmd for _, cmd in leftovers_now(tmp_path)]
        servers = ("bin/server", "postgres", "hatchet-engine", "hatchet-api", "harness.backends.netns", "rabbitmq",
                   "beam.smp", "erl_child_setup", "inet_gethost", "epmd", "rabbit_disk_monitor")
        assert all(any(s in c for s in servers) for c in shared), shared
    finally:
        session.close()
    logs = sorted(p.name for p in (tmp_path / "explodes" / system / "logs").iterdir())
    assert "api.log" in logs, logs  # the stack really came up before the failure
    assert leftovers(tmp_path) == []


def _start_cli(tmp_path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "baseline", "--system", "native", "--out", str(tmp_path),
         "--param", "duration_s=60", "--param", "warmup=2"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _wait_for(proc: subprocess.Popen[str], text: str, timeout: float = 60) -> str:
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen += line
        if text in line:
            return seen
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"never saw {text!r}:\n{seen}")


def test_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    proc = _start_cli(tmp_path)
    _wait_for(proc, "measured load")
    assert leftovers_now(tmp_path), "the stack should be running mid-load"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "interrupted" in out
    assert leftovers(tmp_path) == []


def test_sigkill_of_the_harness_still_stops_every_process(tmp_path: Path) -> None:
    proc = _start_cli(tmp_path)
    _wait_for(proc, "measured load")
    assert leftovers_now(tmp_path)
    proc.kill()
    proc.wait(10)
    assert leftovers(tmp_path) == [], "the reaper must kill the groups of a SIGKILLed harness"


def leftovers_now(root: Path) -> list[tuple[int, str]]:
    return [(pid, cmd) for pid, cmd in processes_marked(str(root.resolve())) if "harness.backends.reaper" not in cmd]



def test_no_secret_reaches_the_run_directory(tmp_path: Path) -> None:
    spec = find_systems()["hatchet"]
    scenario = Scenario(name="secrets", fault="none", claim="none")
    session = Session(root=tmp_path, progress=lambda m: None)
    try:
        session.run(scenario, [spec], scenario.params({"duration_s": "2", "warmup": "3"}))
        (token,) = session.infra.secrets()
    finally:
        session.close()
    assert token.startswith("ey"), "the engine minted a token"
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "engine.log" for p in files) and any(p.name == "worker-1.log" for p in files)
    leaks = [str(p) for p in files if token.encode() in p.read_bytes()]
    assert leaks == [], f"the Hatchet token is written in {leaks}"
