"""Downstream calls on the report: both ends of a call paired, summarized, told in stories and charted;
a degraded harness named in the verdict box."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.ledger import Ledger, create_ledger
from harness.model.history import Event, Op, Span
from harness.report.calls import CLIENT, SERVER, pair, summarize
from harness.report.charts import time_charts
from harness.report.overview import render_run_index
from harness.report.scenario import render_scenario
from harness.report.series import read_series
from harness.report.stories import stories
from harness.report.views import ScenarioView, SystemView

T0 = 1_800_000_000.0


def client(task: str, start: float, end: float, detail: str, attempt: int = 0) -> Span:
    return Span(task, "native", CLIENT, attempt, "api", 11, T0 + start, T0 + end, detail)


def server(task: str, start: float, end: float, attempt: int = 0) -> Span:
    return Span(task, "native", SERVER, attempt, "downstream", 7, T0 + start, T0 + end, "200 (ledger commit 0.2 ms)")


def test_pair_matches_task_attempt_and_time() -> None:
    calls, server_only = pair(
        [client("a", 1.0, 1.01, "200"), client("a", 5.0, 15.0, "ReadTimeout", attempt=1),
         client("b", 2.0, 2.1, "ConnectError: refused")],
        [server("a", 1.002, 1.004), server("a", 14.0, 14.001, attempt=1), server("c", 3.0, 3.001),
         server("a", 30.0, 30.001)])  # same task and attempt 0, but long after its call: not its server side
    assert [(c.client.task_id, c.client.attempt, c.server is not None) for c in calls] == [
        ("a", 0, True), ("b", 0, False), ("a", 1, True)]
    assert server_only == 2
    slow = calls[2]
    assert (slow.ok, slow.outcome) == (False, "ReadTimeout")
    assert slow.client_s == pytest.approx(10.0) and slow.server_s == pytest.approx(0.001, abs=1e-6)
    assert slow.outside_s == pytest.approx(9.999, abs=1e-6)
    assert slow.breakdown() == ("attempt 1: 10000 ms at the client (ReadTimeout); reached the service after "
                                "9000 ms, served in 1.0 ms (200 (ledger commit 0.2 ms)), answer reached the client "
                                "999 ms later")
    assert calls[1].breakdown() == ("attempt 0: 100 ms at the client (ConnectError: refused); "
                                    "the service never recorded it")


def test_summary_counts_outcomes_and_lists_the_slowest() -> None:
    clients = [client(f"t{i}", i, i + 0.002 * (i + 1), "200") for i in range(8)]
    clients.append(client("x", 9.0, 19.0, "ReadTimeout"))
    servers = [server(f"t{i}", i + 0.0005, i + 0.0015) for i in range(8)]
    s = summarize(clients, servers)
    assert s is not None
    assert (s.calls, s.ok, s.outcomes, s.server_only) == (9, 8, {"200": 8, "ReadTimeout": 1}, 0)
    assert s.client_ms.max == pytest.approx(10_000.0) and s.server_ms.n == 8 and s.outside_ms.n == 8
    assert [c.client.task_id for c in s.slowest] == ["x", "t7", "t6", "t5", "t4"]
    assert summarize([], []) is None


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    """A native run whose one lost task's call timed out at the client though the service answered it at once."""
    led = create_ledger(tmp_path / "native" / "ledger.db")
    led.set_meta("t0", T0)
    led.set_meta("drain_end", T0 + 20)
    led.record_ops([Op("m1", "native", "sleep", "measure", T0 + 0.1, T0 + 0.11, "ok", 202, None, "c"),
                    Op("m2", "native", "sleep", "measure", T0 + 0.2, T0 + 0.21, "ok", 202, None, "c")])
    for task, type_, t in [("m1", "start", 0.2), ("m1", "effect", 1.3), ("m2", "start", 0.3), ("m2", "error", 11.3)]:
        error = "ReadTimeout" if type_ == "error" else None
        led.record_event(Event(task, "native", type_, 0, "api", 11, T0 + t, error))
    led.record_event(Event("m2", "native", "call", 0, "downstream", 7, T0 + 9.0, None))
    for span in (client("m1", 1.2, 1.25, "200"), server("m1", 1.21, 1.22),
                 client("m2", 1.3, 11.3, "ReadTimeout"), server("m2", 9.0, 9.002)):
        led.record_span(span)
    for i, v in enumerate([1.5, 2.0, 140.0]):
        led.record_sample("downstream", "service_p99_ms", v, t=T0 + i + 0.5)
        led.record_sample("sampler", "ledger_write_ms", v / 10, t=T0 + i + 0.5)
    yield led
    led.close()


