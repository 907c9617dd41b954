"""Hatchet clients of the reproductions: real hatchet-sdk workers and trigger loops, run on the SDK version asked for.

Run as ``python -m findings.repro.clients.hatchet COMMAND ...`` with the engine's client environment
(``HATCHET_CLIENT_TOKEN``, ``HATCHET_CLIENT_HOST_PORT``, ``HATCHET_CLIENT_NAMESPACE``, TLS off), on
the Python of the SDK version under test. It imports hatchet-sdk and the standard library only, so
any SDK version's environment runs it; each command writes JSON lines to ``--out`` for the
reproduction to count.

- ``worker``: a worker with the ``probe`` and ``flaky-*`` tasks; ``--hold-file F`` holds its start
  (in a lifespan, after the engine version check and before the listener registers) until F exists;
- ``load``: triggers ``probe`` at a rate, noting every run id the engine acknowledged;
- ``burst``: fires N triggers at once under ``asyncio.wait_for`` (as an API answering 503 on
  timeout does) once a go-file exists, notes each outcome, then stays alive (background retries);
- ``executor``: N concurrent ``aio_run`` on an instrumented executor of the default's size or sized;
- ``retries``: one failing run on each ``flaky-idle-K`` and ``flaky-hot-K`` queue at once, a trickle of
  passing runs on the hot ones meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from hatchet_sdk import Context, Hatchet
from pydantic import BaseModel

hatchet = Hatchet()
_out_lock = threading.Lock()


class Probe(BaseModel):
    """A run's input: a marker the reproduction counts by, and whether its first attempt fails."""

    marker: str = ""
    fail_first: bool = False


