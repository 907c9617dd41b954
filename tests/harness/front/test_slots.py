"""The machine-slot lock of a pytest-xdist session: its directory goes with the controller, however it ends."""

import os
import subprocess
import sys
import time
from pathlib import Path

from harness.backends.base import RUN_MARKER

SIGKILLED_CONTROLLER = """
import os, signal
from harness.front.slots import make_slots_dir, slot
os.environ["HARNESS_SLOTS"] = make_slots_dir()
with slot(exclusive=True):
    print(os.environ["HARNESS_SLOTS"], flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_sigkilled_controller_leaves_no_slots_directory() -> None:
    # Without this session's run marker: the child's reaper must not take this session's processes for its own.
    env = {k: v for k, v in os.environ.items() if k != RUN_MARKER}
    proc = subprocess.run([sys.executable, "-c", SIGKILLED_CONTROLLER], capture_output=True, text=True, timeout=60,
                          env=env)
    where = Path(proc.stdout.strip())
    assert proc.returncode == -9 and where.name.startswith("harness-slots-"), (proc.returncode, proc.stderr)
    deadline = time.monotonic() + 15
    while where.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    print(f"{where}: gone {not where.exists()} after the controller's SIGKILL")
    assert not where.exists(), f"{where} outlived its SIGKILLed controller: {sorted(p.name for p in where.iterdir())}"
