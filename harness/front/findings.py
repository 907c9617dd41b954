"""``harness findings``: the findings catalogue (``findings/``), listed, re-checked, or written up for the README.

- ``harness findings [list]``: every finding with its claim, reproduction and last check;
- ``harness findings check [NAME...] [--sdk DIST==VERSION] [--out DIR]``: re-runs the reproductions one after
  the other (each ``python -m findings.repro.X`` in its own process, stopped when it overruns its budget), says
  for each: reproduced (with the rate), not reproduced, or could not run (with why); writes ``findings.json``
  and the README section to DIR (default ``reports/findings/<time>/``, linked as ``reports/findings/latest``)
  and renders the page through :func:`harness.report.findings.write_findings_page` when that exists;
- ``harness findings readme``: the README's Findings section from the catalogue and the last check.

The version axis: each finding's reproduction names the library versions ``check`` runs it on
(``[reproduction] versions``); ``--sdk hatchet-sdk==1.43.1`` runs the findings about that library on that
version only. A version other than the lock's runs from its own venv (``make sdk-versions``). The
Hatchet engine stays pinned: the Go module proxy serves no tag after v0.105.0.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.front.options import UsageError
from harness.model.finding import (
    COULD_NOT_RUN,
    REPRODUCED,
    CheckResult,
    Finding,
    FindingError,
    Notes,
    document,
    entry,
    load_catalogue,
    load_notes,
    requirement_parts,
    select,
)
from harness.model.paths import FINDINGS_DIR, PROJECT_ROOT, REPORTS_DIR

FINDINGS_REPORTS = REPORTS_DIR / "findings"
"""Where checks write by default (one directory per check, ``latest`` the newest)."""
STOP_GRACE_S = 30.0
"""After its budget a reproduction gets SIGINT (it stops what it started) and this long before SIGKILL."""


def command(action: str, names: Sequence[str], out: Path | None, sdk: Sequence[str] = ()) -> int:
    """List the catalogue, re-run the reproductions of the named findings (all by default), or print the README
    section; exit status of ``check``: 0 when every finding reproduced, 1 otherwise."""
    try:
        catalogue = load_catalogue()
        chosen = select(catalogue, list(names))
        for requirement in sdk:
            requirement_parts(requirement)
    except FindingError as exc:
        raise UsageError(str(exc)) from None
    if action == "list":
        print(listing(chosen, last_check()))
        return 0
    if action == "readme":
        print(readme_section(catalogue, last_check(), load_notes()), end="")
        return 0
    if action == "check":
        doc = check(chosen, out, list(sdk))
        return 0 if all(f["status"] == REPRODUCED for f in doc["findings"]) else 1
    raise UsageError(f"unknown findings action {action!r} (list, check, readme)")


def last_check(root: Path = FINDINGS_REPORTS) -> dict[str, Any] | None:
    """The newest findings.json (``latest``), or None."""
    path = root / "latest" / "findings.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def _last_of(doc: Mapping[str, Any] | None, name: str) -> Mapping[str, Any] | None:
    for f in (doc or {}).get("findings", []):
        if isinstance(f, Mapping) and f.get("name") == name:
            return f
    return None


def _status_words(found: Mapping[str, Any]) -> str:
    """``reproduced 3 of 6`` (per version when several: ``... on dist 1.2.3; ...``)."""
    versions = found.get("versions") or [found]
    systems = [dict(v.get("systems", {})) for v in versions]
    axis = [k for k in dict.fromkeys(k for s in systems for k in s) if len({s.get(k) for s in systems}) > 1]
    parts = []
    for v, s in zip(versions, systems, strict=True):
        label = ", ".join(f"{k} {s[k]}" for k in axis if k in s)
        rate = f" {v['rate']}" if v.get("rate") else ""
        parts.append(f"{v['status']}{rate}" + (f" on {label}" if label else ""))
    return "; ".join(parts)


def listing(findings: Sequence[Finding], last: Mapping[str, Any] | None) -> str:
    """The catalogue as text: one block per finding."""
    when = f" (last check {last['checked_at']})" if last else " (never checked here)"
    lines = [f"{len(findings)} findings{when}:"]
    for f in findings:
        rep = f.reproduction
        found = _last_of(last, f.name)
        lines += [f"  {f.name}: {f.title}",
                  f"    seen on: {', '.join(f'{k} {v}' for k, v in f.systems.items())}; scenario {f.scenario}"
                  + (f", seed {f.seed}" if f.seed is not None else ""),
                  f"    reproduction: python -m {rep.module} ({rep.tries} tries"
                  + (" side by side, ~" if rep.side_by_side else ", ~") + f"{rep.seconds_per_try:g} s each, "
                  f"budget {rep.budget_s:g} s" + (f"; on {', '.join(rep.versions)}" if rep.versions else "") + ")"
                  + ("" if rep.alone else f"; cannot run alone: {rep.why_not_alone}"),
                  f"    last check: {_status_words(found) if found else 'none'}"]
    return "\n".join(lines)


def versions_for(finding: Finding, sdk: Sequence[str]) -> list[str]:
    """The library versions to run a finding on: ``--sdk`` ones about a library it names, else its own list."""
    wanted = [r for r in sdk if requirement_parts(r)[0] in finding.systems]
    return wanted or list(finding.reproduction.versions)


def run_one(finding: Finding, out_dir: Path, sdk: Sequence[str]) -> list[CheckResult]:
    """Run a finding's reproduction in its own process (its output echoed), within its budget; its results."""
    from harness.backends.local import LocalBackend

    rep = finding.reproduction
    json_path = out_dir / "results" / f"{finding.name}.json"
    logs = out_dir / "logs" / finding.name
    logs.mkdir(parents=True, exist_ok=True)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.unlink(missing_ok=True)
    argv = rep.argv(sys.executable, sdk=versions_for(finding, sdk), json_path=json_path, log_dir=logs)
    proc = LocalBackend().process(name=finding.name, argv=argv, log_path=out_dir / "logs" / f"{finding.name}.log",
                                  env={"PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"}, cwd=PROJECT_ROOT)
    t0 = time.monotonic()
    proc.start()
    offset = 0
    overran = False
    while True:
        done = proc.wait(1.0)
        offset = _echo(proc.log_path, offset, finding.name)
        if done:
            break
        if not overran and time.monotonic() - t0 > rep.budget_s:
            overran = True
            print(f"  [{finding.name}] over its budget of {rep.budget_s:g} s: stopping it", flush=True)
            proc.signal(signal.SIGINT, group=False)  # it stops what it started (its ExitStack)
            if not proc.wait(STOP_GRACE_S):
                proc.kill()  # its reaper kills what it left
    offset = _echo(proc.log_path, offset, finding.name)
    took = time.monotonic() - t0
    if overran:
        return [CheckResult.cannot_run(f"stopped after its budget of {rep.budget_s:g} s (log: {proc.log_path})", took)]
    try:
        raw = json.loads(json_path.read_text())
        results = [CheckResult.from_json(r) for r in raw["results"]]
    except (OSError, json.JSONDecodeError, KeyError, TypeError, FindingError) as exc:
        return [CheckResult.cannot_run(f"it exited with status {proc.exit_code()} without a result ({exc}); log: "
                                       f"{proc.log_path}", took)]
    return results or [CheckResult.cannot_run(f"it reported nothing; log: {proc.log_path}", took)]


