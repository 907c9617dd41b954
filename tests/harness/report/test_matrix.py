"""The report at a glance, as data: the columns every table puts systems in, each system's colour, the run's
scenario-by-system matrix coloured by the claim, and losses across runs."""

from __future__ import annotations

import re
from typing import Any

import pytest

from harness.report.colors import PALETTE, REFERENCE_COLOR, assign, of_docs
from harness.report.lineup import base_of, columns, expectation
from harness.report.matrix import cell, matrix
from harness.report.trends import RunDocs, trends

from .synthetic import SCENARIOS, doc, run


def _names(*names: str, **base: str) -> dict[str, Any]:
    return {"scenario": "s", "runs": [{"system": n, **({"base": base[n]} if n in base else {})} for n in names]}


# ---- columns ----------------------------------------------------------------------------------

def test_columns_put_the_reference_first_then_each_base_followed_by_its_variants() -> None:
    docs = [doc(name) for name in SCENARIOS]  # variants only in some scenarios
    assert columns(docs) == ["native", "hatchet", "hatchet-naive", "celery", "celery-defaults"]
    assert columns([doc("app-kill")]) == ["native", "hatchet", "celery"]


def test_columns_keep_a_variant_beside_its_base_whatever_the_scenario_order() -> None:
    # The variant appears before its base, in a scenario where the base system did not run.
    only_variant = {"scenario": "a", "runs": [{"system": "celery-defaults", "base": "celery"}]}
    assert columns([only_variant, doc("app-kill")]) == ["native", "celery", "celery-defaults", "hatchet"]
    # Older results.json have no runs[].base: a "<base>-<variant>" name beside its base counts as a variant.
    old = _names("native", "hatchet", "celery", "hatchet-naive")
    assert base_of(old["runs"][3], ["hatchet"]) == "hatchet"
    assert base_of({"system": "new-system"}, ["hatchet"]) == "new-system"
    assert columns([old]) == ["native", "hatchet", "hatchet-naive", "celery"]


def test_expectation_of_a_variant_is_its_own_else_its_bases() -> None:
    d = doc("broker-restart")
    runs = {r["system"]: r for r in d["runs"]}
    assert expectation(d, runs["celery"]) == "keeps"
    assert expectation(d, runs["celery-defaults"]) == "loses"  # its own entry wins over its base's
    d["expect"] = {"celery": "keeps"}
    assert expectation(d, runs["celery-defaults"]) == "keeps"
    assert expectation(d, runs["native"]) == ""
    assert expectation({"runs": d["runs"]}, runs["celery"]) == ""  # results.json from before "expect"
    assert expectation({"expect": {"celery": "maybe"}, "runs": d["runs"]}, runs["celery"]) == ""


# ---- colours ----------------------------------------------------------------------------------

def test_every_system_of_a_page_gets_its_own_colour_blind_safe_colour() -> None:
    names = ["native", "hatchet", "hatchet-naive", "hatchet-lite", "celery", "celery-defaults", "calibration"]
    colors = assign((n, "") for n in names)
    assert colors["native"] == REFERENCE_COLOR
    assert len(set(colors.values())) == len(names)
    assert set(colors.values()) - {REFERENCE_COLOR} <= set(PALETTE)
    assert assign((n, "") for n in reversed(names)) == colors, "the order systems come in changes nothing"
    crowd = assign((f"system-{i}", "") for i in range(40))  # more systems than the palette has colours
    assert len(set(crowd.values())) == 40
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in crowd.values())


def test_a_system_given_colour_wins_unless_another_system_took_it() -> None:
    colors = assign([("native", ""), ("hatchet", "#123ABC"), ("celery", "#123abc"), ("x", "not a colour")])
    assert colors["hatchet"] == "#123abc"
    assert colors["celery"] != "#123abc" and colors["x"] in PALETTE
    assert len(set(colors.values())) == 4
    assert assign([("native", "#0072b2"), ("hatchet", "")])["native"] == "#0072b2"  # system.toml beats the default


def test_colours_of_docs_cover_every_system_of_every_doc() -> None:
    colors = of_docs([doc(name) for name in SCENARIOS])
    assert sorted(colors) == sorted(["native", "hatchet", "hatchet-naive", "celery", "celery-defaults"])
    assert len(set(colors.values())) == 5


