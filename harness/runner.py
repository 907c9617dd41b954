"""The runner: one scenario against each system, start to finish.

For each system: stack up (every process health-checked), warm-up (proves the pipeline works,
not measured), measured load with the schedule injecting faults, heal everything, drain, stack
down on every path, then the checker reads the ledger. Systems run one after the other so they
never compete for the machine's cores.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import report
from harness.analysis import capacity, results
from harness.analysis.checker import IdentityError, RunCheck, check
from harness.ledger import Ledger, LedgerStore, SqliteStore
from harness.load.drivers import AsyncDriver, LoadDriver, LocustDriver, worker_names
from harness.model.fault import PROCESS_ACTIONS
from harness.model.links import match_links
from harness.model.load import LoadPlan
from harness.model.params import Params
from harness.model.scenario import Scenario
from harness.model.schedule import Observation, Schedule, Step, link_targets
from harness.model.spec import SystemSpec, not_applicable, select
from harness.nemesis import Nemeses
from harness.nemesis.base import ActiveFault
from harness.runtime import ceilings
from harness.runtime.infra import Infra
from harness.runtime.manifest import manifest
from harness.runtime.sampler import Sampler
from harness.runtime.stack import Stack
from harness.runtime.supervisor import Supervisor

Progress = Callable[[str], None]
DriverFactory = Callable[[], LoadDriver]

WARMUP_RATE = 5.0
"""Warm-up requests per second."""
WARMUP_TIMEOUT_S = 60.0
"""Longest wait for the warm-up tasks to complete before the stack is declared broken."""


class StackBroken(RuntimeError):
    """The system did not complete its warm-up tasks: nothing measured would mean anything."""


@dataclass
class SystemRun:
    """One system's part of a scenario run."""

    system: str
    """System name."""
    run_dir: Path
    """Its directory (ledger, logs)."""
    applicable: bool
    """False when the scenario's faults have nothing to hit in this system."""
    reason: str = ""
    """Why it is not applicable."""
    check: RunCheck | None = None
    """What the checker concluded."""
    drain_s: float = 0.0
    """Seconds spent draining."""
    drain_end: str = ""
    """Why the drain ended: ``complete``, ``quiet`` or ``deadline``."""
    stack_up_s: float = 0.0
    """Seconds from start until every process was healthy."""
    extra: dict[str, Any] = field(default_factory=dict)
    """More fields for the run's entry in results.json (``capacity`` of a stepped load)."""
    color: str = ""
    """Its colour on the report (system.toml's; empty: the report's palette)."""
    base: str = ""
    """The system a variant derives from (empty for a base system)."""

    def as_result(self) -> dict[str, Any]:
        """The ``runs[]`` entry of results.json."""
        who = {"color": self.color, "base": self.base}
        if not self.applicable or self.check is None:
            return {"system": self.system, "applicable": False, "reason": self.reason, **who}
        return {**self.check.as_result(), **who, "drain_s": round(self.drain_s, 3), "drain_end": self.drain_end,
                "stack_up_s": round(self.stack_up_s, 3), "ledger": str(self.run_dir.name + "/ledger.db"),
                **self.extra}


def _wait_warmup(ledger: Ledger, deadline: float) -> None:
    while time.monotonic() < deadline:
        if ledger.missing_effects("warmup") == 0:
            return
        time.sleep(0.1)
    missing = ledger.missing_effects("warmup")
    accepted = ledger.count_accepted("warmup")
    raise StackBroken(f"warm-up: {accepted - missing}/{accepted} accepted tasks completed within "
                      f"{WARMUP_TIMEOUT_S:.0f}s (the stack is not processing tasks)")


