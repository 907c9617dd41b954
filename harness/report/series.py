"""Time series of one system's run, read from its ledger: what the report's charts plot.

Times are seconds since the start of the measured load (the ledger's ``t0``), the x axis of
every chart and of results.json's fault windows. Rates and latency percentiles are bucketed;
the bucketing functions are pure so they can be tested on their own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from harness.analysis.checker import percentile
from harness.ledger import Ledger, task_rows

NICE_WIDTHS_S = (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0)
"""Bucket widths a chart may use, smallest first."""
MAX_BUCKETS = 300
"""Most buckets on one time chart: enough detail, a small page."""
CDF_POINTS = 300
"""Most points of one latency distribution curve."""
PERCENTILES = (50, 95, 99)
"""Latency percentiles plotted over time."""
CALL_PERCENTILES = (50, 99)
"""Percentiles of downstream call time plotted over time (client and server side)."""
INSTRUMENTS = (("downstream", "service_p99_ms", "downstream service p99"),
               ("downstream", "poll_ms", "downstream /stats answer"),
               ("sampler", "ledger_write_ms", "ledger write"))
"""Harness instruments charted (source, metric, label), all in milliseconds (see harness.analysis.instruments)."""

Point = tuple[float, float]


def bucket_width(span_s: float, max_buckets: int = MAX_BUCKETS) -> float:
    """The smallest nice bucket width that covers span_s in at most max_buckets buckets."""
    for width in NICE_WIDTHS_S:
        if span_s / width <= max_buckets:
            return width
    return math.ceil(span_s / max_buckets)


def bucket_index(t: float, width: float, n: int) -> int | None:
    """Bucket of time t (None outside [0, n * width))."""
    if t < 0:
        return None
    i = int(t // width)
    return i if i < n else None


def rate_per_s(times: Iterable[float], width: float, n: int) -> list[float]:
    """Events per second in each of n buckets of width seconds."""
    counts = [0] * n
    for t in times:
        i = bucket_index(t, width, n)
        if i is not None:
            counts[i] += 1
    return [c / width for c in counts]


def _grouped(points: Iterable[Point], width: float, n: int) -> list[list[float]]:
    groups: list[list[float]] = [[] for _ in range(n)]
    for t, value in points:
        i = bucket_index(t, width, n)
        if i is not None:
            groups[i].append(value)
    return groups


def percentiles_per_bucket(points: Iterable[Point], width: float, n: int,
                           ps: Sequence[float] = PERCENTILES) -> list[list[float | None]]:
    """For each p in ps, the nearest-rank percentile of the values in each bucket (None if empty)."""
    groups = [sorted(g) for g in _grouped(points, width, n)]
    return [[percentile(g, p) if g else None for g in groups] for p in ps]


def max_per_bucket(points: Iterable[Point], width: float, n: int) -> list[float | None]:
    """The largest value in each bucket (None if empty): a sampled gauge at bucket resolution."""
    return [max(g) if g else None for g in _grouped(points, width, n)]


def cdf_points(values: Iterable[float], max_points: int = CDF_POINTS) -> list[Point]:
    """The empirical CDF as (value, share of values <= it), thinned to at most max_points points.

    The thinning keeps evenly spaced ranks and always the last one, so the tail (where the
    systems differ) stays visible at its true value.
    """
    xs = sorted(values)
    n = len(xs)
    if n == 0:
        return []
    step = max(1, math.ceil(n / max_points))
    ranks = list(range(step - 1, n, step))
    if ranks[-1] != n - 1:
        ranks.append(n - 1)
    return [(xs[r], (r + 1) / n) for r in ranks]


@dataclass
class RunSeries:
    """Everything the charts of one system's run plot, on a shared time axis."""

    system: str
    """System name."""
    t0: float
    """Start of the measured load, epoch seconds (time 0 of every chart)."""
    end_s: float
    """End of the time axis: the drain's end or the last record."""
    width_s: float
    """Bucket width."""
    x: list[float]
    """Bucket midpoints, seconds since the start of the measured load."""
    accepted: list[float]
    """Requests answered 2xx per second, by answer time."""
    refused: list[float]
    """Requests refused per second, by answer time."""
    no_answer: list[float]
    """Requests without an answer per second, by give-up time."""
    completed: list[float]
    """Accepted tasks reaching their first effect per second."""
    e2e_ms: list[list[float | None]]
    """End-to-end latency percentiles (PERCENTILES) of accepted tasks, by send time."""
    api_ms: list[list[float | None]]
    """API latency percentiles (PERCENTILES) of accepted requests, by send time."""
    pending: list[float | None]
    """Accepted tasks without an effect yet (sampled)."""
    in_flight: list[float | None]
    """Attempts running (sampled)."""
    rss_mb: dict[str, list[float | None]] = field(default_factory=dict)
    """Resident memory per process (sampled), in MiB."""
    e2e_cdf: list[Point] = field(default_factory=list)
    """Distribution of end-to-end latency (ms) of accepted tasks."""
    api_cdf: list[Point] = field(default_factory=list)
    """Distribution of API latency (ms) of accepted requests."""
    call_client_ms: list[list[float | None]] = field(default_factory=list)
    """Downstream call time at the client (CALL_PERCENTILES), by call start; empty without calls."""
    call_server_ms: list[list[float | None]] = field(default_factory=list)
    """Downstream call time at the service (CALL_PERCENTILES), by receipt; empty without calls."""
    instruments: dict[str, list[float | None]] = field(default_factory=dict)
    """Each harness instrument (INSTRUMENTS, by label), the largest sample per bucket, in ms."""


