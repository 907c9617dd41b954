"""The report: pure logic (bucketing, distributions, verdicts, comparisons), stories and exports
read from real ledgers, the ``harness report`` command, and pages of a real run opened in
headless Chromium with no network.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.front.catalog import discover
from harness.ledger import Ledger, create_ledger
from harness.model.history import Event, Op
from harness.model.paths import PROJECT_ROOT
from harness.model.spec import find_systems
from harness.report import verdict
from harness.report.charts import align, cdf_chart, share_ranges, spec, wants_log
from harness.report.export import history_records, scrub_tokens, write_history
from harness.report.facts import recovery_text
from harness.report.metrics import METRICS, TEXT_KEYS, difference, fmt, judge, text_table
from harness.report.series import (
    bucket_width,
    cdf_points,
    max_per_bucket,
    percentiles_per_bucket,
    rate_per_s,
    read_series,
)
from harness.report.stories import stories
from harness.session import Session, new_run_id

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
T0 = 1_800_000_000.0
TOKEN = "eyJhbGciOiJIUzI1.eyJzdWIiOiJ4.c2lnbmF0dXJl"
"""Shaped like Hatchet's tokens (a JWT)."""


# ---- pure logic -------------------------------------------------------------------------

@pytest.mark.parametrize(("span", "width"), [(0.5, 1.0), (300, 1.0), (301, 2.0), (3000, 10.0), (10**6, 3334)])
def test_bucket_width_keeps_charts_under_the_bucket_limit(span: float, width: float) -> None:
    assert bucket_width(span) == width


def test_rate_per_s_counts_each_bucket_and_drops_times_outside() -> None:
    assert rate_per_s([0.1, 0.2, 1.5, 2.9, -1.0, 3.0], 1.0, 3) == [2.0, 1.0, 1.0]
    assert rate_per_s([0.1, 0.2, 1.5, 2.9], 2.0, 2) == [1.5, 0.5]


def test_percentiles_per_bucket_are_nearest_rank_and_none_when_empty() -> None:
    points = [(0.5, float(v)) for v in range(1, 101)] + [(2.5, 7.0)]
    p50, p99 = percentiles_per_bucket(points, 1.0, 3, ps=(50, 99))
    assert p50 == [50.0, None, 7.0]
    assert p99 == [99.0, None, 7.0]


def test_max_per_bucket_takes_the_peak_sample() -> None:
    assert max_per_bucket([(0.1, 3.0), (0.9, 5.0), (2.2, 1.0)], 1.0, 3) == [5.0, None, 1.0]


def test_cdf_points_keep_every_point_of_a_small_sample() -> None:
    assert cdf_points([3.0, 1.0, 2.0, 4.0]) == [(1.0, 0.25), (2.0, 0.5), (3.0, 0.75), (4.0, 1.0)]
    assert cdf_points([]) == []


def test_cdf_points_thin_a_large_sample_but_keep_the_tail() -> None:
    values = [float(v) for v in range(10_001)]
    pts = cdf_points(values, max_points=100)
    assert len(pts) <= 101
    assert pts[-1] == (10_000.0, 1.0)
    assert [p for _, p in pts] == sorted(p for _, p in pts)


def test_align_puts_curves_on_one_x_array() -> None:
    xs, ys = align([[(1.0, 0.5), (3.0, 1.0)], [(2.0, 0.5), (3.0, 1.0)]])
    assert xs == [1.0, 2.0, 3.0]
    assert ys == [[0.5, None, 1.0], [None, 0.5, 1.0]]


def test_share_ranges_pads_the_shorter_chart_and_sets_one_y_top() -> None:
    short = spec("a", "a", [0.5, 1.5], [[1.0, 2.0]], ["s"], ["#000"], y_label="y")
    long = spec("b", "b", [0.5, 1.5, 2.5, 3.5], [[4.0, None, 1.0, 0.0]], ["s"], ["#000"], y_label="y")
    share_ranges([short, long])
    assert short["data"] == [[0.5, 1.5, 2.5, 3.5], [1.0, 2.0, None, None]]
    assert short["y"]["max"] == long["y"]["max"] == pytest.approx(4.2)
    alone = spec("c", "c", [0.5], [[1.0]], ["s"], ["#000"], y_label="y")
    share_ranges([alone], y=False)
    assert alone["y"]["max"] is None


