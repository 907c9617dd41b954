"""Drill-down: the story of one lost or duplicated task, told from the ledger.

A story is the task's request and answer (client history), every attempt start, error and
effect (effect log), each downstream call from both ends (the job's ``downstream.client`` span and
the service's ``downstream.server`` span: where a slow or failed call spent its time), and the
faults whose window overlaps the task's life, all on the run's time axis (seconds since the start
of the measured load).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.ledger import Ledger
from harness.model.history import Event, Op, Span
from harness.report.calls import CLIENT, SERVER, Call, pair
from harness.report.export import scrub_tokens


@dataclass
class Step:
    """One line of a story."""

    t_s: float
    """Seconds since the start of the measured load."""
    what: str
    """What happened, in a few words."""
    detail: str = ""
    """Process, status, error text."""
    fault: bool = False
    """The line is a fault injection or heal (shown in the fault colour)."""


@dataclass
class Story:
    """What happened to one task."""

    task_id: str
    """Client-made id."""
    verdict: str
    """``lost`` or ``duplicated``."""
    steps: list[Step] = field(default_factory=list)
    """In time order."""
    faults: list[str] = field(default_factory=list)
    """The faults overlapping the task's life, one line each."""
    attempts: int = 0
    """Attempt starts recorded."""
    effects: int = 0
    """Effects recorded."""
    calls: list[str] = field(default_factory=list)
    """Each downstream call, where its time went (one line each)."""

    @property
    def summary(self) -> str:
        """One line: attempts and effects, and the faults it met."""
        met = f"; during {', '.join(self.faults)}" if self.faults else "; no fault overlapped it"
        return f"{self.attempts} attempt(s), {self.effects} effect(s){met}"


def _fault_line(fault: dict[str, Any]) -> str:
    until = fault.get("until_s")
    window = f"{fault['at_s']:.2f}–{until:.2f} s" if until is not None else f"from {fault['at_s']:.2f} s, never healed"
    return f"{fault['action']} {fault['target']} ({window})"


def _op_steps(op: Op, t0: float) -> list[Step]:
    sent = Step(op.invoke_t - t0, "request sent", f"kind {op.kind}, client {op.client or '?'}")
    latency = f"after {1000 * (op.complete_t - op.invoke_t):.0f} ms"
    if op.outcome == "ok":
        answer = Step(op.complete_t - t0, f"accepted ({op.status})", latency)
    elif op.outcome == "fail":
        answer = Step(op.complete_t - t0, f"refused ({op.status or 'no connection'})", f"{latency}: {op.error or ''}")
    else:
        answer = Step(op.complete_t - t0, "no answer", f"{latency}: {op.error or ''}")
    return [sent, answer]


def _event_step(ev: Event, t0: float) -> Step:
    where = f"{ev.process} (pid {ev.pid})"
    what = {"start": f"attempt {ev.attempt} started", "effect": f"effect (attempt {ev.attempt})",
            "error": f"attempt {ev.attempt} raised",
            "call": f"downstream call (attempt {ev.attempt})"}.get(ev.type, ev.type)
    return Step(ev.t - t0, what, f"{where}{': ' + ev.detail if ev.detail else ''}")


def _call_steps(call: Call, t0: float) -> list[Step]:
    c, s = call.client, call.server
    who = f"{c.process} (pid {c.pid})"
    steps = [Step(c.t_start - t0, f"downstream call sent (attempt {c.attempt})", who),
             Step(c.t_end - t0, f"downstream call ended (attempt {c.attempt})",
                  f"{who}: {c.detail} after {1000 * call.client_s:.0f} ms")]
    if s is not None:
        steps += [Step(s.t_start - t0, f"downstream received (attempt {s.attempt})",
                       f"{1000 * (s.t_start - c.t_start):.0f} ms after it was sent"),
                  Step(s.t_end - t0, f"downstream answered (attempt {s.attempt})",
                       f"{s.detail}, {1000 * (s.t_end - s.t_start):.1f} ms after it was received")]
    return steps


def _server_only_step(s: Span, t0: float) -> Step:
    return Step(s.t_start - t0, f"downstream received (attempt {s.attempt}), no client record",
                f"{s.detail}, served in {1000 * (s.t_end - s.t_start):.1f} ms")


def stories(ledger: Ledger, t0: float, lost_ids: Sequence[str], duplicated_ids: Sequence[str],
            faults: Sequence[dict[str, Any]], end_s: float) -> list[Story]:
    """The stories of the given lost and duplicated tasks, with results.json's fault windows.

    A fault belongs to a story when its window overlaps the task's life: from its request to
    its last effect-log record, or to end_s (the end of the drain) for a task that never finished.
    """
    wanted = {**{i: "lost" for i in lost_ids}, **{i: "duplicated" for i in duplicated_ids}}
    ops = {o.task_id: o for o in ledger.ops() if o.task_id in wanted}
    events: dict[str, list[Event]] = {}
    for ev in ledger.events():
        if ev.task_id in wanted:
            events.setdefault(ev.task_id, []).append(ev)
    spans: dict[str, dict[str, list[Span]]] = {}
    for sp in ledger.spans():
        if sp.task_id in wanted and sp.name in (CLIENT, SERVER):
            spans.setdefault(sp.task_id, {CLIENT: [], SERVER: []})[sp.name].append(sp)
    out = []
    for task_id, verdict in wanted.items():
        op = ops.get(task_id)
        evs = events.get(task_id, [])
        steps = (_op_steps(op, t0) if op else []) + [_event_step(e, t0) for e in evs]
        mine = spans.get(task_id, {CLIENT: [], SERVER: []})
        calls, _ = pair(mine[CLIENT], mine[SERVER])
        for call in calls:
            steps += _call_steps(call, t0)
        paired = {id(c.server) for c in calls if c.server is not None}
        steps += [_server_only_step(sp, t0) for sp in mine[SERVER] if id(sp) not in paired]
        begin = min((s.t_s for s in steps), default=0.0)
        finished = verdict == "duplicated" or any(e.type == "effect" for e in evs)
        end = max((s.t_s for s in steps), default=begin) if finished else end_s
        story = Story(task_id, verdict, attempts=sum(e.type == "start" for e in evs),
                      effects=sum(e.type == "effect" for e in evs), calls=[c.breakdown() for c in calls])
        if not finished:
            steps.append(Step(end_s, "still no effect at the end of the drain"))
        for f in faults:
            until = f.get("until_s")
            if f["at_s"] <= end and (until is None or until >= begin):
                story.faults.append(_fault_line(f))
                steps.append(Step(f["at_s"], f"fault: {f['action']} {f['target']}", "", fault=True))
                if until is not None:
                    steps.append(Step(until, f"healed: {f['action']} {f['target']}", "", fault=True))
        for step in steps:
            step.detail = scrub_tokens(step.detail)
        story.steps = sorted(steps, key=lambda s: s.t_s)
        out.append(story)
    return out
