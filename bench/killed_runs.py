"""Runs of the harness killed at random moments, and what each left behind.

``python -m bench.killed_runs [--runs 20] [--seed 1] [--json out.json]`` starts ``harness run`` as a
new user would (a subprocess), sends it SIGINT, SIGTERM or SIGKILL at a random moment (while the
stack starts, under load, while it drains or stops), waits for every process of the run to be gone,
and then looks for what the run left: processes carrying its marker, entries in its temp directory,
``/dev/shm`` entries and System V segments its processes used. ``tests/harness/test_reaper.py`` runs
a short version in ``make test``; README quotes the 20-run figure.

What belongs to the run is established apart from the harness's own bookkeeping: the run gets a
private ``TMPDIR`` (so every temp entry in it is the run's), and a watcher here notes the ``/dev/shm``
entries and System V segments of the processes that carry the run's marker whenever /dev/shm or the
System V table changes (checked every 0.05 s), and once a second. Other
runs on the machine may create and leave entries at the same time; those are counted apart
(``foreign_new``), never as this run's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.backends.base import RUN_MARKER, processes_marked
from harness.backends.leftovers import entries, in_use, mapped_by, opened_by, sysv_segments
from harness.model.paths import PROJECT_ROOT

SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
"""The ways a run is killed."""
CASES = [("hatchet", "worker-kill", 40.0), ("hatchet", "baseline", 35.0), ("native", "app-kill", 12.0)]
"""(system, scenario, latest moment of the signal) drawn per run, the moment uniform from 0.5 s to it (about
the run's length here): Postgres, the engine and killed workers are where leftovers come from."""
PARAMS = ["--param", "duration_s=8", "--param", "warmup=3", "--param", "drain_deadline_s=20",
          "--param", "drain_quiet_s=5"]
"""Short runs: each lasts roughly 20 to 40 s when nobody kills it."""


@dataclass
class Outcome:
    """One killed run and what it left."""

    system: str
    """System under test."""
    scenario: str
    """Scenario run."""
    signal: str
    """How the harness was killed (``none``: left to finish)."""
    after_s: float
    """Seconds after start the signal was sent."""
    stage: str
    """The last progress line the harness printed before the signal."""
    exit_code: int | None
    """The harness's exit status."""
    gone_s: float
    """Seconds from the signal until no process of the run (the reaper included) was left."""
    seen_shm: int = 0
    """/dev/shm entries the run's processes were seen using."""
    seen_segments: int = 0
    """System V segments the run's processes were seen creating."""
    processes: list[str] = field(default_factory=list)
    """Processes carrying the run's marker still alive at the end."""
    temp_entries: list[str] = field(default_factory=list)
    """Entries left in the run's private temp directory."""
    shm: list[str] = field(default_factory=list)
    """/dev/shm entries the run's processes used, still there."""
    segments: list[int] = field(default_factory=list)
    """System V segments the run's processes created, still there."""
    foreign_new: list[str] = field(default_factory=list)
    """/dev/shm entries that appeared meanwhile, unused now, but never seen used by this run (other runs')."""
    output: list[str] = field(default_factory=list)
    """The harness's last lines of output."""

    @property
    def clean(self) -> bool:
        """Nothing of the run's is left."""
        return not (self.processes or self.temp_entries or self.shm or self.segments)


class Watcher(threading.Thread):
    """Notes the /dev/shm entries and System V segments of the processes carrying a marker.

    It looks at the processes whenever the /dev/shm listing or the System V table changes (checked
    every 0.05 s) and at least once a second, so an entry made and left by a process killed at once
    is still seen.
    """

    def __init__(self, root: str) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.shm: set[tuple[str, int]] = set()  # (name, inode)
        self.segments: dict[int, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        last: tuple[frozenset[tuple[str, int]], tuple[int, ...]] | None = None
        looked = 0.0
        while not self.stop.wait(0.05):
            present = entries()
            now = (frozenset(present.items()), tuple(s.shmid for s in sysv_segments()))
            if now == last and time.monotonic() - looked < 1.0:
                continue
            last, looked = now, time.monotonic()
            pids = {pid for pid, _ in processes_marked(self.root)}
            used = set().union(*(mapped_by(pid) | opened_by(pid) for pid in pids))
            self.shm |= {(name, inode) for name, inode in present.items() if inode in used}
            for seg in sysv_segments():
                if seg.cpid in pids:
                    self.segments[seg.shmid] = seg.key


def killed_run(system: str, scenario: str, sig: str, after_s: float, when: str | None = None) -> Outcome:
    """Start ``harness run``, send sig after_s seconds (``none``: let it finish), and account for what is left.

    when: count after_s from the first output line containing this text (a stage) rather than from the start.
    """
    work = Path(tempfile.mkdtemp(prefix="killed-run-"))
    try:
        return _killed_run(system, scenario, sig, after_s, when, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _killed_run(system: str, scenario: str, sig: str, after_s: float, when: str | None, work: Path) -> Outcome:
    out_dir, tmp = work / "out", work / "tmp"
    tmp.mkdir()
    for d in (work, tmp):
        d.chmod(0o755)  # Postgres runs as another user below the state directory made there
    root = str(out_dir.resolve())
    before = set(entries())
    env = {**{k: v for k, v in os.environ.items() if k != RUN_MARKER}, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}
    watcher = Watcher(root)
    watcher.start()
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", scenario, "--system", system,
                             "--out", str(out_dir), *PARAMS], cwd=PROJECT_ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    reached = threading.Event()

    def read() -> None:
        for line in proc.stdout or []:
            lines.append(line)
            if when is None or when in line:
                reached.set()
        reached.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    t0 = time.monotonic()
    reached.wait(timeout=600)
    try:
        proc.wait(timeout=after_s if sig != "none" else 600)
    except subprocess.TimeoutExpired:
        pass
    stage = next((ln.strip() for ln in reversed(lines) if ln.startswith("[")), "(nothing printed yet)")
    sent = time.monotonic()
    if proc.poll() is None and sig != "none":
        proc.send_signal(SIGNALS[sig])
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 60
    while processes_marked(root) and time.monotonic() < deadline:  # the reaper included: it cleans up last
        time.sleep(0.1)
    gone_s = time.monotonic() - sent
    watcher.stop.set()
    watcher.join()
    reader.join(timeout=5)
    after, used = entries(), in_use()[0]
    live_segments = {s.shmid: s.key for s in sysv_segments()}
    return Outcome(
        system=system, scenario=scenario, signal=sig, after_s=round(sent - t0, 2), stage=stage,
        exit_code=proc.returncode, gone_s=round(gone_s, 2), seen_shm=len(watcher.shm),
        seen_segments=len(watcher.segments),
        processes=[cmd[:120] for _, cmd in processes_marked(root)],
        temp_entries=sorted(os.listdir(tmp)),
        shm=sorted(name for name, inode in watcher.shm if after.get(name) == inode),
        segments=sorted(i for i, k in watcher.segments.items() if live_segments.get(i) == k),
        foreign_new=sorted(n for n, i in after.items() if n not in before and (n, i) not in watcher.shm
                           and i not in used),
        output=[ln.rstrip() for ln in lines[-6:]],
    )


def main(argv: list[str] | None = None) -> int:
    """Run the killed runs, print one line per run and the total; exit 1 if any run left something."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1, help="seed of the draws (system, scenario, signal, moment)")
    ap.add_argument("--json", type=Path, default=None, help="write every outcome here")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    outcomes = []
    t0 = time.monotonic()
    for i in range(args.runs):
        system, scenario, latest = rng.choice(CASES)
        sig, after = rng.choice(list(SIGNALS)), round(rng.uniform(0.5, latest), 1)
        o = killed_run(system, scenario, sig, after)
        outcomes.append(o)
        print(f"{i + 1:2d} {o.system:<8} {o.scenario:<12} {o.signal:<7} at {o.after_s:5.1f}s exit {o.exit_code} "
              f"gone {o.gone_s:4.1f}s seen shm {o.seen_shm:2d} sysv {o.seen_segments} | left: processes "
              f"{len(o.processes)} temp {len(o.temp_entries)} shm {len(o.shm)} sysv {len(o.segments)} "
              f"(others' new shm {len(o.foreign_new)}) | {o.stage[:60]}", flush=True)
    dirty = [o for o in outcomes if not o.clean]
    killed = sum(o.exit_code in (-9, 130, 143) for o in outcomes)
    print(f"{len(outcomes) - len(dirty)} of {len(outcomes)} runs left nothing behind ({killed} ended by the "
          f"signal) "
          f"({sum(o.seen_shm for o in outcomes)} /dev/shm entries and {sum(o.seen_segments for o in outcomes)} "
          f"System V segments seen in use; {time.monotonic() - t0:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
    return 1 if dirty else 0


if __name__ == "__main__":
    sys.exit(main())
