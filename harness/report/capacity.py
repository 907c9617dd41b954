"""The capacity section of a scenario page, from results.json alone: each system's knee (median and range
over its repeated ladders) beside its reference ceiling, the ceilings in detail, the ladders as a chart,
and where the time went at the knee.

A run's ``capacity`` holds ``ladders`` (one dict per ladder), ``knee_median``, ``knee_range`` and
``completes_median`` when the ladder was repeated; results.json written before then have one
ladder's ``knee_rate`` and ``max_sustained_tps`` only.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.report.charts import Spec, align, spec
from harness.report.metrics import applicable, ordered_runs

OFFERED_COLOR = "#999999"
"""The offered-rate diagonal of the ladder chart."""
HELD_BELOW = 0.7
"""A knee under this share of its ceiling is held below it by some layer, which the page names."""


@dataclass(frozen=True)
class Knee:
    """One system's knee, beside its reference ceiling."""

    system: str
    """The system."""
    knee: float | None
    """Highest sustained offered rate (requests/s): the median over ladders."""
    low: float | None
    """Lowest knee of its ladders (None: one ladder)."""
    high: float | None
    """Highest knee of its ladders (None: one ladder)."""
    ladders: int
    """Ladders run."""
    completes: float | None
    """Completions per second at the knee (median over ladders)."""
    accepts: float | None
    """Highest rate whose requests were (nearly) all accepted (median over ladders)."""
    ceiling: float | None
    """Its reference ceiling: the engine's own load tester, or for a system with no engine the load generator."""
    ceiling_of: str
    """What the ceiling measured."""
    saturated: bool | None
    """A step past the knee fell behind in every ladder (False: the ladder ended first, the knee is a lower
    bound; None: not recorded)."""
    durability: str = ""
    """When the system's store has an accepted task on disk (its system.toml ``durability``): capacities compare
    only on equal footing."""
    emitter_bound: bool = False
    """Its engine ceiling's pushes were too slow to show the engine's limit."""
    held_by: str = ""
    """The stage whose time grows most past the knee (:func:`held_by`), with its figures; empty: not measured."""
    behind: str = ""
    """How far its engine's load tester fell behind its pushes by the end of its wait (``6763 of 10611 ran``);
    empty: it ran them all, or no engine ceiling."""

    @property
    def share(self) -> float | None:
        """The knee as a share of the ceiling."""
        return self.knee / self.ceiling if self.knee is not None and self.ceiling else None


@dataclass(frozen=True)
class Section:
    """Everything the capacity section shows."""

    knees: list[Knee]
    """One per system, in page order."""
    ceilings: list[list[Any]]
    """The ceilings in detail, one row per system."""
    errors: list[str]
    """Ceilings that could not be measured, and why."""
    breakdowns: list[tuple[str, list[list[Any]]]] = field(default_factory=list)
    """(heading, rows of stage, tasks, p50 ms, p99 ms): where the time went at the knee and past it."""
    chart: Spec | None = None
    """The ladders as a chart."""
    held_below: float = HELD_BELOW
    """A knee under this share of its ceiling is named as held below it."""


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _median(ladders: Sequence[Mapping[str, Any]], key: str) -> float | None:
    values = [v for v in (_num(lad.get(key)) for lad in ladders) if v is not None]
    return statistics.median(values) if values else None


def knee(run: Mapping[str, Any]) -> Knee:
    """A run's knee from its ``capacity`` entry (repeated ladders or one)."""
    cap = run["capacity"]
    ladders: list[Mapping[str, Any]] = [lad for lad in cap.get("ladders") or [] if isinstance(lad, Mapping)]
    value = _num(cap.get("knee_median")) if cap.get("knee_median") is not None else _num(cap.get("knee_rate"))
    span = cap.get("knee_range") if len(ladders) > 1 else None
    low, high = (_num(span[0]), _num(span[1])) if isinstance(span, list | tuple) and len(span) == 2 else (None, None)
    completes = _num(cap.get("completes_median"))
    if completes is None:
        completes = _num(cap.get("max_sustained_tps"))
    accepts = _num(cap.get("accept_knee_median"))
    if accepts is None:
        accepts = _median(ladders, "accept_knee_rate") if ladders else _num(cap.get("accept_knee_rate"))
    ref = cap.get("reference") or {}
    engine, generator = _num(ref.get("engine_runs_per_s")), _num(ref.get("generator_req_per_s"))
    ceiling, of = (engine, "engine (its own load tester, runs/s)") if engine else (
        generator, "load generator (req/s)") if generator else (None, "")
    flags = [lad.get("saturated") for lad in ladders] if ladders else [cap.get("saturated")]
    saturated = None if any(f is None for f in flags) else all(bool(f) for f in flags)
    detail = (ref.get("details") or {}).get("engine") or {}
    bound = bool(detail.get("emitter_bound"))
    behind = f"{detail.get('executed')} of {detail.get('pushed')} pushes ran" if detail.get("finished") is False else ""
    return Knee(str(run["system"]), value, low, high, max(1, len(ladders)), completes, accepts, ceiling, of,
                saturated, str(run.get("durability") or ""), bound, held_by(cap), behind)