def drain(ledger: Ledger, quiet_s: float, deadline_s: float, tick: Callable[[], None] = lambda: None,
          attempts: int = 0) -> tuple[float, str]:
    """Wait until every accepted task is settled (an effect, or ``attempts`` attempts that all failed: the system
    gave up), the effect log has been quiet for quiet_s with tasks still missing, or the deadline (tick: each poll).
    """
    t0 = time.time()
    while True:
        tick()
        now = time.time()
        if ledger.unsettled(attempts) == 0:
            return now - t0, "complete"
        last = max(ledger.last_activity() or t0, t0)
        if now - last >= quiet_s:
            return now - t0, "quiet"
        if now - t0 >= deadline_s:
            return now - t0, "deadline"
        time.sleep(0.2)


def _warm_up(stack: Stack, ledger: Ledger, params: Params) -> None:
    """Send the warm-up tasks and wait for all of them: proof that the pipeline works end to end."""
    # Short I/O-like tasks whatever the scenario's job: they prove the pipeline, and their API
    # latency is the unloaded reference. The built-in driver starts at once; Locust would add a
    # second of start-up per system.
    warm = LoadPlan(rate=WARMUP_RATE, duration_s=params.warmup / WARMUP_RATE, kind="sleep",
                    params={"duration_s": 0.05}, timeout_s=params.client_timeout_s, phase="warmup", id_prefix="w")
    driver = AsyncDriver()
    driver.start(stack.api_url, warm, ledger, stack.spec.name)
    driver.wait()
    _wait_warmup(ledger, time.monotonic() + WARMUP_TIMEOUT_S)


class Aborted(RuntimeError):
    """Another system's run failed (or Ctrl-C came) while this one ran side by side with it."""


def _check_abort(abort: threading.Event) -> None:
    if abort.is_set():
        raise Aborted("stopped: a run beside it failed or was interrupted")


def _measure(driver: LoadDriver, plan: LoadPlan, params: Params, stack: Stack, ledger: Ledger, schedule: Schedule,
             nemesis: Nemeses, supervisor: Supervisor, progress: Progress, abort: threading.Event) -> None:
    """Run the measured load, injecting the schedule's faults and healing each when its time comes."""
    driver.start(stack.api_url, plan, ledger, stack.spec.name)  # returns when the first request is due
    t0 = time.time()
    if "t0" not in ledger.meta():  # the first ladder's start when a ladder is repeated
        ledger.set_meta("t0", t0)
    probe = capacity.KneeProbe(plan) if plan.steps else None
    active: list[ActiveFault] = []
    load_end: float | None = None
    while True:
        _check_abort(abort)
        elapsed = time.time() - t0
        load_done = driver.wait(timeout=0)
        if load_done and load_end is None:
            load_end = time.time()
            ledger.set_meta("load_end", load_end)
        if schedule.steps and elapsed <= params.duration_s and not load_done:
            obs = Observation(elapsed, ledger.count_accepted(),
                              ledger.count_in_flight() if schedule.needs_in_flight else -1)
            for fault in schedule.due(obs):
                if (why := not_applicable(fault, stack.spec, stack.outside())) is not None:
                    progress(f"  t={elapsed:5.1f}s skipped {fault.action} {fault.target}: {why}")
                    now = time.time()
                    ledger.fault_ended(ledger.fault_started("skipped", f"{fault.action} {fault.target}",
                                                            {"reason": why}, t=now), t=now)
                    continue
                progress(f"  t={elapsed:5.1f}s {fault.action} {fault.target}")
                active.append(nemesis.invoke(fault))
        for a in [a for a in active if time.time() >= a.heal_at]:
            nemesis.heal(a)
            active.remove(a)
            progress(f"  t={time.time() - t0:5.1f}s healed {a.fault.action} {','.join(a.targets)}")
        supervisor.check(held=[t for a in active for t in a.targets])
        if probe is not None and not load_done and probe.past_knee(ledger):
            progress(f"  t={elapsed:5.1f}s past the knee ({probe.reason}): stopping the load")
            driver.stop()
            probe = None
        if load_done and not active:
            return
        time.sleep(0.05)


def _addresses(stack: Stack) -> dict[str, str]:
    """Which address each process of a run had, when the run has hosts (empty on one machine's loopback)."""
    infra = stack.infra
    names = [*(p.name for p in stack.servers.processes()), *stack.processes, "locust",
             *worker_names(infra.load_processes)]
    where = {name: infra.backend.address(name) for name in names}
    return where if set(where.values()) != {"127.0.0.1"} else {}