def test_latency_distribution_gets_a_log_axis_only_when_it_spans_orders_of_magnitude() -> None:
    assert not wants_log([2000.0, 2100.0])
    assert wants_log([3.0, 150.0])
    wide = cdf_chart("c", "t", [("native", [(3.0, 0.5), (150.0, 1.0)]), ("hatchet", [(10.0, 1.0)])],
                     {"native": "#d55e00", "hatchet": "#0072b2"})
    assert wide["x"]["log"] and wide["data"][0] == [3.0, 10.0, 150.0]
    assert [(s["label"], s["color"]) for s in wide["series"]] == [("native", "#d55e00"), ("hatchet", "#0072b2")]


def _run(system: str, **counts: Any) -> dict[str, Any]:
    base = {"system": system, "applicable": True, "attempted": 240, "accepted": 200, "refused": 40,
            "indeterminate": 0, "recovered": 0, "completed": 200, "lost": 0, "silent_loss": 0, "failed": 0,
            "duplicated": 0, "retried": 0, "refused_ran": 0, "unexpected": 0, "throughput_tps": 14.0,
            "e2e_latency_ms": {"p50": 2004.0, "p95": 2015.0, "p99": 2049.0, "max": 2049.0},
            "api_latency_ms": {"p50": 6.0, "p95": 45.0, "p99": 117.0, "max": 158.0},
            "recovery_s": 1.25, "faults": [{"at_s": 5.0, "until_s": 7.0, "action": "kill", "target": "api"}],
            "identities_broken": []}
    return {**base, **counts}


def _doc(*runs: dict[str, Any]) -> dict[str, Any]:
    return {"scenario": "app-kill", "seed": 1, "started_at": "2026-11-25T14:55:40+00:00", "runs": list(runs)}


def test_verdict_names_the_loss_and_its_kind() -> None:
    doc = _doc(_run("hatchet", accepted=185, completed=185, refused=54, indeterminate=1, throughput_tps=13.2,
                    e2e_latency_ms={"p50": 2021.0}, api_latency_ms={"p99": 71.1}),
               _run("native", accepted=212, completed=172, lost=40, silent_loss=40))
    v = verdict(doc)
    assert v.level == "loss"
    assert v.text.startswith("native lost 40 of 212 accepted (18.9 %, all silently, 40 refused); "
                             "hatchet lost none of 185 accepted (54 refused, 1 unanswered).")
    assert ("hatchet vs native: end-to-end p50 2 021 vs 2 004 ms, API p99 71.1 vs 117 ms, "
            "throughput 13.2 vs 14.0 tasks/s, recovery 1.25 s vs 1.25 s.") in v.text


def test_verdict_follows_the_numbers_not_the_scenario() -> None:
    doc = _doc(_run("native"), _run("hatchet"))
    assert verdict(doc).level == "clean"
    assert "native lost none of 200 accepted" in verdict(doc).text
    changed = copy.deepcopy(doc)
    changed["runs"][1].update(lost=5, failed=5, silent_loss=0, completed=195)
    assert verdict(changed).level == "loss"
    assert "hatchet lost 5 of 200 accepted (2.5 %, all reported failed" in verdict(changed).text
    changed["runs"][1].update(lost=0, failed=0, completed=200, duplicated=3, recovery_s=None)
    assert verdict(changed).level == "duplicates"
    assert "hatchet lost none of 200 accepted (40 refused) and ran 3 more than once" in verdict(changed).text
    assert "recovery never vs 1.25 s" in verdict(changed).text


def test_verdict_of_a_broken_or_inapplicable_run() -> None:
    broken = _doc(_run("native", identities_broken=["accepted 3 != completed 1 + lost 1"]))
    assert verdict(broken).level == "bug"
    assert "harness bug" in verdict(broken).text
    na = _doc({"system": "native", "applicable": False, "reason": "no engine"}, _run("hatchet", faults=[]))
    v = verdict(na)
    assert v.level == "clean"
    assert "not applicable to native (no engine)" in v.text
    assert "vs" not in v.text  # nothing to compare with
    assert verdict(_doc({"system": "native", "applicable": False, "reason": "x"})).level == "na"


def test_judge_marks_better_and_worse_by_direction() -> None:
    by_key = {m.key: m for m in METRICS}
    assert judge(by_key["lost"], [40, 0]) == ["worse", "better"]
    assert judge(by_key["throughput_tps"], [8.0, 14.3]) == ["worse", "better"]
    assert judge(by_key["accepted"], [120, 100]) == ["", ""]  # no direction: not judged
    assert judge(by_key["lost"], [0, 0]) == ["", ""]
    assert judge(by_key["lost"], [0, None]) == ["", ""]


