"""The checker: classify every task of a run from the ledger alone, and check the identities.

It knows nothing about how load or faults were produced. Classes (shared/DESIGN.md):
completed, lost, duplicated, retried, failed (lost, every attempt errored), indeterminate (no
answer), recovered (indeterminate yet ran), unexpected (ran, never sent: a harness bug).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.analysis import instruments
from harness.ledger import Ledger, TaskRow, task_rows
from harness.model.history import FaultRecord

RECOVERY_THRESHOLD = 0.9
"""Completion rate, as a share of the pre-fault rate, that counts as recovered."""
RATE_WINDOW_S = 2.0
"""Window over which the post-heal completion rate is measured."""
PRE_FAULT_WINDOW_S = 5.0
"""Window before a fault over which the reference completion rate is measured."""


class IdentityError(AssertionError):
    """An identity of the classification failed: the harness, not the system, is wrong."""


@dataclass
class Latency:
    """Percentiles of a latency distribution in milliseconds (None when there is no sample)."""

    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None
    n: int

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        """Nearest-rank percentiles of durations given in seconds."""
        xs = sorted(seconds)
        if not xs:
            return cls(None, None, None, None, n=0)
        p50, p95, p99 = (round(1000 * percentile(xs, p), 3) for p in (50, 95, 99))
        return cls(p50, p95, p99, round(1000 * xs[-1], 3), n=len(xs))


def percentile(sorted_xs: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty sequence."""
    rank = max(1, math.ceil(p / 100 * len(sorted_xs)))
    return sorted_xs[rank - 1]


@dataclass
class Classification:
    """Task counts of one run; field names are results.json's."""

    attempted: int = 0
    accepted: int = 0
    refused: int = 0
    indeterminate: int = 0
    recovered: int = 0
    completed: int = 0
    lost: int = 0
    duplicated: int = 0
    retried: int = 0
    failed: int = 0
    unexpected: int = 0
    silent_loss: int = 0
    """Lost minus failed: accepted, never done, and the system never said so."""
    refused_ran: int = 0
    """Refused (4xx/5xx) and yet an effect exists: the system said no and did it anyway."""
    effects: int = 0
    """Effect records of measured tasks."""
    extra_effects: int = 0
    """Effects beyond the first, summed over duplicated tasks."""
    attempts: int = 0
    """Attempt starts of measured tasks."""
    downstream_calls: int = 0
    """Calls the downstream service received for measured tasks."""
    duplicate_calls: int = 0
    """Tasks the downstream service saw more than once (the duplicate the outside world sees)."""
    ids_sent_twice: int = 0
    """Task ids the client sent more than once (a harness bug)."""
    lost_ids: list[str] = field(default_factory=list)
    """Up to 50 lost task ids, for the drill-down."""
    duplicated_ids: list[str] = field(default_factory=list)
    """Up to 50 duplicated task ids."""


def classify(rows: Iterable[TaskRow], phase: str = "measure") -> Classification:
    """Count every task of a phase into its classes."""
    c = Classification()
    for r in rows:
        if r.phase is None:
            c.unexpected += 1
            continue
        if r.phase != phase:
            continue
        c.attempted += 1
        c.attempts += r.starts
        c.effects += r.effects
        c.downstream_calls += r.calls
        if r.n_ops > 1:
            c.ids_sent_twice += 1
        if r.calls > 1:
            c.duplicate_calls += 1
        if r.effects > 1:
            c.duplicated += 1
            c.extra_effects += r.effects - 1
            if len(c.duplicated_ids) < 50:
                c.duplicated_ids.append(r.task_id)
        if r.starts > 1:
            c.retried += 1
        if r.outcome == "ok":
            c.accepted += 1
            if r.effects:
                c.completed += 1
            else:
                c.lost += 1
                if len(c.lost_ids) < 50:
                    c.lost_ids.append(r.task_id)
                if r.starts and r.errors == r.starts:
                    c.failed += 1
        elif r.outcome == "fail":
            c.refused += 1
            if r.effects:
                c.refused_ran += 1
        else:
            c.indeterminate += 1
            if r.effects:
                c.recovered += 1
    c.silent_loss = c.lost - c.failed
    return c


