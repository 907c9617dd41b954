"""Capacity: the highest rate at which a system accepts and completes tasks without falling behind.

A capacity run sends a rising open-loop ladder (:attr:`harness.model.load.LoadPlan.steps`). For each
step, from the ledger alone: how fast requests were accepted, how fast tasks completed, the API
and end-to-end latency of the step's tasks, and the backlog (accepted, no effect yet) at its
middle and end. A step is **sustained** when the system accepted at least ACCEPT_SHARE of its
requests, completed at least KEEP_UP times its rate, and the median end-to-end latency of its last
third of requests is at most GROWTH_S above that of its first third (a growing latency is a
growing backlog). The **knee** is the highest sustained rate; the accept knee asks only the accept
side (accepted in full, API latency not growing). While the load runs, a :class:`KneeProbe` stops
it after two unsustained steps in a row: the knee is behind, more load would only lengthen the drain.
"""

from __future__ import annotations

import statistics
import time
from bisect import bisect_right
from dataclasses import asdict, dataclass
from typing import Any

from harness.analysis.checker import percentile
from harness.ledger import Ledger, TaskRow, task_rows
from harness.model.load import LoadPlan

ACCEPT_SHARE = 0.95
"""Share of a step's planned requests that must be accepted."""
KEEP_UP = 0.9
"""Completions per second, as a share of the step's rate, that count as keeping up."""
GROWTH_S = 0.25
"""Largest rise of the median latency from the first to the last third of a step that counts as stable."""
SETTLE_S = 2.0
"""The probe judges a step this long after its end (answers and effects arrive)."""
MISSES_TO_STOP = 2
"""Unsustained steps in a row after which the probe stops the load."""
LAG_LIMIT_MS = 50.0
"""Median send lag of the load generator (in some second of a step) above which the step's numbers
may be the generator's limit, not the system's."""


@dataclass
class StepStats:
    """What one step of the ladder measured; field names are results.json's."""

    rate: float
    """Offered rate, requests per second."""
    planned: int
    """Requests the step plans."""
    sent: int
    """Requests sent (fewer when the load was stopped)."""
    accepted: int
    """Requests answered 2xx."""
    accepted_tps: float
    """Accepted requests per second of the step."""
    completed_tps: float
    """First effects per second, in the step's window shifted by its tasks' median latency."""
    api_p50_ms: float | None
    """Median request latency (from the intended send time) of its accepted requests."""
    api_p99_ms: float | None
    """99th percentile of the same."""
    e2e_p50_ms: float | None
    """Median end-to-end latency (intended send to first effect) of its tasks."""
    e2e_p99_ms: float | None
    """99th percentile of the same."""
    api_growth_ms: float | None
    """Median API latency of the step's last third of requests minus that of its first third."""
    e2e_growth_ms: float | None
    """The same for end-to-end latency."""
    backlog_mid: int
    """Accepted tasks without an effect at the middle of the step (all steps so far)."""
    backlog_end: int
    """The same at the end of the step."""
    send_lag_p50_ms: float | None
    """Median lag of the sends behind their intended times, in the step's worst second (Locust's samples)."""
    send_lag_max_ms: float | None
    """Worst lag of one send behind its intended time in the step."""
    accepts: bool
    """Accepted in full and the API latency did not grow."""
    sustained: bool
    """Accepted, completed at its rate, and the end-to-end latency did not grow."""


def _ms(x: float | None) -> float | None:
    return None if x is None else round(1000 * x, 3)


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _growth(values: list[float]) -> float | None:
    """Median of the last third minus median of the first third of values (in send order)."""
    third = len(values) // 3
    if third < 3:
        return None
    first, last = _median(values[:third]), _median(values[-third:])
    return None if first is None or last is None else last - first


