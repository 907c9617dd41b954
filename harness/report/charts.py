"""Chart specifications: plain data that ``static/report.js`` draws with uPlot.

A spec says what to plot (one x array, aligned y arrays, as uPlot wants them), how to label
it, the fault windows to shade, and the y range. The Python side decides everything that
depends on the numbers (which series, shared scales); the page only draws.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.report.series import CALL_PERCENTILES, PERCENTILES, Point, RunSeries

Spec = dict[str, Any]
Column = Sequence[float | None]
"""One data array of a chart (None: no value there, the line spans the gap)."""

PALETTE = ("#1f77b4", "#2ca02c", "#ff7f0e", "#7f7f7f", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#bcbd22")
"""Colours of the series within one system's chart (systems' own colours: :mod:`harness.report.colors`)."""
PCT_COLORS = ("#1f77b4", "#ff7f0e", "#d62728")
"""p50, p95, p99."""
TIME_AXIS = "seconds since the start of the measured load"
"""x label of every time chart."""
LOG_RATIO = 20.0
"""A latency distribution spanning more than this max/min ratio gets a log x axis."""


def _round(values: Iterable[float | None], digits: int = 2) -> list[float | None]:
    return [None if v is None else round(v, digits) for v in values]


def fault_bands(faults: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """results.json fault windows as shaded bands (a fault never healed shades to the end)."""
    return [{"from": f["at_s"], "to": f.get("until_s"), "label": f"{f['action']} {f['target']}"} for f in faults]


def spec(chart_id: str, title: str, x: Column, ys: Sequence[Column], labels: Sequence[str], colors: Sequence[str],
         *, y_label: str, x_label: str = TIME_AXIS, x_short: str = "t (s)", faults: Sequence[dict[str, Any]] = (),
         sync: str | None = None, log_x: bool = False, time_x: bool = False, points: bool = False,
         dashed: Sequence[str] = ()) -> Spec:
    """One chart: x and aligned ys, labels and colours per series (dashed: these labels), shaded fault bands."""
    return {
        "id": chart_id, "title": title,
        "x": {"label": x_label, "short": x_short, "log": log_x, "time": time_x},
        "y": {"label": y_label, "max": None},
        "series": [{"label": label, "color": color, "dash": label in dashed}
                   for label, color in zip(labels, colors, strict=True)],
        "data": [list(x), *(list(y) for y in ys)],
        "faults": list(faults), "sync": sync, "points": points,
    }


def time_charts(s: RunSeries, faults: Sequence[dict[str, Any]], prefix: str, sync: str) -> dict[str, Spec]:
    """The over-time charts of one system's run, by kind."""
    bands = fault_bands(faults)
    x = _round(s.x, 3)
    pct_labels = [f"p{p}" for p in PERCENTILES]
    per = f"per second ({s.width_s:g} s buckets)" if s.width_s != 1 else "per second"
    rss = sorted(s.rss_mb.items())
    common: dict[str, Any] = {"faults": bands, "sync": sync}
    return {
        "rates": spec(f"{prefix}-rates", f"{s.system}: requests and completions {per}", x,
                      [_round(v) for v in (s.accepted, s.completed, s.refused, s.no_answer)],
                      ["accepted", "completed", "refused", "no answer"], PALETTE[:4], y_label="per second",
                      **common),
        "e2e": spec(f"{prefix}-e2e", f"{s.system}: end-to-end latency by send time", x,
                    [_round(v, 1) for v in s.e2e_ms], pct_labels, PCT_COLORS, y_label="ms", **common),
        "api": spec(f"{prefix}-api", f"{s.system}: API latency by send time", x,
                    [_round(v, 1) for v in s.api_ms], pct_labels, PCT_COLORS, y_label="ms", **common),
        "backlog": spec(f"{prefix}-backlog", f"{s.system}: backlog (accepted, not done) and attempts in flight", x,
                        [s.pending, s.in_flight], ["pending", "in flight"], PALETTE[4:6], y_label="tasks",
                        dashed=["in flight"], **common),
        "downstream": spec(f"{prefix}-downstream", f"{s.system}: downstream call time by call start", x,
                           [_round(v, 1) for v in (s.call_client_ms or [[None] * len(x)] * len(CALL_PERCENTILES))]
                           + [_round(v, 1) for v in (s.call_server_ms or [[None] * len(x)] * len(CALL_PERCENTILES))],
                           [f"{side} p{p}" for side in ("client", "server") for p in CALL_PERCENTILES],
                           [c for _ in range(2) for c in (PCT_COLORS[0], PCT_COLORS[2])], y_label="ms",
                           dashed=[f"server p{p}" for p in CALL_PERCENTILES], **common),
        "instruments": spec(f"{prefix}-instruments", f"{s.system}: harness instruments (largest sample per bucket)",
                            x, [_round(v, 1) for v in s.instruments.values()], list(s.instruments),
                            list(PALETTE[6:6 + len(s.instruments)]), y_label="ms", **common),
        "rss": spec(f"{prefix}-rss", f"{s.system}: resident memory per process", x,
                    [_round(v, 1) for _, v in rss], [name for name, _ in rss],
                    list(itertools.islice(itertools.cycle(PALETTE), len(rss))), y_label="MiB", **common),
    }


