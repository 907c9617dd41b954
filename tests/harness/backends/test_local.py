"""The local backend's processes: their temporary files live in the run's scratch directory, which goes with the
harness process however it ends."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from harness.model.paths import PROJECT_ROOT

# A harness process that starts a child which makes a temporary directory (as Python's multiprocessing does, pymp-*)
# and is SIGKILLed, then prints its scratch directory and either ends or is SIGKILLed itself.
HARNESS = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    from harness.backends.local import LocalBackend, scratch
    child = "import tempfile, time; print(tempfile.mkdtemp(prefix='pymp-'), flush=True); time.sleep(60)"
    p = LocalBackend().process(name="child", argv=[sys.executable, "-c", child], log_path=Path(sys.argv[1]))
    p.start()
    while "pymp-" not in Path(sys.argv[1]).read_text():
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    print(scratch(), flush=True)
    if sys.argv[2] == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
""")


def _run(tmp_path: Path, end: str) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    log = tmp_path / "child.log"
    out = subprocess.run([sys.executable, "-c", HARNESS, str(log), end], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, timeout=60)
    made = Path(next(line for line in log.read_text().splitlines() if "pymp-" in line))
    return out, Path(out.stdout.strip()), made


def test_a_killed_childs_temporary_files_go_with_the_run(tmp_path: Path) -> None:
    out, scratch, made = _run(tmp_path, "ended")
    assert out.returncode == 0, out.stderr
    assert made.parent == scratch and scratch.name.startswith("harness-tmp-")
    assert not scratch.exists() and not made.exists()


def test_they_go_even_when_the_harness_is_sigkilled(tmp_path: Path) -> None:
    out, scratch, made = _run(tmp_path, "killed")
    assert out.returncode == -signal.SIGKILL
    assert made.parent == scratch
    deadline = time.monotonic() + 15  # the reaper notices its parent is gone, then removes what it was given
    while scratch.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not scratch.exists(), f"{scratch} outlived its SIGKILLed harness by 15 s"