def check_identities(c: Classification) -> list[str]:
    """The identities every run must satisfy; returns the broken ones (empty: all hold)."""
    broken = []
    if c.attempted != c.accepted + c.refused + c.indeterminate:
        broken.append(f"attempted {c.attempted} != accepted {c.accepted} + refused {c.refused}"
                      f" + indeterminate {c.indeterminate}")
    if c.accepted != c.completed + c.lost:
        broken.append(f"accepted {c.accepted} != completed {c.completed} + lost {c.lost}")
    if c.effects != c.completed + c.recovered + c.refused_ran + c.extra_effects:
        broken.append(f"effects {c.effects} != completed {c.completed} + recovered {c.recovered}"
                      f" + refused_ran {c.refused_ran} + extra {c.extra_effects}")
    if not 0 <= c.failed <= c.lost:
        broken.append(f"failed {c.failed} not within lost {c.lost}")
    if c.unexpected:
        broken.append(f"{c.unexpected} task ids ran that the client never sent")
    if c.ids_sent_twice:
        broken.append(f"{c.ids_sent_twice} task ids were sent more than once")
    return broken


def completion_rate(times: Sequence[float], start: float, end: float) -> float:
    """Completions per second within [start, end) of sorted first-effect times."""
    if end <= start:
        return 0.0
    return (bisect_left(times, end) - bisect_left(times, start)) / (end - start)


def recovery_time(done_times: Sequence[float], fault: FaultRecord, t0: float) -> float | None:
    """Seconds from heal until completions are back to 90% of the pre-fault rate (None: never)."""
    if fault.t_end is None:
        return None
    pre_start = max(t0, fault.t_start - PRE_FAULT_WINDOW_S)
    reference = completion_rate(done_times, pre_start, fault.t_start)
    if reference <= 0:
        return 0.0
    t = fault.t_end
    last = done_times[-1] if done_times else t
    while t <= last:
        if completion_rate(done_times, t, t + RATE_WINDOW_S) >= RECOVERY_THRESHOLD * reference:
            return round(t - fault.t_end, 3)
        t += 0.25
    return None


def catch_up_time(rows: Iterable[TaskRow], healed_at: float) -> float | None:
    """Seconds from heal until every task accepted before it had an effect (None: some never did)."""
    latest = healed_at
    for r in rows:
        if r.phase == "measure" and r.outcome == "ok" and r.invoke_t is not None and r.invoke_t < healed_at:
            if r.first_effect_t is None:
                return None
            latest = max(latest, r.first_effect_t)
    return round(latest - healed_at, 3)


@dataclass
class RunCheck:
    """Everything the checker concludes about one system's run."""

    system: str
    counts: Classification
    throughput_tps: float
    e2e_latency_ms: Latency
    api_latency_ms: Latency
    api_latency_unloaded_ms: Latency
    recovery_s: float | None
    faults: list[dict[str, Any]]
    identities_broken: list[str]
    t0: float
    rss_mb: dict[str, dict[str, float]] = field(default_factory=dict)
    pending_max: int = 0
    in_flight_max: int = 0
    instrument_check: instruments.Assessment = field(default_factory=instruments.Assessment)

    def as_result(self) -> dict[str, Any]:
        """The ``runs[]`` entry of results.json."""
        counts = asdict(self.counts)
        return {
            "system": self.system,
            "applicable": True,
            **counts,
            "throughput_tps": self.throughput_tps,
            "e2e_latency_ms": asdict(self.e2e_latency_ms),
            "api_latency_ms": asdict(self.api_latency_ms),
            "api_latency_unloaded_ms": asdict(self.api_latency_unloaded_ms),
            "recovery_s": self.recovery_s,
            "faults": self.faults,
            "identities_broken": self.identities_broken,
            "rss_mb": self.rss_mb,
            "pending_max": self.pending_max,
            "in_flight_max": self.in_flight_max,
            **self.instrument_check.as_result(),
        }


