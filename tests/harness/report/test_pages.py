"""Pages from templates: every value escaped, what the report imports, the capacity page's knees, the findings
page and the links to it, all from small synthetic results.json documents (no system runs, no browser)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from harness.report import rebuild, write_findings_page
from harness.report.capacity import knee
from harness.report.findings import FINDINGS_PAGE, links, locate
from harness.report.headline import LADDER_MEAN
from harness.report.overview import render_reports_index, render_run_index
from harness.report.render import environment
from harness.report.scenario import render_scenario
from harness.report.views import RunEntry, ScenarioView, SystemView

from .synthetic import SCENARIOS, doc, run, write_run

HOSTILE = "<script>alert('x')</script>&"


def test_every_template_is_package_data_and_compiles() -> None:
    names = sorted(p.name for p in resources.files("harness.report").joinpath("templates").iterdir()
                   if p.name.endswith(".html.j2"))
    assert {"base.html.j2", "scenario.html.j2", "run.html.j2", "runs.html.j2", "findings.html.j2"} <= set(names)
    for name in names:
        environment().get_template(name)


def test_importing_the_report_starts_nothing_of_the_runtime() -> None:
    code = "import sys, harness.report.build; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    harness = [m for m in out if m.startswith("harness.")]
    allowed = ("harness.report", "harness.model", "harness.ledger", "harness.analysis.results",
               "harness.analysis.checker", "harness.analysis.instruments", "harness.analysis")
    assert [m for m in harness if not m.startswith(allowed)] == [], "the report is meant to need results.json alone"
    for heavy in ("docker", "psycopg", "locust", "toxiproxy", "hatchet_sdk", "celery", "fastapi"):
        assert heavy not in out, heavy


def _hostile_doc() -> dict[str, Any]:
    d = doc("app-kill")
    d.update(fault=HOSTILE, claim=HOSTILE, manifest={"git_sha": HOSTILE, "command": HOSTILE, "params": {"x": HOSTILE}})
    d["runs"][1] = {"system": "hatchet", "applicable": False, "reason": HOSTILE}
    d["runs"][0]["harness_degraded"] = True
    d["runs"][0]["harness_degraded_reason"] = HOSTILE
    return d


def test_every_value_from_results_json_is_escaped() -> None:
    d = _hostile_doc()
    pages = [render_scenario(ScenarioView(d, [SystemView(r, note=HOSTILE) for r in d["runs"]],
                                          [(HOSTILE, [(HOSTILE, "x.log")])], [(HOSTILE, "../index.html")])),
             render_run_index(HOSTILE, [("app-kill/index.html", d)], [(HOSTILE, "logs/x")], []),
             render_reports_index([RunEntry(HOSTILE, "r/index.html", [d])])]
    for html in pages:
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;" in html


def test_a_capacity_page_leads_with_the_knees() -> None:
    d = doc("capacity")
    html = render_scenario(ScenarioView(d, [SystemView(r, note="no ledger") for r in d["runs"]]))
    assert html.index("<table") == html.index('<table class="knees" id="knees">'), "the knees are the first table"
    assert html.index('id="knees"') < html.index("<h2>Headline")
    assert LADDER_MEAN in html and ">throughput (tasks/s)<" not in html
    knees = html[html.index('id="knees"'):html.index("</table>", html.index('id="knees"'))]
    assert "3 ladders" in knees and "1 ladder<" in knees and "(380–420)" in knees
    assert "knee 40.0 vs 400 offered/s" in html  # the verdict compares knees, not ladder means


def test_knee_of_results_from_before_repeated_ladders() -> None:
    old = {"system": "celery", "capacity": {"knee_rate": 160.0, "max_sustained_tps": 150.0, "accept_knee_rate": 320.0,
                                            "reference": {"generator_req_per_s": 4000.0}}}
    k = knee(old)
    assert (k.knee, k.low, k.high, k.ladders, k.completes, k.accepts) == (160.0, None, None, 1, 150.0, 320.0)
    assert (k.ceiling, k.share) == (4000.0, 0.04)
    assert knee({"system": "x", "capacity": {}}).share is None


FINDINGS: dict[str, Any] = {"checked_at": "2026-12-06T02:00:00+00:00", "findings": [
    {"name": "native-kill-loss", "title": "A killed native API loses what it accepted", "claim": "loses in-flight",
     "systems": {"native": "0.165.0"}, "mechanism": "BackgroundTasks run in the process",
     "sources": ["https://github.com/fastapi/fastapi/blob/master/fastapi/background.py", "javascript:alert(1)"],
     "upstream": [HOSTILE], "scenario": "app-kill", "seed": 1, "status": "reproduced", "rate": "8 of 8",
     "tries": 8, "reproduced": 8, "duration_s": 41.5, "detail": HOSTILE},
    {"name": "x", "title": "Something else", "scenario": "worker-kill", "status": "could not run", "rate": None,
     "tries": 0, "reproduced": 0},
]}


def test_findings_page_shows_every_finding_and_links_only_web_urls(tmp_path: Path) -> None:
    path = write_findings_page(tmp_path, FINDINGS)
    assert path == tmp_path / FINDINGS_PAGE
    html = path.read_text()
    assert 'id="finding-native-kill-loss"' in html and "8 of 8" in html and "0 of 0" in html
    assert '<a href="https://github.com/fastapi/fastapi/blob/master/fastapi/background.py">' in html
    assert 'href="javascript:' not in html and "<code>javascript:alert(1)</code>" in html
    assert "<script>alert" not in html
    assert "1 reproduced, 0\nnot reproduced, 1 could not run" in html


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    """A reports directory with one synthetic run and a findings check in findings/latest."""
    write_run(tmp_path / "20261206-010000-aaaa", ["app-kill", "worker-kill", "baseline"])
    check = tmp_path / "findings" / "20261206-020000"
    check.mkdir(parents=True)
    (check / "findings.json").write_text(json.dumps(FINDINGS))
    (tmp_path / "findings" / "latest").symlink_to(check.name, target_is_directory=True)
    return tmp_path


def test_scenario_and_run_pages_link_to_the_findings_their_scenario_shows(reports: Path) -> None:
    written = rebuild([reports])
    assert reports / "findings" / "20261206-020000" / FINDINGS_PAGE in written
    run_dir = reports / "20261206-010000-aaaa"
    assert locate(run_dir, reports) == reports / "findings" / "latest" / "findings.json"
    href = "../../findings/latest/findings.html#finding-native-kill-loss"
    assert links(locate(run_dir, reports), "app-kill", run_dir / "app-kill") == [
        ("A killed native API loses what it accepted (reproduced, 8 of 8)", href)]
    page = (run_dir / "app-kill" / "index.html").read_text()
    assert f'<a href="{href}">' in page
    assert (run_dir / "app-kill" / href.split("#")[0]).resolve().is_file()
    assert "findings.html" not in (run_dir / "baseline" / "index.html").read_text()
    assert 'href="../findings/latest/findings.html#finding-x"' in (run_dir / "index.html").read_text()
    # A check kept in the run's own directory comes first.
    own = {"findings": [dict(FINDINGS["findings"][1], scenario="baseline")]}
    (run_dir / "findings.json").write_text(json.dumps(own))
    rebuild([run_dir])
    assert 'href="../findings.html#finding-x"' in (run_dir / "baseline" / "index.html").read_text()
    assert (run_dir / FINDINGS_PAGE).is_file()


def test_a_missing_or_broken_findings_file_links_nothing(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", ["app-kill"])
    assert links(None, "app-kill", run_dir) == []
    (run_dir / "findings.json").write_text("{not json")
    assert links(run_dir / "findings.json", "app-kill", run_dir) == []
    rebuild([run_dir])  # and the pages still build
    assert "findings.html" not in (run_dir / "app-kill" / "index.html").read_text()


def test_every_scenario_of_a_full_run_renders(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", list(SCENARIOS))
    pages = rebuild([run_dir])
    assert len(pages) == len(SCENARIOS) + 1
    html = (run_dir / "index.html").read_text()
    assert html.count("<tr data-scenario=") == len(SCENARIOS)
    assert html.count('<td class="cell') == len(SCENARIOS) * 5


def test_a_run_without_claims_in_its_results_still_reads(tmp_path: Path) -> None:
    d = doc("app-kill")
    del d["expect"]
    for r in d["runs"]:
        del r["base"], r["color"]
    d["runs"].append(run("hatchet-naive", lost=1))
    html = render_run_index("r", [("app-kill/index.html", d)], [], [])
    assert "hatchet-naive lost" in html and "native lost" in html
