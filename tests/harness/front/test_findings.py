"""``harness findings``: the listing, the check's plumbing (budget, results, findings.json, README section), and each
reproduction runnable (its plan), one for real.

Run as a module (``python -m tests.harness.front.test_findings``) this file is a stand-in reproduction for the
plumbing tests: it writes one result and exits, or sleeps past its budget when ``FINDINGS_STUB_SLEEP`` is set.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest

from harness.front import findings as front
from harness.model.finding import COULD_NOT_RUN, REPRODUCED, CheckResult, load_catalogue, load_notes
from harness.model.paths import FINDINGS_DIR, PROJECT_ROOT

CATALOGUE = load_catalogue()
STUB = "tests.harness.front.test_findings"


def harness(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_list_names_every_finding_and_its_reproduction() -> None:
    out = harness("findings", "list")
    assert out.returncode == 0, out.stderr
    for f in CATALOGUE.values():
        assert f.name in out.stdout and f"python -m {f.reproduction.module}" in out.stdout


def test_unknown_names_and_versions_are_usage_errors() -> None:
    out = harness("findings", "check", "no-such-finding")
    assert out.returncode == 2 and "no finding 'no-such-finding'" in out.stderr
    out = harness("findings", "check", "celery-kill-window", "--sdk", "hatchet-sdk>=1")
    assert out.returncode == 2 and "pinned version" in out.stderr


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_each_reproduction_plans_without_starting_anything(name: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Importable, with a main() whose --dry-run prints its plan (what it starts, tries, what counts), and leaves no
    file behind (not even an empty log directory)."""
    module = importlib.import_module(CATALOGUE[name].reproduction.module)
    assert module.__doc__ and "Usage" in module.__doc__
    plan, scratch = tmp_path / "plan.json", tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert module.main(["--dry-run", "--tries", "3", "--json", str(plan)]) == 0
    assert list(scratch.iterdir()) == []
    doc = json.loads(plan.read_text())
    assert doc["tries"] == 3 and any("reproduced" in line for line in doc["plan"])
    assert any("tries: 3" in line for line in doc["plan"])


def test_the_hatchet_clients_import_only_the_sdk_and_the_standard_library() -> None:
    """They run on any SDK version's venv, so they import nothing of the harness."""
    path = FINDINGS_DIR / "repro" / "clients" / "hatchet.py"
    tops = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            tops |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            tops.add(node.module.split(".")[0])
    assert tops - set(sys.stdlib_module_names) == {"hatchet_sdk", "pydantic"}


def test_versions_for_takes_the_sdk_only_for_findings_about_it() -> None:
    sdk = ["hatchet-sdk==1.43.1"]
    assert front.versions_for(CATALOGUE["hatchet-worker-exit-zero"], sdk) == sdk
    assert front.versions_for(CATALOGUE["celery-kill-window"], sdk) == []
    assert front.versions_for(CATALOGUE["hatchet-worker-exit-zero"], []) == ["hatchet-sdk==1.38.0",
                                                                              "hatchet-sdk==1.43.1"]


def _stub_finding(budget_s: float = 60.0) -> object:
    f = CATALOGUE["celery-kill-window"]
    return replace(f, name="stub", reproduction=replace(f.reproduction, module=STUB, budget_s=budget_s, tries=1))


def test_check_runs_a_reproduction_and_writes_findings_json(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FINDINGS_STUB_SLEEP", raising=False)
    doc = front.check([_stub_finding()], tmp_path)  # type: ignore[list-item]
    out = capsys.readouterr().out
    assert "[stub] stub progress line" in out and "reproduced (1 of 1)" in out
    saved = json.loads((tmp_path / "findings.json").read_text())
    assert saved == json.loads(json.dumps(doc))
    (e,) = saved["findings"]
    assert (e["name"], e["status"], e["rate"], e["tries"], e["reproduced"]) == ("stub", REPRODUCED, "1 of 1", 1, 1)
    assert e["detail"] == "lost 1 of 1" and e["systems"]["kombu"] == "stub-version"
    assert "checked_at" in saved and saved["wall_s"] > 0
    assert (tmp_path / "README-findings.md").read_text().startswith("## Findings")
    assert "page: " in out  # written, or the clear message that the report cannot render it yet


def test_a_reproduction_over_its_budget_is_stopped_and_could_not_run(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINDINGS_STUB_SLEEP", "60")
    t0 = time.monotonic()
    (result,) = front.run_one(_stub_finding(budget_s=2), tmp_path, [])  # type: ignore[arg-type]
    assert time.monotonic() - t0 < 30
    assert result.status == COULD_NOT_RUN and "budget of 2 s" in result.detail


def test_readme_section_from_the_catalogue_and_a_check() -> None:
    never = front.readme_section(CATALOGUE, None, load_notes())
    assert never.startswith("## Findings") and "Not checked on this machine yet." in never
    assert all(f"### {f.title}" in never for f in CATALOGUE.values())
    assert "v0.105.0" in never and "make sdk-versions" in never
    f = CATALOGUE["hatchet-refused-trigger-ran"]
    results = [CheckResult.judge(8, 8, 60, "8 of 8 refused ran", {"hatchet-sdk": "1.38.0"}),
               CheckResult.judge(7, 8, 55, "7 of 8 refused ran", {"hatchet-sdk": "1.43.1"})]
    from harness.model.finding import document, entry

    doc = document([entry(f, results)], "2026-12-06T06:00:00+00:00", 600.0)
    text = front.readme_section(CATALOGUE, doc)
    assert "Last check: 2026-12-06, 10.0 min for all." in text
    assert "reproduced 8 of 8 on hatchet-sdk 1.38.0; reproduced 7 of 8 on hatchet-sdk 1.43.1" in text


@pytest.mark.skipif(not (PROJECT_ROOT / ".tools").exists(), reason="the pinned engine is not built (make tools)")
def test_one_reproduction_for_real(tmp_path: Path) -> None:
    """The quickest one, on the real engine and the lock's SDK (other versions need `make sdk-versions`): 60
    concurrent aio_run through a default executor of 6 threads."""
    sdk = importlib.metadata.version("hatchet-sdk")
    out = subprocess.run([sys.executable, "-m", "findings.repro.hatchet_aio_run_default_executor", "--tries", "1",
                          "--sdk", f"hatchet-sdk=={sdk}", "--json", str(tmp_path / "r.json"), "--logs",
                          str(tmp_path / "logs")], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=240,
                         env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    (result,) = [CheckResult.from_json(r) for r in json.loads((tmp_path / "r.json").read_text())["results"]]
    assert result.status == REPRODUCED, (result.detail, out.stdout[-2000:], out.stderr[-2000:])
    assert out.returncode == 0 and f"reproduced (1 of 1) on hatchet-sdk {sdk}" in out.stdout


def _stub_main() -> int:
    """The stand-in reproduction: one progress line, then one result (or a sleep past its budget)."""
    args = sys.argv[1:]
    print("stub progress line", flush=True)
    time.sleep(float(os.environ.get("FINDINGS_STUB_SLEEP", "0")))
    path = Path(args[args.index("--json") + 1])
    result = CheckResult.judge(1, 1, 0.1, "lost 1 of 1", {"kombu": "stub-version"})
    path.write_text(json.dumps({"results": [result.as_json()]}))
    return 0


if __name__ == "__main__":
    sys.exit(_stub_main())