def write(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line (thread-safe)."""
    with _out_lock, path.open("a") as f:
        f.write(json.dumps(record) + "\n")


@hatchet.task(name="probe", input_validator=Probe)
async def probe(input: Probe, ctx: Context) -> dict[str, str]:
    """Does nothing: a run that exists is all a trigger reproduction counts."""
    return {"marker": input.marker}


ATTEMPTS = Path(os.environ.get("FINDING_ATTEMPTS", "/dev/null"))
"""Where the flaky tasks note each attempt (set by the reproduction)."""
BACKOFF_S = float(os.environ.get("FINDING_BACKOFF_S", "25"))
"""The flaky tasks' retry backoff: the factor, with one retry, so the retry is due this long after the failure."""
QUEUES = int(os.environ.get("FINDING_QUEUES", "0"))
"""Flaky tasks per arm (``idle``, ``hot``): each task is its own queue in the engine, with its own queue loop."""


def _flaky(name: str) -> Any:
    """A task that fails its first attempt when asked, noting every attempt's start and end."""

    @hatchet.task(name=name, input_validator=Probe, retries=1, backoff_factor=BACKOFF_S,
                  backoff_max_seconds=max(1, round(BACKOFF_S)))
    async def flaky(input: Probe, ctx: Context) -> dict[str, str]:
        start = time.time()
        fail = input.fail_first and ctx.retry_count == 0
        write(ATTEMPTS, {"marker": input.marker, "attempt": ctx.retry_count, "start": start, "end": time.time(),
                         "failed": fail})
        if fail:
            raise RuntimeError("first attempt fails on purpose")
        return {"marker": input.marker}

    return flaky


FLAKY = {f"{arm}-{k}": _flaky(f"flaky-{arm}-{k}") for arm in ("idle", "hot") for k in range(QUEUES)}
"""The flaky tasks by queue (``idle-0``, ``hot-2``)."""


def register() -> None:
    """Put the tasks' workflows in the engine (what a worker does at start), so they can be triggered."""
    w = hatchet.worker("finding-register", slots=1)
    w.register_workflows([probe, *FLAKY.values()])


def cmd_worker(ns: argparse.Namespace) -> None:
    """A worker; with a hold file, its lifespan (after the version check) waits for that file."""
    hold = Path(ns.hold_file) if ns.hold_file else None

    async def lifespan() -> AsyncGenerator[None, None]:
        print("lifespan: engine version checked, holding registration", flush=True)
        while hold is not None and not hold.exists():
            await asyncio.sleep(0.05)
        print("lifespan: released", flush=True)
        yield

    worker = hatchet.worker(ns.name, slots=ns.slots, workflows=[probe, *FLAKY.values()],
                            lifespan=lifespan if hold else None)
    worker.start()


def _executor(threads: int) -> ThreadPoolExecutor:
    """A default executor: asyncio's own size when threads is 0 (``ThreadPoolExecutor()``), else that many."""
    return ThreadPoolExecutor(max_workers=threads or None, thread_name_prefix="trigger")


async def _load(ns: argparse.Namespace, out: Path) -> None:
    asyncio.get_running_loop().set_default_executor(_executor(64))
    register()
    print("ready", flush=True)
    tasks: list[asyncio.Task[None]] = []

    async def one(k: int) -> None:
        sent = time.time()
        try:
            ref = await asyncio.wait_for(probe.aio_run(Probe(marker=f"load-{k}"), wait_for_result=False), ns.timeout)
            write(out, {"k": k, "sent": sent, "done": time.time(), "ok": True, "id": ref.workflow_run_id})
        except Exception as exc:  # noqa: BLE001 - every failure is a refusal to this client
            write(out, {"k": k, "sent": sent, "done": time.time(), "ok": False, "error": type(exc).__name__})

    t0 = time.monotonic()
    k = 0
    while time.monotonic() - t0 < ns.seconds:
        tasks.append(asyncio.ensure_future(one(k)))
        k += 1
        await asyncio.sleep(max(0.0, t0 + k / ns.rate - time.monotonic()))
    await asyncio.gather(*tasks)
    print(f"done: {k} triggers", flush=True)


async def _burst(ns: argparse.Namespace, out: Path) -> None:
    asyncio.get_running_loop().set_default_executor(_executor(64))  # no thread starvation: finding 7 apart
    register()
    print("ready", flush=True)
    go = Path(ns.go_file)
    while not go.exists():
        await asyncio.sleep(0.05)

    async def one(k: int) -> None:
        marker = f"{ns.prefix}-{k}"
        sent = time.time()
        try:
            ref = await asyncio.wait_for(probe.aio_run(Probe(marker=marker), wait_for_result=False,
                                                       additional_metadata={"finding": marker}), ns.timeout)
            write(out, {"marker": marker, "sent": sent, "done": time.time(), "ok": True, "id": ref.workflow_run_id})
        except Exception as exc:  # noqa: BLE001 - as an API would: any failure is a 503 to its client
            write(out, {"marker": marker, "sent": sent, "done": time.time(), "ok": False,
                        "error": type(exc).__name__})

    await asyncio.gather(*(one(k) for k in range(ns.count)))
    print(f"answered: {ns.count} triggers; staying up {ns.linger:.0f} s as an API process would", flush=True)
    await asyncio.sleep(ns.linger)


class TimedExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor noting when each submitted call was submitted, started and ended."""

    def __init__(self, threads: int, note: Callable[[dict[str, float]], None]) -> None:
        super().__init__(max_workers=threads or None, thread_name_prefix="default-executor")
        self.note = note
        self.size = threads or min(32, (os.cpu_count() or 1) + 4)
        """Its threads: asyncio's default size when threads is 0 (what ``ThreadPoolExecutor()`` makes)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Submit fn, noting its wait for a thread and its run."""
        timing = {"submitted": time.time()}

        def timed() -> Any:
            timing["started"] = time.time()
            try:
                return fn(*args, **kwargs)
            finally:
                timing["ended"] = time.time()
                self.note(timing)

        return super().submit(timed)


async def _executor_bursts(ns: argparse.Namespace, out: Path) -> None:
    """``--bursts`` bursts of ``--count`` concurrent triggers on an instrumented default executor."""
    calls: list[dict[str, float]] = []
    executor = TimedExecutor(ns.threads, calls.append)
    asyncio.get_running_loop().set_default_executor(executor)
    register()
    await asyncio.gather(*(probe.aio_run(Probe(marker="warm"), wait_for_result=False) for _ in range(2)))
    for k in range(ns.bursts):
        calls.clear()
        t0 = time.time()
        refs = await asyncio.gather(*(probe.aio_run(Probe(marker=f"burst-{k}-{i}"), wait_for_result=False)
                                      for i in range(ns.count)))
        wall = time.time() - t0
        events = sorted([(c["started"], 1) for c in calls] + [(c["ended"], -1) for c in calls])
        peak = running = 0
        for _, step in events:
            running += step
            peak = max(peak, running)
        waits = sorted(c["started"] - c["submitted"] for c in calls)
        write(out, {"burst": k, "threads_arg": ns.threads, "executor_size": executor.size,
                    "cpu_count": os.cpu_count(), "triggers": len(refs), "through_default_executor": len(calls),
                    "peak_in_flight": peak, "wait_max_s": round(waits[-1], 3) if waits else None,
                    "wait_p50_s": round(waits[len(waits) // 2], 3) if waits else None, "wall_s": round(wall, 3)})
    executor.shutdown(wait=False)


async def _retries(ns: argparse.Namespace, out: Path) -> None:
    """One failing run on every flaky queue at once; a trickle of passing runs on the ``hot`` queues meanwhile."""
    register()
    print("ready", flush=True)
    stop = asyncio.Event()

    async def trickle(queue: str) -> None:
        k = 0
        while not stop.is_set():
            marker = f"trickle-{queue}-{k}"
            await FLAKY[queue].aio_run(Probe(marker=marker), wait_for_result=False,
                                       additional_metadata={"finding": marker})
            k += 1
            await asyncio.sleep(1.0 / ns.trickle)

    hot = [q for q in FLAKY if q.startswith("hot-")]
    bg = [asyncio.ensure_future(trickle(q)) for q in hot] if ns.trickle > 0 else []
    await asyncio.sleep(2.0)  # the trickles are going
    for queue, task in FLAKY.items():
        sent = time.time()
        await task.aio_run(Probe(marker=queue, fail_first=True), wait_for_result=False,
                           additional_metadata={"finding": queue})
        write(out, {"marker": queue, "sent": sent})
    attempts = Path(os.environ["FINDING_ATTEMPTS"])
    deadline = time.monotonic() + ns.wait
    while time.monotonic() < deadline:
        seen = common_lines(attempts)
        if all(any(a["marker"] == q and a["attempt"] == 1 for a in seen) for q in FLAKY):
            break
        await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*bg)


def common_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of path (a cut-off last line skipped)."""
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def main(argv: list[str] | None = None) -> None:
    """Parse the command and run it."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker")
    w.add_argument("--name", default="finding-worker")
    w.add_argument("--slots", type=int, default=10)
    w.add_argument("--hold-file", default="")
    load = sub.add_parser("load")
    load.add_argument("--rate", type=float, default=50.0)
    load.add_argument("--seconds", type=float, default=30.0)
    load.add_argument("--timeout", type=float, default=10.0)
    burst = sub.add_parser("burst")
    burst.add_argument("--count", type=int, default=10)
    burst.add_argument("--timeout", type=float, default=5.0)
    burst.add_argument("--go-file", required=True)
    burst.add_argument("--prefix", default="burst")
    burst.add_argument("--linger", type=float, default=40.0)
    ex = sub.add_parser("executor")
    ex.add_argument("--count", type=int, default=60)
    ex.add_argument("--threads", type=int, default=0)
    ex.add_argument("--bursts", type=int, default=1)
    rt = sub.add_parser("retries")
    rt.add_argument("--trickle", type=float, default=1.0, help="passing runs per second on each hot queue")
    rt.add_argument("--wait", type=float, default=90.0, help="longest wait for every retry, seconds")
    for p in (load, burst, ex, rt):
        p.add_argument("--out", required=True)
    ns = ap.parse_args(argv)
    if ns.command == "worker":
        cmd_worker(ns)
        return
    out = Path(ns.out)
    run = {"load": _load, "burst": _burst, "executor": _executor_bursts, "retries": _retries}[ns.command]
    asyncio.run(run(ns, out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