def test_story_tells_where_a_failed_call_spent_its_time(ledger: Ledger) -> None:
    (lost,) = stories(ledger, T0, ["m2"], [], [], end_s=20.0)
    assert lost.calls == ["attempt 0: 10000 ms at the client (ReadTimeout); reached the service after 7700 ms, "
                          "served in 2.0 ms (200 (ledger commit 0.2 ms)), answer reached the client 2298 ms later"]
    whats = [s.what for s in lost.steps]
    assert whats.index("downstream call sent (attempt 0)") < whats.index("downstream received (attempt 0)") \
        < whats.index("downstream answered (attempt 0)") < whats.index("downstream call ended (attempt 0)")
    ended = next(s for s in lost.steps if s.what == "downstream call ended (attempt 0)")
    assert ended.detail == "api (pid 11): ReadTimeout after 10000 ms" and ended.t_s == pytest.approx(11.3)


def test_series_and_charts_of_calls_and_instruments(ledger: Ledger) -> None:
    s = read_series(ledger, "native")
    p50, p99 = s.call_client_ms  # both calls start in the second bucket: 50 ms and 10 s
    assert p50[1] == pytest.approx(50.0, rel=1e-3) and p99[1] == pytest.approx(10_000.0, rel=1e-3) and p50[0] is None
    p50, _ = s.call_server_ms  # by receipt: m1's at 1.21 s, m2's at 9.0 s
    assert p50[1] == pytest.approx(10.0, rel=1e-3) and p50[9] == pytest.approx(2.0, rel=1e-3)
    assert list(s.instruments) == ["downstream service p99", "ledger write"]  # nothing sampled: no line
    assert s.instruments["downstream service p99"][:3] == [1.5, 2.0, 140.0]
    charts = time_charts(s, [], "native", "x")
    assert [x["label"] for x in charts["downstream"]["series"]] == ["client p50", "client p99", "server p50",
                                                                     "server p99"]
    assert len(charts["instruments"]["data"]) == 1 + 2


def _run(**extra: Any) -> dict[str, Any]:
    return {"system": "native", "applicable": True, "attempted": 2, "accepted": 2, "completed": 1, "lost": 1,
            "failed": 1, "silent_loss": 0, "faults": [], "lost_ids": ["m2"], "duplicated_ids": [], **extra}


def test_page_shows_the_calls_table_and_a_degraded_harness(ledger: Ledger) -> None:
    reason = "downstream service time p99 above 100 ms for 3 samples in a row outside fault windows"
    doc: dict[str, Any] = {"scenario": "probe", "runs": [_run(harness_degraded=True, harness_degraded_reason=reason,
                                              harness_instruments={"peaks": {"downstream.service_p99_ms": 140.0}})],
           "manifest": {"downstream_client": "httpx 0.28.1 AsyncClient: timeout 10 s"}}
    calls = summarize(ledger.spans(CLIENT), ledger.spans(SERVER))
    view = ScenarioView(doc, [SystemView(doc["runs"][0], series=read_series(ledger, "native"),
                                         stories=stories(ledger, T0, ["m2"], [], [], 20.0), calls=calls)])
    html = render_scenario(view)
    assert f"<b>Harness degraded (native):</b> {reason}." in html
    assert "<h2>Downstream calls: where the time went</h2>" in html
    assert "ReadTimeout 1" in html and "httpx 0.28.1 AsyncClient: timeout 10 s" in html
    assert "native-downstream" in html and "native-instruments" in html
    assert f"yes: {reason}" in html  # the per-system facts
    clean = dict(doc, runs=[_run(harness_degraded=False, harness_degraded_reason="")])
    assert "Harness degraded" not in render_run_index("r", [("probe/index.html", clean)], [], [])
    assert "Harness degraded (native)" in render_run_index("r", [("probe/index.html", doc)], [], [])