def _echo(log: Path, offset: int, name: str) -> int:
    """Print what a reproduction logged since offset (its progress lines), prefixed; the new offset."""
    try:
        with log.open("rb") as f:
            f.seek(offset)
            chunk = f.read()
    except OSError:
        return offset
    end = chunk.rfind(b"\n") + 1
    for line in chunk[:end].decode(errors="replace").splitlines():
        if line.startswith("--- harness:") or not line.strip():
            continue
        print(f"  [{name}] {line}", flush=True)
    return offset + end


def check(findings: Sequence[Finding], out: Path | None, sdk: Sequence[str] = ()) -> dict[str, Any]:
    """Re-run each finding's reproduction; write findings.json (and the README section, and the page when the
    report can render it); the document."""
    started = datetime.now(UTC)
    out_dir = out or FINDINGS_REPORTS / started.strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    entries = []
    for k, finding in enumerate(findings, 1):
        on = versions_for(finding, sdk)
        print(f"[{k}/{len(findings)}] {finding.name}: {finding.title}" + (f" (on {', '.join(on)})" if on else ""),
              flush=True)
        results = run_one(finding, out_dir, sdk)
        for r in results:
            print(f"  => {r.line()}", flush=True)
        entries.append(entry(finding, results))
    wall = time.monotonic() - t0
    doc = document(entries, started.isoformat(timespec="seconds"), wall,
                   {"cpu_count": os.cpu_count(), "load_average_end": [round(x, 2) for x in os.getloadavg()],
                    "sdk": list(sdk)}, load_notes())
    (out_dir / "findings.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out_dir / "README-findings.md").write_text(readme_section(load_catalogue(), doc, load_notes()))
    if out is None:
        _link_latest(out_dir)
    print(f"{sum(e['status'] == REPRODUCED for e in entries)} of {len(entries)} findings reproduced in "
          f"{wall / 60:.1f} min; results: {out_dir / 'findings.json'}", flush=True)
    _page(out_dir, doc)
    return doc


def _link_latest(out_dir: Path) -> None:
    latest = out_dir.parent / "latest"
    tmp = out_dir.parent / ".latest-tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(out_dir.name)
    tmp.replace(latest)


def _page(out_dir: Path, doc: dict[str, Any]) -> None:
    """Render the findings page through the report, if the report has that function yet."""
    try:
        from harness.report import findings as report_findings  # type: ignore[attr-defined, unused-ignore]

        write = report_findings.write_findings_page
    except (ImportError, AttributeError):
        print("page: not written (harness.report.findings.write_findings_page is not there yet); findings.json has "
              "everything it needs", flush=True)
        return
    page = write(out_dir, doc)
    print(f"page: {page or out_dir}", flush=True)


def readme_section(catalogue: Mapping[str, Finding], doc: Mapping[str, Any] | None,
                   notes: Notes | None = None) -> str:
    """The README's Findings section: each finding's text, upstream trail and reproduction, with its status from the
    last check (``doc``: a findings.json) and that check's date."""
    notes = notes or Notes()
    when = str(doc["checked_at"])[:10] if doc else ""
    machine = dict(doc.get("machine") or {}) if doc else {}
    cores = f" on {machine['cpu_count']} cores" if machine.get("cpu_count") else ""
    wall = f", {float(doc['wall_s']) / 60:.1f} min for all{cores}" if doc and doc.get("wall_s") else ""
    example = notes.example_sdk or "DIST==VERSION"
    pins = " ".join(f"{name} stays at {why}" for name, why in notes.pins.items())
    out = ["## Findings", "",
           "What the harness found that users of these systems need to know. Each is a file in `findings/` (claim, "
           "versions, mechanism with upstream source locations, upstream references, the scenario that shows it) "
           "with a standalone reproduction in `findings/repro/` that starts only what it needs on the harness's own "
           "servers and prints how often it reproduced. `harness findings check [NAME...]` (or `make findings`) "
           "re-runs them and writes `reports/findings/<time>/findings.json` and its page. The version axis: "
           f"`harness findings check NAME --sdk {example}` re-checks the findings about that library on that "
           "release, from its own venv (`make sdk-versions`, the lock's dependencies with that one version from "
           "PyPI); a finding names the versions a plain check runs it on. " + pins, "",
           (f"Last check: {when}{wall}." if doc else "Not checked on this machine yet."), "",
           "| finding | seen on | last check |", "| --- | --- | --- |"]
    for f in catalogue.values():
        found = _last_of(doc, f.name)
        seen = ", ".join(f"{k} {v}" for k, v in f.systems.items())
        status = _status_words(found) if found else "not checked"
        out.append(f"| [{f.title}](#{_anchor(f.title)}) | {seen} | {status} |")
    for f in catalogue.values():
        found = _last_of(doc, f.name)
        rep = f.reproduction
        out += ["", f"### {f.title}", "", f.text, ""]
        if f.corrects:
            out += [f"*Correction.* {f.corrects}", ""]
        rel = f.path.relative_to(FINDINGS_DIR.parent).as_posix()
        out += ["*Upstream.* " + "; ".join(f.upstream), "",
                f"*Reproduce.* `python -m {rep.module}` ({rep.tries} tries"
                + (" side by side" if rep.side_by_side else "") + f"; reproduced when {rep.reproduced_when})"
                + (f", on {', '.join(rep.versions)}" if rep.versions else "") + f". Scenario `{f.scenario}`"
                + (f", seed {f.seed}" if f.seed is not None else "")
                + f". Mechanism with its source lines, and the control: [`{rel}`]({rel}).", ""]
        if found:
            out.append(f"*Last check ({when}).* {_status_words(found)}: {_short(str(found.get('detail', '')))}")
        else:
            out.append("*Last check.* not checked here yet.")
    return "\n".join(out).rstrip() + "\n"


def _short(text: str, limit: int = 320) -> str:
    """text cut at a word before limit characters."""
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


def _anchor(title: str) -> str:
    """GitHub's anchor for a heading."""
    keep = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return keep.replace(" ", "-")


__all__ = ["COULD_NOT_RUN", "FINDINGS_DIR", "check", "command", "last_check", "listing", "readme_section",
           "run_one", "versions_for"]