def _same_rate(a: float, b: float) -> bool:
    """Rates as results.json keys them (``where_time_goes``: 6 significant digits) and as numbers are the same."""
    return math.isclose(a, b, rel_tol=1e-5)


def held_by(cap: Mapping[str, Any]) -> str:
    """The layer that holds the knee where it is: of the stages measured at the knee and at the step past it
    (``where_time_goes``), the one whose median grows most; a span inside the API stage (the trigger waiting for a
    thread, the call into the engine) names the layer more precisely when it grew by at least half as much."""
    steps = {float(rate): {s["stage"]: s for s in stages if s.get("p50_ms") is not None}
             for rate, stages in (cap.get("where_time_goes") or {}).items()}
    knee_rate = _num(cap.get("knee_rate"))
    at_key = next((r for r in steps if knee_rate is not None and _same_rate(r, knee_rate)), None)
    past = min((r for r in steps if at_key is not None and r > at_key and not _same_rate(r, at_key)), default=None)
    if at_key is None or past is None:
        return ""
    at, beyond = steps[at_key], steps[past]
    growth = {name: beyond[name]["p50_ms"] - at[name]["p50_ms"] for name in at if name in beyond}
    if not growth:
        return ""
    top = max(growth, key=lambda name: growth[name])
    spans = [n for n in growth if n.startswith("span ") and growth[n] >= growth[top] / 2]
    if spans and top.startswith("API"):
        top = max(spans, key=lambda name: growth[name])
    return (f"{top}: p50 {at[top]['p50_ms']:.0f} ms at the knee ({at_key:g}/s) → {beyond[top]['p50_ms']:.0f} ms "
            f"at {past:g}/s")


def _ceilings(run: Mapping[str, Any]) -> list[Any]:
    ref = run["capacity"].get("reference") or {}
    pg = ref.get("postgres_commits_per_s") or {}
    return [run["system"], ref.get("engine_runs_per_s"), " / ".join(f"{pg[k]:g}" for k in sorted(pg, key=int)) or "—",
            ref.get("generator_req_per_s"), ", ".join((run.get("links") or {}).get("proxied", [])) or "none"]


def _breakdowns(runs: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[list[Any]]]]:
    out = []
    for r in runs:
        for rate, stages in (r["capacity"].get("where_time_goes") or {}).items():
            at_knee = _same_rate(float(rate), float(r["capacity"].get("knee_rate") or -1))
            rows = [[s["stage"], s.get("n"), s.get("p50_ms"), s.get("p99_ms")] for s in stages]
            out.append((f"{r['system']} at {rate}/s ({'the knee' if at_knee else 'past the knee'})", rows))
    return out


def _curve(steps: Any) -> list[tuple[float, float]]:
    return [(float(s["rate"]), float(s["completed_tps"])) for s in steps or [] if isinstance(s, Mapping)]


def ladder_chart(runs: Sequence[Mapping[str, Any]], colors: Mapping[str, str]) -> Spec:
    """Completions per second at each offered rate: each system's median ladder (solid) and its other ladders
    (dashed, same colour), and the offered rate itself."""
    curves, labels, hues, dashed = [], [], [], []
    for r in runs:
        cap, name = r["capacity"], r["system"]
        ladders = [lad for lad in cap.get("ladders") or [] if isinstance(lad, Mapping)]
        middle = int(cap.get("median_ladder") or 0)
        curves.append(_curve(cap.get("steps")))
        labels.append(f"{name} (median of {len(ladders)} ladders)" if len(ladders) > 1 else name)
        hues.append(colors[name])
        for i, lad in enumerate(ladders, start=1):
            if len(ladders) > 1 and i != middle:
                curves.append(_curve(lad.get("steps")))
                labels.append(f"{name} ladder {i}")
                hues.append(colors[name])
                dashed.append(labels[-1])
    offered = sorted({x for c in curves for x, _ in c})
    xs, ys = align([*curves, [(x, x) for x in offered]])
    return spec("capacity-ladder", "Completions per second at each offered rate", xs, ys, [*labels, "offered"],
                [*hues, OFFERED_COLOR], y_label="completed tasks/s", x_label="offered rate (requests/s, log scale)",
                x_short="offered/s", log_x=True, points=True, dashed=[*dashed, "offered"])


def section(doc: Mapping[str, Any], colors: Mapping[str, str]) -> Section | None:
    """The capacity section of a scenario (None when no run measured capacity)."""
    runs = [r for r in ordered_runs(doc) if applicable(r) and r.get("capacity")]
    if not runs:
        return None
    errors = [f"{r['system']}: {name}: {detail['error']}" for r in runs
              for name, detail in ((r["capacity"].get("reference") or {}).get("details") or {}).items()
              if isinstance(detail, Mapping) and detail.get("error")]
    return Section([knee(r) for r in runs], [_ceilings(r) for r in runs], errors, _breakdowns(runs),
                   ladder_chart(runs, colors))
