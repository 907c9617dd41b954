"""Did the harness itself limit a run? Its instruments, read back from the samples :mod:`harness.runtime.sampler` wrote.

A run is ``harness_degraded`` when, outside every fault window, one of the harness's own components
was slow for ``SUSTAINED`` samples in a row (about 3 s at one sample a second): then the numbers may
measure the harness rather than the system, and results.json and the page say so. The limits:

- the downstream service's p99 service time (received -> answered) above 100 ms: a healthy provider
  answers a recorded call in about a millisecond here, and the scenarios' jobs last 0.1 s or more;
- its ``/stats`` answering slower than 250 ms: its event loop stalls, or connections queue before it;
- more than 20 calls received and not yet answered at once: calls pile up inside the service;
- the sampler's own ledger writes taking longer than 250 ms: every writer (apps, Locust, downstream)
  waits that long for the shared ledger.

Inside a fault window the harness is expected to see odd numbers (a burst after a pause, a link that
drops connections), so samples there are left out and end a streak, as does a sample under the limit.
Single spikes are not enough: a shared 2-core machine stalls a process for tens of milliseconds now
and then, which moves no verdict. The largest value of every instrument
outside fault windows goes into results.json (``harness_instruments``) so a reader sees the margin.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from harness.model.history import FaultRecord, Sample

SUSTAINED = 3
"""Consecutive samples over a limit (outside fault windows) that make a run degraded."""


@dataclass(frozen=True)
class Limit:
    """One instrument and the value above which the harness component it watches is the bottleneck."""

    source: str
    """Sample source (``downstream``, ``sampler``)."""
    metric: str
    """Sample metric."""
    above: float
    """Limit: values above it count."""
    label: str
    """What the instrument measures, for the reason line."""
    unit: str = "ms"
    """Unit of the values."""


LIMITS = (
    Limit("downstream", "service_p99_ms", 100.0, "downstream service time p99"),
    Limit("downstream", "poll_ms", 250.0, "downstream /stats answer time"),
    Limit("downstream", "in_progress", 20.0, "downstream calls in progress", unit="calls"),
    Limit("sampler", "ledger_write_ms", 250.0, "ledger write time"),
)
"""The instruments checked, with their limits (see the module's docstring for why these values)."""


@dataclass
class Assessment:
    """What the instruments say about one run."""

    degraded: bool = False
    """The harness was a bottleneck outside fault windows."""
    reasons: list[str] = field(default_factory=list)
    """One line per limit held for SUSTAINED samples or more."""
    peaks: dict[str, float] = field(default_factory=dict)
    """Largest value of each instrument outside fault windows (``source.metric``)."""
    samples: int = 0
    """Instrument samples read outside fault windows."""

    @property
    def reason(self) -> str:
        """The reasons on one line (empty when not degraded)."""
        return "; ".join(self.reasons)

    def as_result(self) -> dict[str, object]:
        """The run's results.json fields."""
        return {"harness_degraded": self.degraded, "harness_degraded_reason": self.reason,
                "harness_instruments": {"peaks": self.peaks, "samples": self.samples, "sustained": SUSTAINED,
                                        "limits": {f"{lim.source}.{lim.metric}": lim.above for lim in LIMITS}}}


def windows(faults: Iterable[FaultRecord], end: float) -> list[tuple[float, float]]:
    """Fault windows as (start, end) epoch seconds; a fault never healed lasts until end."""
    return [(f.t_start, end if f.t_end is None else f.t_end) for f in faults if f.action != "skipped"]


def _inside(t: float, spans: Sequence[tuple[float, float]]) -> bool:
    return any(a <= t <= b for a, b in spans)


def assess(samples: Iterable[Sample], faults: Iterable[FaultRecord], t0: float, limits: Sequence[Limit] = LIMITS,
           sustained: int = SUSTAINED) -> Assessment:
    """Check the samples taken from t0 on against the limits, outside the faults' windows."""
    by_key: dict[tuple[str, str], list[Sample]] = {(lim.source, lim.metric): [] for lim in limits}
    last = t0
    for s in samples:
        if s.t >= t0 and (s.source, s.metric) in by_key:
            by_key[(s.source, s.metric)].append(s)
            last = max(last, s.t)
    spans = windows(faults, last)
    out = Assessment()
    for lim in limits:
        streak: list[Sample] = []
        worst: list[Sample] = []
        for s in sorted(by_key[(lim.source, lim.metric)], key=lambda s: s.t):
            if _inside(s.t, spans):
                streak = []
                continue
            out.samples += 1
            key = f"{lim.source}.{lim.metric}"
            out.peaks[key] = max(out.peaks.get(key, s.value), s.value)
            streak = [*streak, s] if s.value > lim.above else []
            if len(streak) > len(worst):
                worst = streak
        if len(worst) >= sustained:
            peak = max(s.value for s in worst)
            out.reasons.append(f"{lim.label} above {lim.above:g} {lim.unit} for {len(worst)} samples in a row "
                               f"outside fault windows (from {worst[0].t - t0:.1f} s, peak {peak:g} {lim.unit})")
    out.degraded = bool(out.reasons)
    return out
