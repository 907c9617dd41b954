"""The findings catalogue's shape: every file loads, says what it must, and names a reproduction that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.front.catalog import discover
from harness.model.finding import (
    COULD_NOT_RUN,
    NOT_REPRODUCED,
    REPRODUCED,
    CheckResult,
    FindingError,
    document,
    entry,
    load_catalogue,
    load_finding,
    load_notes,
    requirement_parts,
    select,
    venv_dir,
)
from harness.model.paths import FINDINGS_DIR

CATALOGUE = load_catalogue()
AGREED_KEYS = {"name", "title", "claim", "systems", "mechanism", "sources", "upstream", "scenario", "seed", "status",
               "rate", "tries", "reproduced", "duration_s", "detail"}
"""findings.json's keys the report renders (extra keys are additions)."""
ISSUE_FINDINGS = {"hatchet-pg-mq-at-most-once", "hatchet-worker-exit-zero", "celery-kill-window",
                  "celery-worker-crash-hostname", "hatchet-retry-waits-for-queue-loop", "hatchet-refused-trigger-ran",
                  "hatchet-aio-run-default-executor"}
"""The seven findings the catalogue was started with."""


def test_the_catalogue_has_every_finding_we_started_with() -> None:
    assert set(CATALOGUE) >= ISSUE_FINDINGS
    assert sorted(CATALOGUE) == sorted(p.stem for p in FINDINGS_DIR.glob("[!_]*.toml"))


def test_the_catalogue_notes_say_what_cannot_move() -> None:
    notes = load_notes()
    assert "v0.105.0" in notes.pins["hatchet-engine"] and "Go module proxy" in notes.pins["hatchet-engine"]
    assert requirement_parts(notes.example_sdk) == ("hatchet-sdk", "1.43.1")


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_each_finding_says_what_it_must(name: str) -> None:
    f = CATALOGUE[name]
    assert f.path == FINDINGS_DIR / f"{name}.toml"
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name), "names are kebab-case: the CLI takes them"
    for text in (f.title, f.claim, f.mechanism, f.text):
        assert len(text) > 40 and "TODO" not in text
    assert f.systems and all(v.strip() for v in f.systems.values())
    # mechanism with upstream source locations: a project, a version and path:lines in each
    assert f.sources and all(re.search(r"\S+ v?\d[\w.]* \S+(:\d+(-\d+)?(, ?\d+(-\d+)?)*)?", s) for s in f.sources)
    assert any(re.search(r":\d+", s) for s in f.sources), "at least one source names its lines"
    # upstream references, or "none found" saying what was searched
    assert f.upstream and all(re.search(r"[\w.-]+/[\w.-]+#\d+|none found", u) for u in f.upstream)
    assert f.scenario in discover(), f"{f.scenario!r} is not a scenario"
    rep = f.reproduction
    assert rep.module.startswith("findings.repro.") and f.repro_path.is_file()
    assert rep.tries >= 1 and rep.seconds_per_try > 0 and rep.budget_s > 0
    assert len(rep.reproduced_when) > 20
    assert rep.alone or rep.why_not_alone
    for requirement in rep.versions:
        requirement_parts(requirement)


def test_the_sdk_findings_are_checked_on_the_newest_release_too() -> None:
    engine_side = ("hatchet-pg-mq-at-most-once", "hatchet-retry-waits-for-queue-loop", "hatchet-rabbitmq-lost-at-cut")
    sdk = [f.name for f in CATALOGUE.values() if "hatchet-sdk" in f.systems and f.name not in engine_side]
    assert {"hatchet-worker-exit-zero", "hatchet-refused-trigger-ran", "hatchet-aio-run-default-executor"} <= set(sdk)
    for name in sdk:
        assert "hatchet-sdk==1.43.1" in CATALOGUE[name].reproduction.versions


def test_each_budget_covers_its_tries() -> None:
    """A budget (when a check stops a reproduction) leaves room for its stack and every version's tries."""
    for f in CATALOGUE.values():
        rep = f.reproduction
        assert rep.budget_s >= f.expected_s + 30, f.name


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(body)
    return path


GOOD = """name = "x-y"
title = "A title long enough to say something"
claim = "A claim that is long enough to be a claim about a system."
scenario = "baseline"
mechanism = "A mechanism long enough to explain the claim in a sentence."
sources = ["proj v1.0 path/file.py:1-2 (what)"]
upstream = ["none found (searched: things)"]
text = "What a user needs to know, in a sentence long enough."
[systems]
proj = "1.0"
[reproduction]
module = "findings.repro.celery_kill_window"
tries = 2
seconds_per_try = 5
budget_s = 60
reproduced_when = "it happened at least once in the tries"
"""