def step_stats(ledger: Ledger, plan: LoadPlan, now: float | None = None) -> list[StepStats]:
    """Statistics of every step that has started; ``now`` (while the load runs) censors the open ones.

    With ``now``, a step is only judged SETTLE_S after its end, and a task still without an
    effect counts as taking until now.
    """
    n = len(plan.id_prefix)
    rows: dict[int, TaskRow] = {}
    for r in task_rows(ledger):
        if r.phase == plan.phase and r.invoke_t is not None and r.task_id.startswith(plan.id_prefix) \
                and r.task_id[n:].isdigit():
            rows[int(r.task_id[n:])] = r
    if not rows:
        return []
    first = min(rows)
    start = float(rows[first].invoke_t or 0.0) - plan.due_s(first)
    accepted_at = sorted(float(r.complete_t or 0.0) for r in rows.values() if r.outcome == "ok")
    done_at = sorted(r.first_effect_t for r in rows.values() if r.outcome == "ok" and r.first_effect_t is not None)

    lags = {m: [(smp.t, smp.value) for smp in ledger.samples(m)] for m in ("send_lag_p50_ms", "send_lag_max_ms")}

    def backlog(t: float) -> int:
        return bisect_right(accepted_at, t) - bisect_right(done_at, t)

    out: list[StepStats] = []
    lo, t_lo = 0, start
    for (rate, seconds), planned in zip(plan.schedule(), plan.step_counts(), strict=True):
        hi, t_hi = lo + planned, t_lo + seconds
        mine = [rows[i] for i in range(lo, hi) if i in rows]
        lo, t_step = hi, t_lo
        t_lo = t_hi
        if not mine or (now is not None and now < t_hi + SETTLE_S):
            break
        ok = [r for r in mine if r.outcome == "ok"]
        api = [float(r.complete_t or 0.0) - float(r.invoke_t or 0.0) for r in ok]
        # A task still without an effect counts as taking until now (while running) or is left out (lost).
        ends = [r.first_effect_t if r.first_effect_t is not None else now for r in ok]
        lat = [e - float(r.invoke_t or 0.0) for r, e in zip(ok, ends, strict=True) if e is not None]
        lat_sorted = sorted(lat)
        shift = _median(lat[: max(1, len(lat) // 3)]) or 0.0
        w_lo, w_hi = t_step + shift, min(t_hi + shift, now if now is not None else t_hi + shift)
        completed = bisect_right(done_at, w_hi) - bisect_right(done_at, w_lo)
        completed_tps = completed / (w_hi - w_lo) if w_hi > w_lo else 0.0
        api_growth, e2e_growth = _growth(api), _growth(lat)
        accepts = len(ok) >= ACCEPT_SHARE * planned and (api_growth is None or api_growth <= GROWTH_S)
        sustained = accepts and completed_tps >= KEEP_UP * rate and (e2e_growth is None or e2e_growth <= GROWTH_S)
        api_sorted = sorted(api)
        lag = {m: max((v for t, v in xs if t_step < t <= t_hi + 1.0), default=None)  # a sample covers the second before
               for m, xs in lags.items()}
        out.append(StepStats(
            rate=round(rate, 3), planned=planned, sent=len(mine), accepted=len(ok),
            accepted_tps=round(len(ok) / seconds, 3), completed_tps=round(completed_tps, 3),
            api_p50_ms=_ms(percentile(api_sorted, 50) if api_sorted else None),
            api_p99_ms=_ms(percentile(api_sorted, 99) if api_sorted else None),
            e2e_p50_ms=_ms(percentile(lat_sorted, 50) if lat_sorted else None),
            e2e_p99_ms=_ms(percentile(lat_sorted, 99) if lat_sorted else None),
            api_growth_ms=_ms(api_growth), e2e_growth_ms=_ms(e2e_growth),
            backlog_mid=backlog(t_step + seconds / 2), backlog_end=backlog(t_hi),
            send_lag_p50_ms=lag["send_lag_p50_ms"], send_lag_max_ms=lag["send_lag_max_ms"],
            accepts=accepts, sustained=sustained,
        ))
    return out


def _pcts(xs: list[float]) -> dict[str, float | int | None]:
    xs = sorted(xs)
    return {"n": len(xs), "p50_ms": _ms(percentile(xs, 50)) if xs else None,
            "p99_ms": _ms(percentile(xs, 99)) if xs else None}


def time_breakdown(ledger: Ledger, plan: LoadPlan, rate: float) -> list[dict[str, Any]]:
    """Where the accepted tasks of the step at ``rate`` spent their time, stage by stage (p50, p99).

    From the ledger alone: the API's answer (send to 2xx), every span the system recorded for them
    (e.g. Hatchet's ``trigger.wait`` for a thread, ``trigger.call`` in gRPC and the engine), the wait
    from the answer to the first attempt's start (queueing and dispatch), and that attempt's run
    to the effect.
    """
    n = len(plan.id_prefix)
    lo = 0
    for (r, _), planned in zip(plan.schedule(), plan.step_counts(), strict=True):
        if r == rate:
            break
        lo += planned
    else:
        return []
    ids = {plan.task_id(i) for i in range(lo, lo + planned)}
    rows = {r.task_id: r for r in task_rows(ledger) if r.task_id in ids and r.outcome == "ok"
            and r.task_id[n:].isdigit()}
    starts: dict[str, float] = {}
    for ev in ledger.events("start"):
        if ev.task_id in rows and ev.task_id not in starts:
            starts[ev.task_id] = ev.t
    stages: list[tuple[str, list[float]]] = [
        ("API: send → accepted (2xx)", [float(r.complete_t or 0) - float(r.invoke_t or 0) for r in rows.values()])]
    spans: dict[str, list[float]] = {}
    for sp in ledger.spans():
        if sp.task_id in rows:
            spans.setdefault(sp.name, []).append(sp.t_end - sp.t_start)
    stages += [(f"span {name}", xs) for name, xs in spans.items()]
    stages.append(("accepted → first attempt starts (queue, dispatch)",
                   [starts[t] - float(r.complete_t or 0) for t, r in rows.items() if t in starts]))
    stages.append(("first attempt start → first effect",
                   [float(r.first_effect_t) - starts[t] for t, r in rows.items()
                    if t in starts and r.first_effect_t is not None]))
    return [{"stage": name, **_pcts(xs)} for name, xs in stages]


def knee_of(steps: list[StepStats]) -> StepStats | None:
    """The highest sustained step below the first MISSES_TO_STOP steps in a row that were not (the rule that stops
    the ladder): a step after those that completes as fast as it is offered is draining their backlog, not keeping
    up (a CI ladder: 45/s and 67.5/s fell behind, then 101.25/s "completed" 107/s)."""
    knee, misses = None, 0
    for step in sorted(steps, key=lambda s: s.rate):
        if step.sustained:
            knee, misses = step, 0
            continue
        misses += 1
        if misses >= MISSES_TO_STOP:
            break
    return knee


def analyze(ledger: Ledger, plan: LoadPlan) -> dict[str, Any]:
    """The ``capacity`` entry of a run in results.json: the steps (a chart-ready series) and the knees."""
    steps = [s for s in step_stats(ledger, plan) if s.sent == s.planned]  # a step cut short is not judged
    knee = knee_of(steps)
    accept = max((s for s in steps if s.accepts), key=lambda s: s.rate, default=None)
    above = next((s for s in steps if knee is not None and s.rate > knee.rate), None)
    return {
        # Stage by stage, at the knee and at the first step past it: which layer holds the knee where it is.
        "where_time_goes": {f"{s.rate:g}": time_breakdown(ledger, plan, s.rate) for s in (knee, above) if s},
        "steps": [asdict(s) for s in steps],
        "knee_rate": knee.rate if knee else 0.0,
        "max_sustained_tps": knee.completed_tps if knee else 0.0,
        "accept_knee_rate": accept.rate if accept else 0.0,
        "max_accepted_tps": accept.accepted_tps if accept else 0.0,
        # False: no step above the knee fell behind (the ladder ended first), so the knee is a lower bound.
        "saturated": any(not s.sustained for s in steps if knee is None or s.rate > knee.rate),
        "stopped_early": ledger.count_ops(plan.phase, plan.id_prefix) < plan.count,
        # Steps where the generator fell behind its schedule: their numbers may be its limit, not the system's.
        "generator_lagged_at": [s.rate for s in steps if (s.send_lag_p50_ms or 0.0) > LAG_LIMIT_MS],
        "send_lag_by_process": send_lag_by_process(ledger),
        "criteria": {"accept_share": ACCEPT_SHARE, "keep_up": KEEP_UP, "growth_s": GROWTH_S},
    }


LADDER_KEYS = ("knee_rate", "max_sustained_tps", "accept_knee_rate", "max_accepted_tps", "saturated", "stopped_early",
               "generator_lagged_at", "steps")
"""What each repeated ladder keeps in ``capacity.ladders``."""


def repeated(ladders: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``capacity`` entry from the analyses of repeated ladders: the median ladder's whole analysis (its steps and
    where the time went), each ladder's knees (``ladders``), and the knee as median and range over them; a single
    ladder gives the same entry with one element."""
    knees = sorted(a["knee_rate"] for a in ladders)
    median = statistics.median(knees)
    middle = min(ladders, key=lambda a: (abs(a["knee_rate"] - median), a["knee_rate"]))
    return {**middle, "knee_rate": median, "knee_median": median, "knee_range": [knees[0], knees[-1]],
            "completes_median": statistics.median(a["max_sustained_tps"] for a in ladders),
            "accept_knee_median": statistics.median(a["accept_knee_rate"] for a in ladders),
            "ladders": [{k: a[k] for k in LADDER_KEYS} for a in ladders],
            "median_ladder": ladders.index(middle) + 1}


def send_lag_by_process(ledger: Ledger) -> dict[str, dict[str, float]]:
    """Per Locust process (sample source ``locust-<pid>``): its worst second's median send lag and its worst send."""
    out: dict[str, dict[str, float]] = {}
    for metric, key in (("send_lag_p50_ms", "worst_second_p50_ms"), ("send_lag_max_ms", "max_ms")):
        for smp in ledger.samples(metric):
            row = out.setdefault(smp.source, {})
            row[key] = max(row.get(key, 0.0), smp.value)
    return out


def with_references(cap: dict[str, Any], refs: dict[str, Any]) -> dict[str, Any]:
    """``cap`` with its reference ceilings (``reference``) and the knee as a share of each (``knee_vs_*``)."""
    engine, pg, gen = refs.get("engine", {}), refs.get("postgres", {}), refs.get("generator", {})
    reference = {
        "engine_runs_per_s": engine.get("runs_per_s"),
        "postgres_commits_per_s": pg.get("by_clients"),
        "generator_req_per_s": gen.get("req_per_s"),
        "details": refs,
    }
    out = {**cap, "reference": {k: v for k, v in reference.items() if v is not None}}
    for key, ceiling in (("knee_vs_engine", reference["engine_runs_per_s"]),
                         ("knee_vs_generator", reference["generator_req_per_s"])):
        if ceiling:
            out[key] = round(cap["knee_rate"] / ceiling, 3)
    return out


class KneeProbe:
    """Watches a running ladder; says when two steps in a row were not sustained."""

    POLL_S = 1.0
    """How often the probe reads the ledger."""

    def __init__(self, plan: LoadPlan) -> None:
        self.plan = plan
        """The ladder being sent."""
        self.judged = 0
        """Steps judged so far."""
        self.reason = ""
        """Why the probe asks to stop (empty until it does)."""
        self._next = 0.0

    def past_knee(self, ledger: Ledger) -> bool:
        """True once MISSES_TO_STOP steps in a row were not sustained (judged as each step settles)."""
        now = time.time()
        if now < self._next:
            return False
        self._next = now + self.POLL_S
        steps = step_stats(ledger, self.plan, now=now)
        if len(steps) <= self.judged:
            return False
        self.judged = len(steps)
        tail = steps[-MISSES_TO_STOP:]
        if len(tail) == MISSES_TO_STOP and not any(s.sustained for s in tail):
            self.reason = "not sustained at " + ", ".join(f"{s.rate:g}/s" for s in tail)
            return True
        return False