def test_difference_and_formatting() -> None:
    assert difference(120, 100) == "−20"
    assert difference(0, 0) == "="
    assert difference(2004.0, 2023.0) == "×1.01"
    assert difference(None, 3) == ""
    assert [fmt(v) for v in (None, 1234, 2023.4, 14.25, 6.061)] == ["—", "1 234", "2 023", "14.2", "6.06"]


def test_text_table_puts_native_first_and_marks_inapplicable() -> None:
    table = text_table(_doc(_run("hatchet"), {"system": "native", "applicable": False, "reason": "x"}))
    header, *rows = table.splitlines()
    assert header.split()[-2:] == ["native", "hatchet"]
    assert rows[0].split()[-2:] == ["n/a", "240"]


def _cells(line: str) -> list[tuple[int, int, str]]:
    """(start, end, text) of each cell: cells are separated by two spaces or more, never inside one."""
    return [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", line)]


@pytest.mark.parametrize("systems", [["native"], ["native", "hatchet"], ["native", "hatchet", "celery"]])
def test_text_table_columns_stay_aligned_whatever_labels_values_and_systems(systems: list[str]) -> None:
    wide = {"attempted": 1_234_567, "indeterminate": 88_888, "recovered": 7, "throughput_tps": 12345.678,
            "e2e_latency_ms": {"p50": 203.1, "p99": 79_123.4}, "recovery_s": None}
    runs = [_run(name, **(wide if i == len(systems) - 1 else {})) for i, name in enumerate(systems)]
    if len(systems) == 3:
        runs[1] = {"system": "hatchet", "applicable": False, "reason": "x"}
    table = text_table(_doc(*runs[1:], runs[0]))  # native last in results.json, first in the table
    print(table)
    header, *rows = [_cells(line) for line in table.splitlines()]
    assert [text for _, _, text in header[1:]] == systems, "native first, then the order of results.json"
    assert len(rows) == len(TEXT_KEYS)
    labels = [row[0][2] for row in rows]
    assert "indeterminate (no answer)" in labels and "recovered (no answer, yet ran)" in labels
    ends = [end for _, end, _ in header[1:]]
    for row in rows:
        assert len(row) == 1 + len(systems), row
        assert row[0][0] == 0, "labels start at the left edge"
        assert [end for _, end, _ in row[1:]] == ends, f"values out of line with the systems: {row}"
        assert row[1][0] - row[0][1] >= 2, "at least two spaces after the longest label"
    assert {text for row in rows for _, _, text in row[1:]} >= {"1 234 567", "88 888", "12 346", "79 123", "—"}


# ---- from a real ledger -----------------------------------------------------------------

@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    """A small ledger of one native run, written through the real Ledger API."""
    led = create_ledger(tmp_path / "native" / "ledger.db")
    led.set_meta("t0", T0)
    led.set_meta("drain_end", T0 + 10)
    ops = [Op("m1", "native", "sleep", "measure", T0 + 0.1, T0 + 0.12, "ok", 202, None, "builtin"),
           Op("m2", "native", "sleep", "measure", T0 + 0.5, T0 + 0.53, "ok", 202, None, "builtin"),
           Op("m3", "native", "sleep", "measure", T0 + 1.2, T0 + 1.3, "ok", 202, None, "builtin"),
           Op("m4", "native", "sleep", "measure", T0 + 2.5, T0 + 3.0, "fail", None, "connection refused", "builtin"),
           Op("w1", "native", "sleep", "warmup", T0 - 5, T0 - 4.9, "ok", 202, None, "builtin")]
    led.record_ops(ops)
    events = [("m1", "start", "api", 11, 0.2, None), ("m1", "effect", "api", 11, 1.1, None),
              ("m2", "start", "api", 11, 0.6, None),
              ("m3", "start", "worker-1", 12, 1.4, None), ("m3", "effect", "worker-1", 12, 2.4, None),
              ("m3", "effect", "worker-2", 13, 4.4, f"token {TOKEN}")]
    for task_id, type_, process, pid, t, detail in events:
        led.record_event(Event(task_id, "native", type_, 1, process, pid, T0 + t, detail))
    fault = led.fault_started("kill", "api", {"duration_s": 1.0}, t=T0 + 0.8)
    led.fault_ended(fault, t=T0 + 2.0)
    for i, (pending, rss) in enumerate([(1, 50e6), (2, 60e6), (1, 55e6)]):
        led.record_sample("system", "pending", pending, t=T0 + i + 0.5)
        led.record_sample("api", "rss_bytes", rss, t=T0 + i + 0.5)
    yield led
    led.close()


FAULTS = [{"at_s": 0.8, "until_s": 2.0, "action": "kill", "target": "api"},
          {"at_s": 8.0, "until_s": 9.0, "action": "kill", "target": "worker-1"}]


def test_stories_tell_request_attempts_effects_and_the_faults_met(ledger: Ledger) -> None:
    lost, dup = stories(ledger, T0, ["m2"], ["m3"], FAULTS, end_s=10.0)
    assert (lost.verdict, lost.attempts, lost.effects) == ("lost", 1, 0)
    assert [s.what for s in lost.steps] == ["request sent", "accepted (202)", "attempt 1 started", "fault: kill api",
                                            "healed: kill api", "fault: kill worker-1", "healed: kill worker-1",
                                            "still no effect at the end of the drain"]
    assert lost.faults == ["kill api (0.80–2.00 s)", "kill worker-1 (8.00–9.00 s)"]  # never done: to the end
    assert (dup.verdict, dup.attempts, dup.effects) == ("duplicated", 1, 2)
    assert dup.faults == ["kill api (0.80–2.00 s)"]  # its life ended at its last effect, 4.4 s
    assert "worker-2 (pid 13)" in dup.steps[-1].detail
    assert "eyJ" not in dup.steps[-1].detail  # token-shaped text is scrubbed


def test_series_of_a_ledger(ledger: Ledger) -> None:
    s = read_series(ledger, "native")
    assert (s.t0, s.width_s, s.end_s) == (T0, 1.0, 10.0)
    assert s.x[:3] == [0.5, 1.5, 2.5] and len(s.x) == 10
    assert s.accepted[:3] == [2.0, 1.0, 0.0]  # by answer time
    assert s.refused[3] == 1.0
    assert s.completed[:3] == [0.0, 1.0, 1.0]  # first effects only: m3's duplicate is not a completion
    assert s.e2e_ms[0][0] == pytest.approx(1000.0)  # m1 sent at 0.1 s, effect at 1.1 s
    assert s.pending[:3] == [1.0, 2.0, 1.0]
    assert s.rss_mb["api"][1] == pytest.approx(60e6 / 2**20)
    assert [p for _, p in s.e2e_cdf] == [0.5, 1.0]


def test_history_export_is_every_record_in_time_order(ledger: Ledger, tmp_path: Path) -> None:
    path = write_history(ledger, T0, tmp_path / "history.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == json.loads(json.dumps(history_records(ledger, T0)).replace(TOKEN, "[REDACTED]"))
    assert {r["record"] for r in lines} == {"op", "event", "fault", "sample"}
    assert [r["t"] for r in lines] == sorted(r["t"] for r in lines)
    assert lines[0]["task_id"] == "w1" and lines[0]["t_s"] == pytest.approx(-5.0)
    assert scrub_tokens("x eyJabcdefghij.eyJabcdefghij.abcdefghij y") == "x [REDACTED] y"


# ---- harness report: bad input ----------------------------------------------------------

def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize(("setup", "message"), [
    ("missing", "no such directory"),
    ("empty", "no results.json in it, its subdirectories or theirs"),
    ("garbled", "results.json: unreadable"),
    ("not-results", "not a results.json"),
])
def test_report_of_bad_input_is_one_line_and_exit_2(tmp_path: Path, setup: str, message: str) -> None:
    target = tmp_path / "dir"
    if setup != "missing":
        target.mkdir()
    if setup == "garbled":
        (target / "results.json").write_text("{not json")
    if setup == "not-results":
        (target / "results.json").write_text("[1, 2]")
    out = harness("report", str(target))
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"harness: error: {target}")
    assert message in lines[0]
    assert not (target / "index.html").exists()


# ---- a real run, rendered in Chromium -----------------------------------------------------

@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reports directory holding one real app-kill run against native (about 20 s), rebuilt by the CLI."""
    reports = tmp_path_factory.mktemp("reports")
    scenario = discover()["app-kill"]
    params = scenario.params({"duration_s": "6", "warmup": "3", "fault_at_s": "3", "rate": "10"})
    with Session(root=reports / new_run_id(), progress=lambda msg: None) as session:
        doc = session.run(scenario, [find_systems()["native"]], params)
    assert doc["runs"][0]["lost"] > 0, "SIGKILL of the native API should lose in-flight tasks"
    out = harness("report", str(reports))
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("report: ") == 3  # the scenario, the run, the list of runs
    return session.root


VIEWPORT = {"width": 1400, "height": 900}
"""The first screen the run's page must answer on."""
MATRIX_PROBE = """() => {
  const box = el => { const r = el.getBoundingClientRect(); return [Math.round(r.left), Math.round(r.right)]; };
  const t = document.getElementById('matrix');
  return {
    heads: [...t.querySelectorAll('thead th.sys')].map(th => ({system: th.dataset.system, x: box(th),
              color: getComputedStyle(th).borderTopColor})),
    rows: [...t.querySelectorAll('tbody tr')].map(tr => ({scenario: tr.dataset.scenario,
              cells: [...tr.querySelectorAll('td.cell')].map(td => ({system: td.dataset.system, x: box(td),
                        text: td.innerText, state: td.className, title: td.title}))})),
    bottom: t.getBoundingClientRect().bottom,
  };
}"""
"""Where the run page's matrix puts each system's head and cells, and where it ends."""
COLORS_PROBE = """() => [...document.querySelectorAll('[data-system][style]')].map(el => [el.dataset.system,
  getComputedStyle(el).getPropertyValue('--sys').trim()])"""
"""Every (system, colour) a page gives a head, a row or a chart cell."""


def _open(page_path: Path, shot: Path | None = None, first_screen: Path | None = None,
          probe: str | None = None) -> dict[str, Any]:
    """Open a page from disk in headless Chromium; what it logged, requested and drew (and probe's answer)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    seen: dict[str, Any] = {"errors": [], "requests": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
            page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
            page.on("request", lambda r: seen["requests"].append(r.url))
            page.goto(page_path.resolve().as_uri())
            page.wait_for_load_state("load")
            seen["specs"] = page.evaluate("(d => d ? JSON.parse(d.textContent).charts : [])"
                                          "(document.getElementById('report-data'))")
            seen["containers"] = page.locator("[data-chart]").count()
            seen["rendered"] = page.locator("[data-chart][data-rendered='1']").count()
            seen["canvases"] = page.evaluate(
                "[...document.querySelectorAll('[data-chart] canvas')].map(c => {"
                " const r = c.getBoundingClientRect(); return [r.width, r.height]; })")
            seen["text"] = page.inner_text("body")
            seen["first_table"] = page.evaluate("(t => t && t.id)(document.querySelector('table'))")
            seen["colors"] = page.evaluate(COLORS_PROBE)
            if probe is not None:
                seen["probe"] = page.evaluate(probe)
            if first_screen is not None:
                page.screenshot(path=str(first_screen))  # the viewport only: what a reader sees without scrolling
                print(f"first screen of {page_path}: {first_screen}")
            if shot is not None:
                page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    return seen


def _assert_drawn(seen: dict[str, Any], expected_charts: int) -> None:
    assert seen["errors"] == []
    assert [u for u in seen["requests"] if not u.startswith("file:")] == [], "the page must not touch the network"
    assert len(seen["specs"]) == seen["containers"] == seen["rendered"] == expected_charts
    assert len(seen["canvases"]) == expected_charts
    assert all(w > 100 and h > 100 for w, h in seen["canvases"]), seen["canvases"]


def _one_colour_each(seen: dict[str, Any], colors: dict[str, str] | None = None) -> dict[str, str]:
    """Each system's colour on a page, checked to be one per system and distinct (and as colors says)."""
    found: dict[str, set[str]] = {}
    for system, color in seen["colors"]:
        found.setdefault(system, set()).add(color.lower())
    for chart in seen["specs"]:  # charts whose lines are systems: theirs too
        for series in chart["series"]:
            if series["label"] in found:
                found[series["label"]].add(series["color"])
    assert all(len(c) == 1 for c in found.values()), f"a system in several colours: {found}"
    mine = {system: next(iter(c)) for system, c in found.items()}
    assert len(set(mine.values())) == len(mine), f"two systems share a colour: {mine}"
    if colors is not None:
        assert {k: v for k, v in colors.items() if k in mine} == mine
    return mine


def _matrix_lines_up(probe: dict[str, Any], systems: list[str]) -> None:
    """Every row has a cell per column, under its head: same system, same left and right edge."""
    assert [h["system"] for h in probe["heads"]] == systems
    for row in probe["rows"]:
        assert [c["system"] for c in row["cells"]] == systems, row["scenario"]
        for head, c in zip(probe["heads"], row["cells"], strict=True):
            assert abs(head["x"][0] - c["x"][0]) <= 1 and abs(head["x"][1] - c["x"][1]) <= 1, (row["scenario"], c)


def test_scenario_page_of_a_real_run_renders_offline(real_run: Path) -> None:
    scenario_dir = real_run / "app-kill"
    seen = _open(scenario_dir / "index.html", shot=scenario_dir / "report.png")
    # six time charts for the one system (no downstream call chart: app-kill makes no call), two distributions
    _assert_drawn(seen, expected_charts=6 + 2)
    time_specs = [s for s in seen["specs"] if not s["id"].startswith("cdf-")]
    assert all(s["faults"] and s["faults"][0]["label"] == "kill api" for s in time_specs)
    assert (scenario_dir / "report.png").stat().st_size > 10_000
    doc = json.loads((scenario_dir / "results.json").read_text())
    run = doc["runs"][0]
    assert f"Verdict: {verdict(doc).text}" in seen["text"]
    assert f"native: lost tasks (all {run['lost']})" in seen["text"] or "first 50" in seen["text"]
    assert f"{run['lost_ids'][0]} lost: 1 attempt(s), 0 effect(s); during kill api" in seen["text"]
    assert _one_colour_each(seen)["native"] == run["color"] or not run.get("color")
    html = (scenario_dir / "index.html").read_text()
    for link in ("results.json", "native/history.jsonl", "native/ledger.db", "native/logs/api.log",
                 "../logs/toxiproxy.log"):
        assert f'href="{link}"' in html, link
        assert (scenario_dir / link).exists(), link
    for report_file in (scenario_dir / "native").glob("locust*/*"):  # Locust's own reports, when it drove the load
        assert f'href="{report_file.relative_to(scenario_dir)}"' in html, report_file
    history = (scenario_dir / "native" / "history.jsonl").read_text().splitlines()
    assert sum('"record":"op"' in line for line in history) == run["attempted"] + doc["manifest"]["params"]["warmup"]


def test_run_and_reports_index_render_offline(real_run: Path) -> None:
    run_page = _open(real_run / "index.html", first_screen=real_run / "run-first-screen.png", probe=MATRIX_PROBE)
    _assert_drawn(run_page, expected_charts=0)
    run = json.loads((real_run / "app-kill" / "results.json").read_text())["runs"][0]
    _matrix_lines_up(run_page["probe"], ["native"])
    (row,) = run_page["probe"]["rows"]
    assert row["scenario"] == "app-kill"
    assert f"lost {run['lost']} of {run['accepted']}" in row["cells"][0]["text"]
    assert row["cells"][0]["state"] == "cell claimed", "the claim expects native to lose in a kill"
    listing = _open(real_run.parent / "index.html", shot=real_run / "runs.png")
    _assert_drawn(listing, expected_charts=2)  # lost and throughput trend of the one scenario
    assert real_run.name in listing["text"] and listing["first_table"] == "trends"


# ---- synthetic runs in Chromium: the matrix, colours, knees and trends -----------------------------

@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reports directory of two nightly runs of the 19 default scenarios with variants, and a run without
    variants, rendered by ``harness report`` (no system runs: results.json documents alone)."""
    from .synthetic import SCENARIOS, write_run

    reports = tmp_path_factory.mktemp("synthetic")
    write_run(reports / "20261205-010000-aaaa", list(SCENARIOS), "2026-12-05T01:00:00+00:00")
    write_run(reports / "20261206-010000-bbbb", list(SCENARIOS), "2026-12-06T01:00:00+00:00", scale=2)
    write_run(reports / "20261207-010000-cccc", ["app-kill", "baseline", "worker-kill"], "2026-12-07T01:00:00+00:00")
    out = harness("report", str(reports))
    assert out.returncode == 0, out.stderr
    return reports


FULL = ["native", "hatchet", "hatchet-naive", "celery", "celery-defaults"]


def test_the_run_page_answers_on_its_first_screen(synthetic: Path) -> None:
    run_dir = synthetic / "20261206-010000-bbbb"
    seen = _open(run_dir / "index.html", first_screen=run_dir / "run-first-screen.png", probe=MATRIX_PROBE)
    _assert_drawn(seen, expected_charts=0)
    probe = seen["probe"]
    _matrix_lines_up(probe, FULL)  # variants in their base's group, in every row
    assert len(probe["rows"]) == 19
    assert probe["bottom"] <= VIEWPORT["height"], "the whole matrix fits the first screen"
    rows = {r["scenario"]: {c["system"]: c for c in r["cells"]} for r in probe["rows"]}
    assert rows["app-kill"]["native"]["text"].splitlines() == ["lost 80 of 200", "dup 0 · retried 0"]
    assert rows["app-kill"]["native"]["state"] == "cell claimed"
    assert rows["worker-kill"]["celery"]["state"] == "cell broken"
    assert rows["worker-kill"]["hatchet"]["state"] == "cell dup"
    assert rows["baseline"]["hatchet"]["state"] == "cell held"
    assert rows["deploy-restart"]["native"]["state"] == "cell unshown"
    assert (rows["engine-restart"]["native"]["text"], rows["engine-restart"]["native"]["title"]) == (
        "n/a", "not applicable: no engine")
    assert rows["app-kill"]["hatchet-naive"]["title"] == "hatchet-naive did not run in this scenario"
    assert "native lost as claimed, hatchet held, with duplicates, celery broken." in seen["text"]
    colors = _one_colour_each(seen)
    assert sorted(colors) == sorted(FULL)
    assert (run_dir / "run-first-screen.png").stat().st_size > 10_000


def test_the_matrix_lines_up_without_variants(synthetic: Path) -> None:
    seen = _open(synthetic / "20261207-010000-cccc" / "index.html", probe=MATRIX_PROBE)
    _assert_drawn(seen, expected_charts=0)
    _matrix_lines_up(seen["probe"], ["native", "hatchet", "celery"])


def test_every_system_keeps_its_colour_on_every_page(synthetic: Path) -> None:
    run_dir = synthetic / "20261206-010000-bbbb"
    colors = _one_colour_each(_open(run_dir / "index.html"))
    for scenario, charts in (("capacity", 1), ("broker-restart", 0), ("app-kill", 0)):
        seen = _open(run_dir / scenario / "index.html")
        _assert_drawn(seen, expected_charts=charts)  # no ledgers here: no time chart, the capacity ladder drawn
        _one_colour_each(seen, colors)
    listing = _open(synthetic / "index.html")
    _assert_drawn(listing, expected_charts=2 * 19)
    _one_colour_each(listing, colors)


def test_the_capacity_page_leads_with_the_knees(synthetic: Path) -> None:
    seen = _open(synthetic / "20261206-010000-bbbb" / "capacity" / "index.html",
                 shot=synthetic / "20261206-010000-bbbb" / "capacity" / "report.png")
    _assert_drawn(seen, expected_charts=1)
    assert seen["first_table"] == "knees"
    text = seen["text"]
    assert text.index("Capacity: each system's knee") < text.index("Headline")
    assert "400 (380–420)\t3 ladders\t392" in text and "20.0\t1 ladder\t19.6" in text
    assert "throughput: mean over the whole ladder" in text
    labels = [s["label"] for s in seen["specs"][0]["series"]]
    assert labels[:3] == ["native (median of 3 ladders)", "native ladder 2", "native ladder 3"]  # ladder 1: median
    assert "hatchet-naive" in labels and labels[-1] == "offered"


def test_the_list_of_runs_shows_a_change_between_runs(synthetic: Path) -> None:
    probe = """() => [...document.querySelectorAll('#trends tbody tr')].map(tr => [tr.dataset.scenario,
      [...tr.querySelectorAll('td.strip')].map(td => [td.dataset.system,
        [...(td.querySelector('table.strip') || {rows: [{cells: []}]}).rows[0].cells].map(c => [c.innerText,
          c.classList.contains('changed')])])])"""
    seen = _open(synthetic / "index.html", first_screen=synthetic / "runs-first-screen.png", probe=probe)
    assert seen["first_table"] == "trends"
    rows = {scenario: dict(cells) for scenario, cells in seen["probe"]}
    assert rows["app-kill"]["native"] == [["40", False], ["80", True], ["40", True]]
    assert rows["capacity"]["hatchet-naive"] == [["0", False], ["0", False], ["·", False]]
    assert rows["engine-restart"]["native"][0] == ["–", False]


def test_fault_recovery_text_names_how_it_was_measured() -> None:
    assert "pre-fault rate 2.50 s" in recovery_text({"recovery_s": 2.5, "recovery_kind": "rate"})
    assert "never got back" in recovery_text({"recovery_s": None, "recovery_kind": "rate"})
    assert "before the heal done 4.00 s after" in recovery_text({"recovery_s": 4.0, "recovery_kind": "catch-up"})
    assert "never ran" in recovery_text({"recovery_s": None, "recovery_kind": "catch-up"})
    assert recovery_text({"action": "skipped", "recovery_s": None}) == ""


@pytest.fixture(scope="module")
def three_systems(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real short baseline against native, Hatchet and Celery (about a minute): the three-way page."""
    root = tmp_path_factory.mktemp("three") / new_run_id()
    scenario = discover()["baseline"]
    params = scenario.params({"duration_s": "3", "warmup": "3", "rate": "10"})
    systems = find_systems()
    with Session(root=root, progress=lambda msg: None) as session:
        doc = session.run(scenario, [systems[n] for n in ("native", "hatchet", "celery")], params)
    assert [r["system"] for r in doc["runs"]] == ["native", "hatchet", "celery"]
    return root / "baseline"


def test_a_three_system_page_reads_well(three_systems: Path) -> None:
    seen = _open(three_systems / "index.html", shot=three_systems / "report.png")
    _assert_drawn(seen, expected_charts=6 * 3 + 2)  # six time charts per system (instruments too), two distributions
    doc = json.loads((three_systems / "results.json").read_text())
    text = seen["text"]
    assert f"Verdict: {verdict(doc).text}" in text
    for system in ("native", "hatchet", "celery"):
        assert f"{system} lost none of" in text, system
    assert "hatchet vs native" in text and "celery vs native" in text  # the headline's difference columns
    html = (three_systems / "index.html").read_text()
    assert html.count('data-system="celery"') >= 3  # at a glance, headline and per-system facts
    # The system's own server's log: with the system's logs, or with the run's shared servers' when it is shared.
    assert "celery/logs/broker.log" in html or "../logs/broker.log" in html, "the broker's log is linked"


def test_capacity_section_puts_each_knee_beside_its_ceilings() -> None:
    from harness.report.capacity import section

    step = {"rate": 10.0, "completed_tps": 10.0}
    refs = {"engine_runs_per_s": 300.0, "postgres_commits_per_s": {"1": 8000.0, "4": 19000.0, "8": 20000.0},
            "generator_req_per_s": 5000.0, "details": {"engine": {"runs_per_s": 300.0}}}
    doc = {"runs": [
        {"system": "hatchet", "applicable": True, "links": {"proxied": []},
         "capacity": {"knee_rate": 240.0, "steps": [step], "reference": refs, "knee_vs_engine": 0.8,
                      "where_time_goes": {"240": [{"stage": "span trigger.call", "n": 960, "p50_ms": 4.2,
                                                   "p99_ms": 31.0}]}}},
        {"system": "native", "applicable": True, "links": {"proxied": []},
         "capacity": {"knee_rate": 1000.0, "steps": [step], "reference": {"generator_req_per_s": 5000.0},
                      "knee_vs_generator": 0.2}},
    ]}
    sec = section(doc, {"native": "#d55e00", "hatchet": "#0072b2"})
    assert sec is not None and sec.chart is not None and sec.chart["id"] == "capacity-ladder"
    native, hatchet = sec.knees  # native first
    assert (native.system, native.knee, native.ladders, native.ceiling, native.share) == ("native", 1000.0, 1, 5000.0,
                                                                                          0.2)
    assert native.ceiling_of.startswith("load generator")  # no engine: the generator's ceiling
    assert (hatchet.knee, hatchet.ceiling, hatchet.share) == (240.0, 300.0, 0.8)
    assert hatchet.ceiling_of.startswith("engine")
    assert sec.ceilings[1][2] == "8000 / 19000 / 20000"
    assert sec.breakdowns == [("hatchet at 240/s (the knee)", [["span trigger.call", 960, 4.2, 31.0]])]
    assert section({"runs": [{"system": "native", "applicable": True}]}, {}) is None