def _references(stack: Stack, out_dir: Path, cache: dict[Any, Any], progress: Progress, seconds: float
                ) -> dict[str, Any]:
    """Reference ceilings for a capacity run, measured once per scenario run before the ladders (systems declaring
    the same servers share them): the load generator's, and its servers' (an engine's own load tester, its
    database's commits) on fresh copies of them, while nothing of the run loads the machine."""
    if "generator" not in cache:
        progress("reference: the load generator's own rate (Locust against a canned endpoint)")
        cache["generator"] = ceilings.generator_req_per_s(out_dir / "reference", stack.infra.backend,
                                                          stack.infra.load_processes)
    key = tuple(t.identity() for t in stack.spec.servers)
    if key and key not in cache:
        progress(f"reference: ceilings of {stack.spec.name}'s servers, on fresh copies of them")
        cache[key] = stack.infra.references(stack.spec, out_dir / "reference" / stack.spec.name, stack.namespace,
                                            seconds)
    return {"generator": cache["generator"], **(cache.get(key) or {})}


def run_system(scenario: Scenario, params: Params, spec: SystemSpec, infra: Infra, out_dir: Path, run_id: str,
               progress: Progress, driver_factory: DriverFactory = LocustDriver,
               references: dict[Any, Any] | None = None, ledgers: LedgerStore | None = None,
               abort: threading.Event | None = None, private: Collection[str] = ()) -> SystemRun:
    """Run scenario against one system; the stack is down again when this returns or raises.

    A capacity run (a stepped load) also measures reference ceilings before its ladder, with its stack up and
    idle (``references`` caches them across the systems of one scenario run). Its fresh ledger comes from
    ``ledgers`` (default: a SQLite file in its directory). ``abort`` (set by a failed neighbour or Ctrl-C) stops it
    at the next tick; ``private``: shared servers it gets a copy of (see :func:`private_servers`).
    """
    abort = abort or threading.Event()
    run_dir = out_dir / spec.name
    params = params.override(spec.params)  # a variant's own settings (e.g. trigger_threads=0)
    steps = scenario.steps(params)
    outside = infra.outside(spec)
    for step in steps:
        if all(not_applicable(f, spec, outside) for f in step.choices):
            # This step can hit nothing in this system: the scenario has no meaning for it.
            reason = next(r for f in step.choices if (r := not_applicable(f, spec, outside)))
            progress(f"{scenario.name}/{spec.name}: not applicable ({reason})")
            return SystemRun(spec.name, run_dir, applicable=False, reason=reason, color=spec.color, base=spec.base)
    # Every system gets the same seeded draws; a drawn fault with nothing to hit here is skipped.
    schedule = Schedule(steps, params.seed)
    ledger = (ledgers or SqliteStore()).create(run_dir, f"{run_id}_{scenario.name}_{spec.name}")
    ledger.set_meta("scenario", scenario.name)
    ledger.set_meta("system", spec.name)
    # One namespace per scenario and system: runs an earlier scenario left queued in a shared
    # engine (retries, hung attempts) must never reach this scenario's workers.
    stack = Stack(spec, run_dir, ledger, infra, params.task_config(), f"{run_id}_{scenario.name}", progress,
                  grace_s=params.grace_s, link_faults=link_targets(steps), private=private)
    nemesis = Nemeses()
    result = SystemRun(spec.name, run_dir, applicable=True, color=spec.color, base=spec.base)
    if spec.params:
        result.extra["params"] = dict(spec.params)
    plan = params.load()
    ladders = params.ladder_plans()
    refs: dict[str, Any] = {}
    with ExitStack() as cleanup:
        # Last in, first out: the load stops, faults heal, the stack goes down, then the ledger is saved
        # (a Postgres ledger is copied to run_dir/ledger.db: reports read only that file).
        cleanup.callback(ledger.save)
        cleanup.callback(stack.down)
        cleanup.callback(nemesis.teardown)
        progress(f"{scenario.name}/{spec.name}: starting stack")
        t_up = time.monotonic()
        stack.up()
        result.stack_up_s = time.monotonic() - t_up
        result.extra["links"] = stack.link_report()
        result.extra["servers"] = {name: r.server.manifest() for name, r in stack.servers.servers.items()}
        if spec.durability:
            result.extra["durability"] = spec.durability
        if where := _addresses(stack):
            result.extra["addresses"] = where
        nemesis.setup(stack, ledger, random.Random(params.seed))
        supervisor = Supervisor(ledger, stack.watched, progress)
        if plan.steps:  # before the warm-up: nothing of the run loads the machine yet
            refs = _references(stack, out_dir, {} if references is None else references, progress,
                               params.reference_s)
        with Sampler(ledger, stack.watched):
            if params.warmup:
                progress(f"{scenario.name}/{spec.name}: warm-up ({params.warmup} tasks)")
                _warm_up(stack, ledger, params)
            quiet_s = params.drain_quiet_s or spec.drain_quiet(dataclasses.asdict(params))
            attempts = spec.drain_attempts(dataclasses.asdict(params))
            for k, ladder in enumerate(ladders, 1):
                if k > 1:  # each ladder starts on an engine that has finished the one before
                    progress(f"{scenario.name}/{spec.name}: draining before ladder {k} of {len(ladders)}")
                    drain(ledger, quiet_s, params.drain_deadline_s, supervisor.check, attempts)
                progress(f"{scenario.name}/{spec.name}: measured load {params.rate:g}/s for {params.duration_s:g}s"
                         f" ({len(schedule.steps)} fault step(s))"
                         + (f", ladder {k} of {len(ladders)}" if len(ladders) > 1 else ""))
                driver = driver_factory()
                cleanup.callback(driver.stop)  # a failed run must not leave its load running
                _measure(driver, ladder, params, stack, ledger, schedule, nemesis, supervisor, progress, abort)
            nemesis.teardown()
            result.extra["drain_quiet_s"] = quiet_s
            if spec.drain_why and not params.drain_quiet_s:  # the system's own redelivery settings decided it
                result.extra["drain_why"] = spec.drain_why
            progress(f"{scenario.name}/{spec.name}: draining (quiet {quiet_s:g}s,"
                     f" deadline {params.drain_deadline_s:g}s)")
            def tick() -> None:
                _check_abort(abort)
                supervisor.check()

            result.drain_s, result.drain_end = drain(ledger, quiet_s, params.drain_deadline_s, tick, attempts)
            ledger.set_meta("drain_end", time.time())
            supervisor.wait()
            result.extra["crashes"] = supervisor.crashes
    result.check = check(ledger, spec.name)
    if plan.steps:
        result.extra["capacity"] = capacity.with_references(
            capacity.repeated([capacity.analyze(ledger, ladder) for ladder in ladders]), refs)
    c = result.check.counts
    progress(f"{scenario.name}/{spec.name}: accepted {c.accepted} completed {c.completed} lost {c.lost}"
             f" duplicated {c.duplicated} retried {c.retried} (drain {result.drain_s:.1f}s, {result.drain_end})")
    return result