def read_series(ledger: Ledger, system: str, t0: float | None = None) -> RunSeries:
    """The time series of one run's ledger; t0 defaults to the ledger's ``t0`` meta."""
    meta = ledger.meta()
    rows = [r for r in task_rows(ledger) if r.phase == "measure"]
    if t0 is None:
        t0 = float(meta.get("t0") or min((r.invoke_t for r in rows if r.invoke_t is not None), default=0.0))
    ops = ledger.ops("measure")
    samples = [s for s in ledger.samples() if s.t >= t0]
    accepted = [r for r in rows if r.outcome == "ok"]
    ends = [float(meta["drain_end"]) - t0] if "drain_end" in meta else []
    ends += [o.complete_t - t0 for o in ops] + [r.last_effect_t - t0 for r in rows if r.last_effect_t is not None]
    span = max([*ends, 1.0])
    width = bucket_width(span)
    n = math.ceil(span / width)
    e2e = [(r.invoke_t - t0, 1000 * (r.first_effect_t - r.invoke_t)) for r in accepted
           if r.invoke_t is not None and r.first_effect_t is not None]
    api = [(o.invoke_t - t0, 1000 * (o.complete_t - o.invoke_t)) for o in ops if o.outcome == "ok"]
    rss: dict[str, list[Point]] = {}
    for s in samples:
        if s.metric == "rss_bytes":
            rss.setdefault(s.source, []).append((s.t - t0, s.value / 2**20))
    spans = ledger.spans()
    calls = {name: [(sp.t_start - t0, 1000 * (sp.t_end - sp.t_start)) for sp in spans if sp.name == name]
             for name in ("downstream.client", "downstream.server")}
    instruments = {label: max_per_bucket(((s.t - t0, s.value) for s in samples
                                          if s.source == source and s.metric == metric), width, n)
                   for source, metric, label in INSTRUMENTS}
    return RunSeries(
        system=system,
        t0=t0,
        end_s=span,
        width_s=width,
        x=[(i + 0.5) * width for i in range(n)],
        accepted=rate_per_s((o.complete_t - t0 for o in ops if o.outcome == "ok"), width, n),
        refused=rate_per_s((o.complete_t - t0 for o in ops if o.outcome == "fail"), width, n),
        no_answer=rate_per_s((o.complete_t - t0 for o in ops if o.outcome == "info"), width, n),
        completed=rate_per_s((r.first_effect_t - t0 for r in accepted if r.first_effect_t is not None), width, n),
        e2e_ms=percentiles_per_bucket(e2e, width, n),
        api_ms=percentiles_per_bucket(api, width, n),
        pending=max_per_bucket(((s.t - t0, s.value) for s in samples if s.metric == "pending"), width, n),
        in_flight=max_per_bucket(((s.t - t0, s.value) for s in samples if s.metric == "in_flight"), width, n),
        rss_mb={source: max_per_bucket(points, width, n) for source, points in sorted(rss.items())},
        e2e_cdf=cdf_points(ms for _, ms in e2e),
        api_cdf=cdf_points(ms for _, ms in api),
        call_client_ms=percentiles_per_bucket(calls["downstream.client"], width, n, CALL_PERCENTILES)
        if calls["downstream.client"] else [],
        call_server_ms=percentiles_per_bucket(calls["downstream.server"], width, n, CALL_PERCENTILES)
        if calls["downstream.server"] else [],
        instruments={k: v for k, v in instruments.items() if any(x is not None for x in v)},
    )
