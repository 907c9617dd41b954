"""The findings catalogue: what a system does that its users need to know, each with a reproduction.

A finding is one file, ``findings/<name>.toml``: the claim, the systems and versions it was seen
on, the mechanism with its upstream source locations, upstream references, the scenario and seed
that show it, a short text, and its reproduction (``findings/repro/<module>.py``: what it starts,
how many tries, how long each, what counts as reproduced). ``harness findings check`` re-runs the
reproductions; each run gives a :class:`CheckResult`, and :func:`entry` / :func:`document` make
``findings.json`` from them.

The version axis: a reproduction may be run on a library version other than the lock's
(``--sdk hatchet-sdk==1.43.1``); :attr:`Reproduction.versions` names the ones ``check`` runs by
default. Each such version lives in its own virtual environment (``make sdk-versions``); what cannot
move (a server no registry serves a newer version of) is said in ``findings/_catalogue.toml``.

This module is data: it imports nothing of the runtime.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.model.paths import FINDINGS_DIR

REPRODUCED = "reproduced"
"""The reproduction showed the behaviour at least once in its tries."""
NOT_REPRODUCED = "not reproduced"
"""It ran every try and never saw it."""
COULD_NOT_RUN = "could not run"
"""It could not run (a tool, a version's environment missing, a stack that did not start, a timeout): says why."""
STATUSES = (REPRODUCED, NOT_REPRODUCED, COULD_NOT_RUN)
"""Every status a check may report."""
EXIT_CODES = {REPRODUCED: 0, NOT_REPRODUCED: 1, COULD_NOT_RUN: 2}
"""A reproduction's exit status for each result."""
SDK_VENVS_DIR = FINDINGS_DIR.parent / ".venv-sdk"
"""Where ``make sdk-versions`` makes one virtual environment per library version (``hatchet-sdk-1.43.1``)."""
NOTES_FILE = "_catalogue.toml"
"""What the catalogue says as a whole (not a finding): ``pins`` (what cannot move, with why), ``example_sdk``."""

_TOP_KEYS = {"name", "title", "claim", "systems", "mechanism", "sources", "upstream", "scenario", "seed", "text",
             "corrects", "reproduction", "new"}
_REPRO_KEYS = {"module", "tries", "seconds_per_try", "budget_s", "reproduced_when", "control", "versions",
               "alone", "why_not_alone", "side_by_side"}


class FindingError(ValueError):
    """A catalogue file is malformed."""


def requirement_parts(requirement: str) -> tuple[str, str]:
    """``hatchet-sdk==1.43.1`` -> (``hatchet-sdk``, ``1.43.1``); FindingError unless pinned with ``==``."""
    dist, sep, version = requirement.partition("==")
    if not sep or not dist.strip() or not version.strip() or any(c in version for c in "<>=!~ ,"):
        raise FindingError(f"{requirement!r}: give a pinned version, e.g. dist==1.2.3")
    return dist.strip(), version.strip()


def venv_dir(requirement: str) -> Path:
    """The virtual environment ``make sdk-versions`` makes for a requirement (``.venv-sdk/hatchet-sdk-1.43.1``)."""
    dist, version = requirement_parts(requirement)
    return SDK_VENVS_DIR / f"{dist}-{version}"


@dataclass(frozen=True)
class Reproduction:
    """How a finding is shown again: a standalone module, its tries, and what counts."""

    module: str
    """Python module run as ``python -m MODULE`` (``findings.repro.celery_kill_window``)."""
    tries: int
    """Tries per check (each a chance to see it)."""
    seconds_per_try: float
    """About how long one try takes (the stack's start not counted)."""
    budget_s: float
    """Longest a check lets it run, start-up and every version included, before it is stopped (could not run)."""
    reproduced_when: str
    """What counts as reproduced, in words."""
    control: str = ""
    """What the control arm does and should show (nothing, when it has none)."""
    side_by_side: bool = False
    """The tries run at the same time (one queue each, say): the run takes about one try's time, not ``tries`` of
    them."""
    versions: tuple[str, ...] = ()
    """Library versions ``check`` runs it on, each a pinned requirement (``hatchet-sdk==1.43.1``); empty: the lock's
    only. The first is the headline result."""
    alone: bool = True
    """False when it cannot be reproduced on its own (then :attr:`why_not_alone` says why)."""
    why_not_alone: str = ""
    """Why it cannot be reproduced alone, when it cannot."""

    def argv(self, python: str, *, tries: int | None = None, sdk: Sequence[str] = (),
             json_path: Path | None = None, log_dir: Path | None = None, dry_run: bool = False) -> list[str]:
        """The command line running it."""
        out = [python, "-m", self.module, "--tries", str(tries or self.tries)]
        for requirement in sdk:
            out += ["--sdk", requirement]
        if json_path is not None:
            out += ["--json", str(json_path)]
        if log_dir is not None:
            out += ["--logs", str(log_dir)]
        return [*out, "--dry-run"] if dry_run else out


@dataclass(frozen=True)
class Finding:
    """One finding of the catalogue."""

    name: str
    """Its name (the file's stem): what ``harness findings check NAME`` takes."""
    title: str
    """One line."""
    claim: str
    """What the system does, in a sentence or two."""
    systems: dict[str, str]
    """Systems and libraries it was seen on, with their versions (``{"hatchet-engine": "v0.105.0"}``)."""
    mechanism: str
    """Why it happens, in words."""
    sources: tuple[str, ...]
    """Upstream source locations of the mechanism (``project tag path:lines (what)``)."""
    upstream: tuple[str, ...]
    """Upstream issues and pull requests (``owner/repo#N (state): title``), or ``none found (searched: ...)``."""
    scenario: str
    """The harness scenario that shows it."""
    seed: int | None
    """The seed that showed it (None: any)."""
    text: str
    """The short text: what a user needs to know, with the numbers."""
    reproduction: Reproduction
    """How to see it again."""
    path: Path
    """The catalogue file."""
    corrects: str = ""
    """What an earlier explanation (README) got wrong, when this settles it."""
    new: bool = False
    """Found while building the catalogue (not one of the harness's earlier observations)."""

    @property
    def expected_s(self) -> float:
        """About how long its tries take on every version it runs on by default (start-up not counted)."""
        rep = self.reproduction
        per_version = rep.seconds_per_try * (1 if rep.side_by_side else rep.tries)
        return per_version * max(1, len(rep.versions))

    @property
    def repro_path(self) -> Path:
        """The reproduction's source file."""
        return FINDINGS_DIR.parent.joinpath(*self.reproduction.module.split(".")).with_suffix(".py")


@dataclass(frozen=True)
class CheckResult:
    """One run of a reproduction (one library version): what ``python -m findings.repro.X --json`` writes."""

    status: str
    """One of :data:`STATUSES`."""
    tries: int
    """Tries made."""
    reproduced: int
    """Tries that showed it."""
    duration_s: float
    """Wall time of the run, start-up included."""
    detail: str
    """What happened, in a line or two (why it could not run, when it could not)."""
    versions: dict[str, str] = field(default_factory=dict)
    """What it ran on (``{"hatchet-sdk": "1.43.1", "hatchet-engine": "v0.105.0"}``)."""
    data: dict[str, Any] = field(default_factory=dict)
    """The reproduction's own figures (per try), machine-readable."""

    @property
    def rate(self) -> str | None:
        """``"2 of 8"``, or None when it could not run."""
        return None if self.status == COULD_NOT_RUN else f"{self.reproduced} of {self.tries}"

    @classmethod
    def judge(cls, reproduced: int, tries: int, duration_s: float, detail: str, versions: Mapping[str, str],
              data: Mapping[str, Any] | None = None) -> CheckResult:
        """The result of tries that ran: reproduced when at least one showed it."""
        return cls(REPRODUCED if reproduced > 0 else NOT_REPRODUCED, tries, reproduced, round(duration_s, 1), detail,
                   dict(versions), dict(data or {}))

    @classmethod
    def cannot_run(cls, why: str, duration_s: float = 0.0, versions: Mapping[str, str] | None = None,
                   data: Mapping[str, Any] | None = None) -> CheckResult:
        """A reproduction that could not run, with why."""
        return cls(COULD_NOT_RUN, 0, 0, round(duration_s, 1), why, dict(versions or {}), dict(data or {}))

    def as_json(self) -> dict[str, Any]:
        """The JSON a reproduction writes (``rate`` included)."""
        return {"status": self.status, "rate": self.rate, "tries": self.tries, "reproduced": self.reproduced,
                "duration_s": self.duration_s, "detail": self.detail, "versions": self.versions, "data": self.data}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> CheckResult:
        """Read what :meth:`as_json` wrote (FindingError when it is not that)."""
        try:
            status = str(doc["status"])
            if status not in STATUSES:
                raise FindingError(f"unknown status {status!r}")
            return cls(status, int(doc["tries"]), int(doc["reproduced"]), float(doc["duration_s"]),
                       str(doc["detail"]), {str(k): str(v) for k, v in dict(doc.get("versions") or {}).items()},
                       dict(doc.get("data") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise FindingError(f"not a reproduction's result: {exc}") from exc

    def line(self) -> str:
        """One line for a terminal: the status with its rate, on what."""
        on = ", ".join(f"{k} {v}" for k, v in self.versions.items())
        head = f"{self.status} ({self.rate})" if self.rate else self.status
        return f"{head}{f' on {on}' if on else ''}: {self.detail}"


def entry(finding: Finding, results: Sequence[CheckResult]) -> dict[str, Any]:
    """A finding's entry in findings.json: the catalogue's fields and its check on each version it ran on.

    The top-level status, rate, tries, reproduced, duration_s and detail are those of the first
    version run (the headline, normally the lock's); ``versions`` lists every version's result, and
    ``detail`` names each when there are several.
    """
    if not results:
        raise FindingError(f"{finding.name}: no result to report")
    head = results[0]
    detail = head.detail
    if len(results) > 1:
        keys = varying(results)
        detail = " | ".join(f"{_on(r, keys)}: {r.status}{f' ({r.rate})' if r.rate else ''}: {r.detail}"
                            for r in results)
    repro = finding.reproduction
    return {
        "name": finding.name, "title": finding.title, "claim": finding.claim,
        "systems": {**finding.systems, **head.versions}, "mechanism": finding.mechanism,
        "sources": list(finding.sources), "upstream": list(finding.upstream), "scenario": finding.scenario,
        "seed": finding.seed, "status": head.status, "rate": head.rate, "tries": head.tries,
        "reproduced": head.reproduced, "duration_s": round(sum(r.duration_s for r in results), 1), "detail": detail,
        # additions beyond the agreed keys
        "text": finding.text, "corrects": finding.corrects, "new": finding.new,
        "reproduction": {"module": repro.module, "tries": repro.tries, "seconds_per_try": repro.seconds_per_try,
                         "side_by_side": repro.side_by_side,
                         "reproduced_when": repro.reproduced_when, "control": repro.control,
                         "alone": repro.alone, "why_not_alone": repro.why_not_alone},
        "versions": [{"systems": {**finding.systems, **r.versions}, "status": r.status, "rate": r.rate,
                      "tries": r.tries, "reproduced": r.reproduced, "duration_s": r.duration_s, "detail": r.detail,
                      "data": r.data} for r in results],
    }


def varying(results: Sequence[CheckResult]) -> list[str]:
    """The version keys whose values differ between results (the axis they were run along)."""
    keys = dict.fromkeys(k for r in results for k in r.versions)
    return [k for k in keys if len({r.versions.get(k) for r in results}) > 1]


def _on(result: CheckResult, keys: Sequence[str]) -> str:
    return ", ".join(f"{k} {result.versions[k]}" for k in keys if k in result.versions) or "lock"


@dataclass(frozen=True)
class Notes:
    """What the catalogue says as a whole (``findings/_catalogue.toml``)."""

    pins: dict[str, str] = field(default_factory=dict)
    """What cannot move to another version here, each with why (a server the version axis cannot reach)."""
    example_sdk: str = ""
    """A requirement to show ``--sdk`` with."""


def load_notes(directory: Path = FINDINGS_DIR) -> Notes:
    """The catalogue's notes (empty when it has none)."""
    path = directory / NOTES_FILE
    if not path.exists():
        return Notes()
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise FindingError(f"{path}: {exc}") from exc
    pins = raw.get("pins", {})
    if not isinstance(pins, dict) or not all(isinstance(v, str) for v in pins.values()):
        raise FindingError(f"{path}: 'pins' must be a table of name = why")
    example = str(raw.get("example_sdk", ""))
    if example:
        requirement_parts(example)
    return Notes({str(k): v.strip() for k, v in pins.items()}, example)


def document(entries: Sequence[Mapping[str, Any]], checked_at: str, wall_s: float | None = None,
             machine: Mapping[str, Any] | None = None, notes: Notes | None = None) -> dict[str, Any]:
    """findings.json: when, and one entry per finding checked (``pins``, the wall time and the machine are
    additions)."""
    doc: dict[str, Any] = {"checked_at": checked_at, "findings": [dict(e) for e in entries],
                           "pins": dict((notes or Notes()).pins)}
    if wall_s is not None:
        doc["wall_s"] = round(wall_s, 1)
    if machine:
        doc["machine"] = dict(machine)
    return doc


def _strings(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(s, str) and s.strip() for s in raw):
        raise FindingError(f"{where}: expected a non-empty list of non-empty strings")
    return tuple(raw)


def _text(raw: Mapping[str, Any], key: str, where: str, required: bool = True) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise FindingError(f"{where}: {key!r} must be a non-empty string")
    return value.strip()


def load_finding(path: Path) -> Finding:
    """Parse and check one catalogue file."""
    where = str(path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise FindingError(f"{where}: {exc}") from exc
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise FindingError(f"{where}: unknown keys {sorted(unknown)}")
    name = _text(raw, "name", where)
    if name != path.stem:
        raise FindingError(f"{where}: name {name!r} must be the file's stem {path.stem!r}")
    systems = raw.get("systems")
    if not isinstance(systems, dict) or not systems or not all(isinstance(v, str) for v in systems.values()):
        raise FindingError(f"{where}: 'systems' must be a table of name = version")
    rep = raw.get("reproduction")
    if not isinstance(rep, dict):
        raise FindingError(f"{where}: missing [reproduction]")
    unknown = set(rep) - _REPRO_KEYS
    if unknown:
        raise FindingError(f"{where}: unknown [reproduction] keys {sorted(unknown)}")
    try:
        tries, per_try, budget = int(rep["tries"]), float(rep["seconds_per_try"]), float(rep["budget_s"])
    except (KeyError, TypeError, ValueError) as exc:
        raise FindingError(f"{where}: [reproduction] needs tries, seconds_per_try and budget_s ({exc})") from exc
    if tries < 1 or per_try <= 0 or budget <= 0:
        raise FindingError(f"{where}: tries, seconds_per_try and budget_s must be positive")
    versions = _strings(rep["versions"], f"{where} [reproduction] versions") if rep.get("versions") else ()
    for requirement in versions:
        requirement_parts(requirement)
    alone = bool(rep.get("alone", True))
    why_not = _text(rep, "why_not_alone", where, required=not alone)
    seed = raw.get("seed")
    if seed is not None and not isinstance(seed, int):
        raise FindingError(f"{where}: 'seed' must be an integer")
    reproduction = Reproduction(
        module=_text(rep, "module", where), tries=tries, seconds_per_try=per_try, budget_s=budget,
        side_by_side=bool(rep.get("side_by_side", False)),
        reproduced_when=_text(rep, "reproduced_when", where), control=_text(rep, "control", where, required=False),
        versions=versions, alone=alone, why_not_alone=why_not)
    return Finding(
        name=name, title=_text(raw, "title", where), claim=_text(raw, "claim", where),
        systems={str(k): str(v) for k, v in systems.items()}, mechanism=_text(raw, "mechanism", where),
        sources=_strings(raw.get("sources"), f"{where} sources"),
        upstream=_strings(raw.get("upstream"), f"{where} upstream"), scenario=_text(raw, "scenario", where),
        seed=seed, text=_text(raw, "text", where), reproduction=reproduction, path=path,
        corrects=_text(raw, "corrects", where, required=False), new=bool(raw.get("new", False)))


def load_catalogue(directory: Path = FINDINGS_DIR) -> dict[str, Finding]:
    """Every finding of the catalogue by name, in file-name order."""
    paths = [p for p in sorted(directory.glob("*.toml")) if not p.name.startswith("_")]
    return {f.name: f for f in (load_finding(p) for p in paths)}


def select(catalogue: Mapping[str, Finding], names: Sequence[str]) -> list[Finding]:
    """The named findings (every one when none is named); FindingError naming the unknown ones."""
    unknown = [n for n in names if n not in catalogue]
    if unknown:
        raise FindingError(f"no finding {', '.join(map(repr, unknown))} (known: {', '.join(catalogue)})")
    return [catalogue[n] for n in dict.fromkeys(names)] if names else list(catalogue.values())