def _run_all(scenario: Scenario, systems: list[SystemSpec], params: Params, infra: Infra, out_dir: Path, run_id: str,
             progress: Progress, driver_factory: DriverFactory, references: dict[Any, Any], ledgers: LedgerStore,
             concurrent: bool) -> list[SystemRun]:
    """Each system's run, in the systems' order: one after another, or side by side in threads (an abort of one,
    or Ctrl-C, stops the others, each through its own clean-up)."""
    if not concurrent:
        runs = []
        for j, spec in enumerate(systems, 1):
            progress(f"{scenario.name}: system {j} of {len(systems)}, {spec.name}")
            runs.append(run_system(scenario, params, spec, infra, out_dir, run_id, progress, driver_factory,
                                   references, ledgers))
        return runs
    abort = threading.Event()
    progress(f"{scenario.name}: {len(systems)} systems side by side ({', '.join(s.name for s in systems)})")
    shared = shared_between(systems)
    with ThreadPoolExecutor(len(systems), thread_name_prefix="system") as pool:
        futures = [pool.submit(run_system, scenario, params, spec, infra, out_dir, run_id, progress, driver_factory,
                               references, ledgers, abort=abort,
                               private=private_servers(spec, scenario.steps(params.override(spec.params))) & shared)
                   for spec in systems]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
        except BaseException:  # Ctrl-C while waiting: every run unwinds through its clean-up
            abort.set()
            raise
        finally:
            if any(f.done() and f.exception() for f in futures):
                abort.set()
    failed = [exc for f in futures if (exc := f.exception()) is not None]
    if failed:  # the run that failed first, not the neighbours it stopped
        raise next((exc for exc in failed if not isinstance(exc, Aborted)), failed[0])
    return [f.result() for f in futures]


