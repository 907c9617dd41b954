"""`harness up`: a stack for your own Locust run, its command printed, every process gone at the end."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.ledger import open_ledger
from harness.model.paths import PROJECT_ROOT
from tests.harness.test_session import _wait_for, leftovers, leftovers_now


def _up(tmp_path: Path, ledger: str = "sqlite") -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "up", "--system", "native", "--out", str(tmp_path), "--ledger", ledger],
        cwd=PROJECT_ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )
    return proc, _wait_for(proc, "  locust  ")


@pytest.mark.parametrize(("sig", "code", "ledger"), [(signal.SIGINT, 0, "sqlite"),
                                                     (signal.SIGTERM, 128 + signal.SIGTERM, "sqlite"),
                                                     (signal.SIGINT, 0, "pg")])  # Locust (gevent) into Postgres
def test_up_prints_a_working_locust_command_and_stops_everything(tmp_path: Path, sig: int, code: int,
                                                                 ledger: str) -> None:
    proc, out = _up(tmp_path, ledger)
    try:
        assert re.search(r"API +http://127\.0\.0\.1:\d+", out), out
        ledger_url = re.search(r"ledger +((?:sqlite|postgresql)://\S+)", out)
        assert ledger_url, out
        command = out.strip().splitlines()[-1].split("locust  ", 1)[1]
        assert "--web-host 127.0.0.1" in command and "harness/load/loadgen/locustfile.py" in command
        assert leftovers_now(tmp_path), "the stack should be up"
        # The printed command drives the stack as printed (headless here instead of the web UI).
        run = subprocess.run(command + " --headless -u 2 -r 2 -t 2s", shell=True, cwd="/", capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 0, run.stderr[-2000:]
        ops = open_ledger(ledger_url.group(1)).ops()
        assert ops and {o.outcome for o in ops} == {"ok"}, run.stderr[-2000:]
        assert len({o.task_id for o in ops}) == len(ops)
    finally:
        proc.send_signal(sig)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == code, rest
    if sig == signal.SIGINT:
        assert "native stopped" in rest
        assert open_ledger(f"sqlite:///{tmp_path / 'native' / 'ledger.db'}").ops() == ops, "the run dir's copy is whole"
    assert leftovers(tmp_path) == []