def align(curves: Sequence[Sequence[Point]]) -> tuple[list[float], list[list[float | None]]]:
    """Put curves with their own x values on one shared x array (None where a curve has no point)."""
    xs = sorted({x for curve in curves for x, _ in curve})
    index = {x: i for i, x in enumerate(xs)}
    ys: list[list[float | None]] = []
    for curve in curves:
        y: list[float | None] = [None] * len(xs)
        for x, v in curve:
            y[index[x]] = v
        ys.append(y)
    return xs, ys


def wants_log(values: Iterable[float]) -> bool:
    """Whether positive values spread over enough orders of magnitude to need a log axis."""
    xs = [v for v in values if v > 0]
    return bool(xs) and max(xs) / min(xs) > LOG_RATIO


def cdf_chart(chart_id: str, title: str, curves: Sequence[tuple[str, Sequence[Point]]],
              colors: Mapping[str, str]) -> Spec:
    """Latency distributions of several systems on one chart, each in its colour (log x when they span orders
    of magnitude)."""
    positive = [[(round(x, 1), round(p, 4)) for x, p in pts if x > 0] for _, pts in curves]
    xs, ys = align(positive)
    log = wants_log(xs)
    return spec(chart_id, title, xs, ys, [name for name, _ in curves],
                [colors[name] for name, _ in curves], y_label="share of tasks ≤ x",
                x_label=f"latency (ms{', log scale' if log else ''})", x_short="ms", log_x=log)


def share_ranges(specs: Iterable[Spec], *, y: bool = True) -> None:
    """Give time charts of one kind the same x extent (and y range), so systems side by side compare at a glance.

    The x extent is shared by padding shorter charts with empty buckets; y by a fixed top.
    """
    group = list(specs)
    end = max((s["data"][0][-1] for s in group if s["data"][0]), default=0.0)
    for s in group:
        xs = s["data"][0]
        step = xs[1] - xs[0] if len(xs) > 1 else 1.0
        while xs and xs[-1] + step / 2 <= end:
            xs.append(round(xs[-1] + step, 3))
            for column in s["data"][1:]:
                column.append(None)
    if y:
        top = max((v for s in group for ys in s["data"][1:] for v in ys if v is not None), default=0.0)
        for s in group:
            s["y"]["max"] = top * 1.05 if top > 0 else 1.0


def trend_charts(prefix: str, scenario: str, run_names: Sequence[str],
                 points: Sequence[tuple[int, dict[str, dict[str, Any]]]], systems: Sequence[str],
                 colors: Mapping[str, str]) -> list[Spec]:
    """Lost tasks and throughput of one scenario across runs, a line per system (those of systems that ran it).

    points: (run number, the scenario's runs by system), where run n is run_names[n - 1] and
    run 1 the oldest; the x axis counts runs since they are rarely evenly spaced in time.
    """
    ran = {name for _, runs in points for name in runs}
    systems = [name for name in systems if name in ran]
    xs = [n for n, _ in points]
    hues = [colors[name] for name in systems]

    def column(key: str) -> list[list[float | None]]:
        return [[runs[name].get(key) if name in runs else None for _, runs in points] for name in systems]

    specs = [
        spec(f"{prefix}-lost", f"{scenario}: lost tasks per run", xs, column("lost"), systems, hues,
             y_label="lost", x_label="run (1 = oldest)", x_short="run", points=True),
        spec(f"{prefix}-tps", f"{scenario}: throughput per run", xs, column("throughput_tps"), systems, hues,
             y_label="tasks/s", x_label="run (1 = oldest)", x_short="run", points=True),
    ]
    for s in specs:
        s["x"]["names"] = list(run_names)
    return specs