def shared_between(systems: list[SystemSpec]) -> set[str]:
    """Names of shared servers two of these systems would use together (the same declaration): a fault on one of
    them while both run would hit both."""
    seen: dict[tuple[Any, ...], set[str]] = {}
    for spec in systems:
        for srv in spec.servers:
            if srv.shared:
                seen.setdefault(srv.identity(), set()).add(spec.name)
    return {srv.name for spec in systems for srv in spec.servers if len(seen.get(srv.identity(), ())) > 1}


def private_servers(spec: SystemSpec, steps: list[Step]) -> set[str]:
    """The shared servers of spec a fault of these steps hits (a process of theirs, or a link they make): run side by
    side with other systems, the run gets its own copy of each, so the fault reaches no one else."""
    owner = {proc: srv.name for srv in spec.servers for proc in srv.process_roles()}
    owner.update({link: srv.name for srv in spec.servers for link in srv.link_names()})
    hit: set[str] = set()
    for fault in (f for step in steps for f in step.choices):
        if fault.action in PROCESS_ACTIONS:
            hit.update(owner[n] for n in select(fault.target, spec.planned_processes()) if n in owner)
        else:
            hit.update(owner[n] for n in match_links(fault.target, spec.planned_links()) if n in owner)
    return {name for name in hit if spec.server(name).shared}


def run_scenario(scenario: Scenario, systems: list[SystemSpec], params: Params, out_dir: Path, infra: Infra,
                 run_id: str, progress: Progress, driver_factory: DriverFactory = LocustDriver,
                 ledgers: LedgerStore | None = None, parallel: bool = False) -> dict[str, Any]:
    """Run scenario against each system; write results.json and index.html into out_dir.

    With ``parallel`` and a scenario whose verdict rests on counts (``side_by_side``), the systems run side by
    side, each on its own stack (and its own copy of a shared server its faults hit); otherwise one after another.
    Raises IdentityError after writing the results when an identity fails (a harness bug).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    references: dict[Any, Any] = {}
    ledgers = ledgers or SqliteStore()
    concurrent = parallel and scenario.side_by_side and len(systems) > 1
    try:
        runs = _run_all(scenario, systems, params, infra, out_dir, run_id, progress, driver_factory, references,
                        ledgers, concurrent)
    finally:
        results.redact(out_dir, infra.secrets() + ledgers.secrets())
    doc = results.build(scenario, params, [r.as_result() for r in runs], started, time.time() - started,
                        {**manifest(params, systems, ledgers.describe(out_dir), infra.manifest()),
                         "systems_ran": "side by side" if concurrent else "one after another"})
    results.write(out_dir, doc)
    report.write_scenario(out_dir, doc)
    broken = [f"{r['system']}: {b}" for r in doc["runs"] for b in r.get("identities_broken", [])]
    if broken:
        raise IdentityError(f"{scenario.name}: identities broken (harness bug): " + "; ".join(broken))
    return doc