# ---- the matrix -------------------------------------------------------------------------------

@pytest.mark.parametrize(("expect", "lost", "duplicated", "state", "word"), [
    ("keeps", 0, 0, "held", "held"),
    ("keeps", 3, 0, "broken", "broken"),
    ("keeps", 0, 2, "dup", "held, with duplicates"),
    ("loses", 40, 0, "claimed", "lost as claimed"),
    ("loses", 0, 0, "unshown", "claimed loss not shown"),
    ("", 5, 0, "lost", "lost"),
    ("", 0, 1, "dup", "duplicates"),
    ("", 0, 0, "clean", "lost none"),
])
def test_a_cell_is_coloured_by_what_the_claim_expects(expect: str, lost: int, duplicated: int, state: str,
                                                      word: str) -> None:
    r = run("hatchet", lost, duplicated)
    c = cell({"expect": {"hatchet": expect}, "runs": [r]}, r, "hatchet")
    assert (c.state, c.word, c.lost, c.accepted, c.duplicated) == (state, word, lost, 200, duplicated)
    assert f"hatchet: lost {lost} of 200 accepted" in c.title


def test_cells_that_did_not_apply_or_did_not_run_say_why() -> None:
    d = doc("engine-restart")
    systems, (row,) = matrix([("engine-restart/index.html", d)])
    assert systems == ["native", "hatchet", "celery"]
    native, hatchet, celery = row.cells
    assert (native.state, native.title) == ("na", "not applicable: no engine")
    assert (hatchet.state, celery.state) == ("held", "na")
    missing = cell(d, None, "celery-defaults")
    assert (missing.state, missing.title) == ("na", "celery-defaults did not run in this scenario")
    assert row.verdict == "hatchet held."


def test_a_broken_identity_or_degraded_harness_shows_in_the_cell() -> None:
    r = run("native", identities_broken=["accepted 3 != completed 1 + lost 1"], harness_degraded=True,
            harness_degraded_reason="ledger slow")
    c = cell({"runs": [r]}, r, "native")
    assert (c.state, c.word, c.degraded) == ("bug", "harness bug", True)
    assert "identities broken: accepted 3" in c.title and "harness degraded: ledger slow" in c.title


def test_every_row_has_every_column_and_a_one_line_verdict() -> None:
    entries = [(f"{name}/index.html", doc(name)) for name in SCENARIOS]
    systems, rows = matrix(entries)
    assert all([c.system for c in r.cells] == systems for r in rows)
    by_name = {r.scenario: r for r in rows}
    assert by_name["worker-kill"].verdict == ("native lost as claimed, hatchet held, with duplicates, "
                                              "celery broken.")
    assert by_name["worker-kill"].level == "broken"
    assert by_name["deploy-restart"].level == "unshown"
    assert by_name["broker-restart"].verdict == "celery held, celery-defaults lost as claimed."
    assert by_name["baseline"].level == "ok"


# ---- across runs ------------------------------------------------------------------------------

def test_trends_show_each_runs_counts_and_mark_a_change() -> None:
    older = RunDocs("r1", "r1/", [doc("app-kill"), doc("baseline")])
    newer = RunDocs("r2", "r2/", [doc("app-kill", scale=2), doc("broker-restart")])
    systems, rows, shown = trends([older, newer])
    assert shown == ["r1", "r2"]
    assert systems == ["native", "hatchet", "celery", "celery-defaults"]
    app_kill = rows[0]
    native = app_kill.cells[0]
    assert [(p.lost, p.changed) for p in native if p] == [(40, False), (80, True)]
    assert native[1] is not None and native[1].href == "r2/app-kill/index.html"
    assert app_kill.cells[3] == [None, None]  # celery-defaults never ran app-kill
    broker = next(r for r in rows if r.scenario == "broker-restart")
    assert broker.cells[0][0] is None and broker.cells[0][1] is not None and broker.cells[0][1].lost is None  # n/a
    assert len(trends([RunDocs(f"r{i}", f"r{i}/", [doc("baseline")]) for i in range(20)], last=5)[2]) == 5
