"""pytest plugin: fixtures that run scenarios on the real stack, options to override parameters.

Options: ``--seed N``, ``--param NAME=VALUE`` (repeatable, e.g. ``--param rate=50``),
``--systems native,hatchet``. Marker ``soak`` marks long scenarios, left out of the default tier
(``pytest scenarios/ -m soak`` runs them). Results land in ``reports/<run-id>/<scenario>/``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness import report
from harness.scenario import ParamError, Scenario
from harness.session import Session
from harness.spec import SystemSpec, find_systems


class RunView:
    """One system's entry of results.json, with attribute access (``run.lost``)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        """The raw results.json entry."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self.data[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def summary(self) -> str:
        """The counts on one line, for assertion messages."""
        if not self.data.get("applicable", True):
            return f"not applicable ({self.data.get('reason')})"
        keys = ("attempted", "accepted", "refused", "indeterminate", "recovered", "completed", "lost", "failed",
                "duplicated", "retried", "refused_ran")
        return " ".join(f"{k}={self.data.get(k)}" for k in keys)


class Outcome:
    """What a scenario measured, per system (``outcome.native``, ``outcome.hatchet``)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        """The results.json document."""
        self.runs = {r["system"]: RunView(r) for r in doc["runs"]}
        """Runs by system name."""

    def __getattr__(self, name: str) -> RunView:
        try:
            return self.runs[name]
        except KeyError:
            raise AttributeError(f"no run of system {name!r}") from None


RunScenario = Callable[..., Outcome]
"""``run_scenario(SCENARIO, **param_overrides) -> Outcome``."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "reliability harness")
    group.addoption("--seed", type=int, default=None, help="seed of every scenario (default: the scenario's)")
    group.addoption("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="override a scenario parameter, e.g. --param rate=50 (repeatable)")
    group.addoption("--systems", default="native,hatchet", help="comma-separated systems to run (default: both)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: long randomized scenario, not in the default tier (-m soak)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        scenario = getattr(item.module, "SCENARIO", None) if hasattr(item, "module") else None
        if isinstance(scenario, Scenario) and scenario.tier == "soak":
            item.add_marker(pytest.mark.soak)


def _overrides(config: pytest.Config) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in config.getoption("--param"):
        name, sep, value = item.partition("=")
        if not sep:
            raise pytest.UsageError(f"--param {item!r}: expected NAME=VALUE")
        out[name] = value
    if config.getoption("--seed") is not None:
        out["seed"] = str(config.getoption("--seed"))
    return out


@pytest.fixture(scope="session")
def harness_systems(pytestconfig: pytest.Config) -> list[SystemSpec]:
    """The systems under test selected by ``--systems``."""
    known = find_systems()
    names = [n.strip() for n in pytestconfig.getoption("--systems").split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise pytest.UsageError(f"--systems: unknown {', '.join(unknown)} (known: {', '.join(known)})")
    return [known[n] for n in names]


@pytest.fixture(scope="session")
def harness_session() -> Iterator[Session]:
    """One run id and one set of shared servers for the whole pytest session."""
    session = Session()
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def run_scenario(harness_session: Session, harness_systems: list[SystemSpec],
                 pytestconfig: pytest.Config) -> RunScenario:
    """Run a scenario against the selected systems; prints the comparison table."""

    def run(scenario: Scenario, **overrides: Any) -> Outcome:
        try:
            params = scenario.params({**overrides, **_overrides(pytestconfig)})
        except ParamError as exc:
            raise pytest.UsageError(str(exc)) from None
        doc = harness_session.run(scenario, harness_systems, params)
        print("\n" + report.text_table(doc), file=sys.stderr)
        print(f"results: {harness_session.root / scenario.name / 'results.json'}", file=sys.stderr)
        return Outcome(doc)

    return run
