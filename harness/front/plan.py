"""The dry run: what ``harness run`` would do, in words, starting nothing.

``harness run ... --dry-run`` prints, for each scenario, the systems it runs against, its load, its
fault schedule (and, per system, whether each fault has something to hit) and every parameter.
The parameters are checked exactly as for a real run (:meth:`harness.model.scenario.Scenario.params`).
"""

from __future__ import annotations

import dataclasses
import textwrap

from harness.model.fault import Fault
from harness.model.params import Params
from harness.model.scenario import Scenario
from harness.model.schedule import AfterAccepted, At, Every, Step, Trigger, WhenInFlight
from harness.model.spec import SystemSpec, not_applicable


def trigger_text(when: Trigger) -> str:
    """When a step fires, in words."""
    if isinstance(when, At):
        return f"at {when.seconds:g} s"
    if isinstance(when, AfterAccepted):
        return f"after {when.n} accepted"
    if isinstance(when, WhenInFlight):
        later = f" (not before {when.not_before_s:g} s)" if when.not_before_s else ""
        return f"when {when.k} attempts run{later}"
    if isinstance(when, Every):
        until = f" until {when.until_s:g} s" if when.until_s != float("inf") else ""
        jitter = f", jitter up to {when.jitter_s:g} s" if when.jitter_s else ""
        return f"every {when.period_s:g} s from {when.start_s:g} s{until}{jitter}"
    return repr(when)


def fault_text(fault: Fault) -> str:
    """A fault in words: action, target, how long, which match."""
    pick = "" if fault.pick == "first" else f" (pick {fault.pick})"
    extra = f" {fault.params}" if fault.params else ""
    return f"{fault.action} {fault.target} for {fault.duration_s:g} s{pick}{extra}"


def _fault_line(fault: Fault, systems: list[SystemSpec]) -> str:
    skipped = [s.name for s in systems if not_applicable(fault, s)]
    return fault_text(fault) + (f"   [nothing to hit in {', '.join(skipped)}]" if skipped else "")


def step_lines(step: Step, systems: list[SystemSpec]) -> list[str]:
    """One step of the schedule, each of its faults with the systems it has nothing to hit in."""
    head = f"    {trigger_text(step.when)}: "
    if not step.alternatives:
        return [head + _fault_line(step.fault, systems)]
    return [head + "one of (seeded pick)"] + [f"      {_fault_line(f, systems)}" for f in step.choices]


def describe(scenario: Scenario, systems: list[SystemSpec], params: Params) -> str:
    """The plan of one scenario run, as printed by ``--dry-run``."""
    load = params.load()
    ladder = ""
    if load.steps:
        rates = [r for r, _ in load.steps]
        ladder = (f"; ladder of {len(rates)} steps of {params.step_s:g} s: {rates[0]:g}/s x{params.step_factor:g} "
                  f"up to {rates[-1]:g}/s (stops two steps past the knee)")
    lines = [
        f"scenario {scenario.name}: {scenario.fault}",
        f"  systems: {', '.join(s.name for s in systems)}",
        f"  warm-up: {params.warmup} tasks",
        f"  load: {params.rate:g} requests/s for {params.duration_s:g} s, {load.count} requests{ladder}; "
        f"job {params.kind} {params.job_s:g} s",
    ]
    steps = scenario.steps(params)
    lines.append("  faults:" if steps else "  faults: none")
    for step in steps:
        lines += step_lines(step, systems)
    values = " ".join(f"{k}={v}" for k, v in dataclasses.asdict(params).items())
    lines.append(textwrap.fill(values, 110, initial_indent="  params: ", subsequent_indent="    "))
    return "\n".join(lines)