def check(ledger: Ledger, system: str) -> RunCheck:
    """Classify one run's ledger and compute its throughput, latencies and recovery times."""
    rows = task_rows(ledger)
    counts = classify(rows)
    measured = [r for r in rows if r.phase == "measure"]
    meta = ledger.meta()
    t0 = float(meta.get("t0") or min((r.invoke_t for r in measured if r.invoke_t is not None), default=0.0))
    done = sorted(r.first_effect_t for r in measured if r.first_effect_t is not None and r.outcome == "ok")
    e2e = [r.first_effect_t - r.invoke_t for r in measured
           if r.outcome == "ok" and r.first_effect_t is not None and r.invoke_t is not None]
    api = [r.complete_t - r.invoke_t for r in measured
           if r.outcome == "ok" and r.complete_t is not None and r.invoke_t is not None]
    warm = [r.complete_t - r.invoke_t for r in rows
            if r.phase == "warmup" and r.outcome == "ok" and r.complete_t is not None and r.invoke_t is not None]
    first_invoke = min((r.invoke_t for r in measured if r.invoke_t is not None), default=t0)
    span = (done[-1] - first_invoke) if done else 0.0
    throughput = round(len(done) / span, 3) if span > 0 else 0.0
    faults = []
    recoveries = []
    load_end = meta.get("load_end")
    for f in ledger.faults():
        if f.action == "skipped":  # drawn by the schedule, nothing to hit in this system
            faults.append({"at_s": round(f.t_start - t0, 3), "until_s": round(f.t_start - t0, 3), "action": f.action,
                           "target": f.target, "detail": f.detail, "recovery_s": None, "recovery_kind": None})
            continue
        # Completion rate can only come back while load still arrives; a fault healed after the
        # load ended recovers when the backlog it left is done (catch-up).
        rate_based = load_end is None or f.t_end is None or f.t_end + RATE_WINDOW_S <= float(load_end)
        rec = recovery_time(done, f, t0) if rate_based else catch_up_time(measured, f.t_end or 0.0)
        recoveries.append(rec)
        faults.append({
            "at_s": round(f.t_start - t0, 3),
            "until_s": None if f.t_end is None else round(f.t_end - t0, 3),
            "action": f.action,
            "target": f.target,
            "detail": f.detail,
            "recovery_s": rec,
            "recovery_kind": "rate" if rate_based else "catch-up",
        })
    # The run recovers when its slowest fault does; one fault that never recovers makes it None.
    known = [r for r in recoveries if r is not None]
    recovery = max(known) if known and len(known) == len(recoveries) else None
    rss: dict[str, list[float]] = {}
    for smp in ledger.samples("rss_bytes"):
        rss.setdefault(smp.source, []).append(smp.value / 2**20)
    backlog = {m: max((smp.value for smp in ledger.samples(m)), default=0) for m in ("pending", "in_flight")}
    return RunCheck(
        rss_mb={k: {"start": round(v[0], 1), "max": round(max(v), 1), "end": round(v[-1], 1)} for k, v in rss.items()},
        pending_max=int(backlog["pending"]),
        in_flight_max=int(backlog["in_flight"]),
        system=system,
        counts=counts,
        throughput_tps=throughput,
        e2e_latency_ms=Latency.of(e2e),
        api_latency_ms=Latency.of(api),
        api_latency_unloaded_ms=Latency.of(warm),
        recovery_s=recovery,
        faults=faults,
        identities_broken=check_identities(counts),
        t0=t0,
        instrument_check=instruments.assess(ledger.samples(), ledger.faults(), t0),
    )