def test_a_good_file_loads(tmp_path: Path) -> None:
    f = load_finding(_write(tmp_path, "x-y", GOOD))
    assert f.name == "x-y" and f.seed is None and f.reproduction.versions == () and f.reproduction.alone
    assert f.expected_s == 10
    both = load_finding(_write(tmp_path, "x-y", GOOD.replace("budget_s = 60", 'budget_s = 60\nside_by_side = true\n'
                                                                            'versions = ["a==1", "a==2"]')))
    assert both.expected_s == 10  # 2 tries side by side (5 s) on 2 versions
    _write(tmp_path, "_catalogue", "[pins]\nengine = 'v1: no newer one'\n")
    assert list(load_catalogue(tmp_path)) == ["x-y"] and load_notes(tmp_path).pins == {"engine": "v1: no newer one"}


@pytest.mark.parametrize(("change", "error"), [
    (('name = "x-y"', 'name = "other"'), "stem"),
    (("[systems]", "colour = 1\n[systems]"), "unknown keys"),
    (('tries = 2', 'tries = 0'), "positive"),
    (('budget_s = 60', 'budget_s = 60\nversions = ["hatchet-sdk>=1"]'), "pinned"),
    (('budget_s = 60', 'budget_s = 60\nalone = false'), "why_not_alone"),
    (('sources = ["proj v1.0 path/file.py:1-2 (what)"]', 'sources = []'), "sources"),
    (('title = "A title long enough to say something"', 'title = ""'), "title"),
])
def test_a_bad_file_is_refused_with_why(tmp_path: Path, change: tuple[str, str], error: str) -> None:
    with pytest.raises(FindingError, match=error):
        load_finding(_write(tmp_path, "x-y", GOOD.replace(*change)))


def test_select_names_the_unknown() -> None:
    assert [f.name for f in select(CATALOGUE, [])] == list(CATALOGUE)
    with pytest.raises(FindingError, match="no finding 'nope'"):
        select(CATALOGUE, ["nope"])


def test_requirements_and_their_venvs() -> None:
    assert requirement_parts("hatchet-sdk==1.43.1") == ("hatchet-sdk", "1.43.1")
    assert venv_dir("hatchet-sdk==1.43.1").name == "hatchet-sdk-1.43.1"
    for bad in ("hatchet-sdk", "hatchet-sdk>=1.4", "==1.0", "kombu==5.7, <6"):
        with pytest.raises(FindingError):
            requirement_parts(bad)


def test_results_judge_rate_and_round_trip() -> None:
    hit = CheckResult.judge(2, 8, 12.345, "lost 2 of 8", {"kombu": "5.7.0"}, {"x": [1]})
    miss = CheckResult.judge(0, 3, 1.0, "none", {})
    cannot = CheckResult.cannot_run("no redis-server")
    assert (hit.status, hit.rate, hit.duration_s) == (REPRODUCED, "2 of 8", 12.3)
    assert (miss.status, miss.rate) == (NOT_REPRODUCED, "0 of 3")
    assert (cannot.status, cannot.rate) == (COULD_NOT_RUN, None)
    for r in (hit, miss, cannot):
        assert CheckResult.from_json(r.as_json()) == r
    assert "reproduced (2 of 8) on kombu 5.7.0" in hit.line()
    with pytest.raises(FindingError):
        CheckResult.from_json({"status": "maybe", "tries": 1, "reproduced": 0, "duration_s": 0, "detail": ""})


def test_an_entry_has_the_agreed_keys_and_every_version() -> None:
    f = CATALOGUE["hatchet-worker-exit-zero"]
    old = CheckResult.judge(2, 2, 50, "exited 0 twice", {"hatchet-sdk": "1.38.0", "hatchet-engine": "v0.105.0"})
    new = CheckResult.judge(1, 2, 40, "exited 0 once", {"hatchet-sdk": "1.43.1", "hatchet-engine": "v0.105.0"})
    e = entry(f, [old, new])
    assert set(e) >= AGREED_KEYS
    assert (e["status"], e["rate"], e["tries"], e["reproduced"], e["duration_s"]) == (REPRODUCED, "2 of 2", 2, 2, 90)
    assert e["systems"]["hatchet-sdk"] == "1.38.0"
    assert "hatchet-sdk 1.43.1: reproduced (1 of 2)" in e["detail"]
    assert [v["systems"]["hatchet-sdk"] for v in e["versions"]] == ["1.38.0", "1.43.1"]
    assert "hatchet-engine" not in e["detail"]  # the same on both: not the axis
    doc = document([e], "2026-12-06T00:00:00+00:00", 61.0, notes=load_notes())
    assert doc["checked_at"] == "2026-12-06T00:00:00+00:00" and doc["findings"] == [e]
    assert "v0.105.0" in doc["pins"]["hatchet-engine"] and doc["wall_s"] == 61.0
    with pytest.raises(FindingError):
        entry(f, [])
