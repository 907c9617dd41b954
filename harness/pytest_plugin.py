"""pytest plugin: fixtures that run scenarios on the real stack, options to override parameters.

Options: ``--seed N``, ``--param NAME=VALUE`` (repeatable, e.g. ``--param rate=50``),
``--systems native,hatchet`` (a scenario naming its own systems, e.g. calibration, runs against
those whatever ``--systems`` says), ``--ledger sqlite|pg|postgresql://...`` (as ``harness run``),
``--backend docker`` (servers in containers; ``--dockerd auto`` starts a private engine when none is
reachable, as root). Marker ``soak`` marks long scenarios, left out of the default tier
(``pytest scenarios/ -m soak`` runs them); marker ``docker`` marks tests that need a Docker engine,
run only with ``--backend docker``. Results land in ``reports/<run-id>/<scenario>/``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import hosts, report
from harness.external import ENGINES, EngineUnusable, select_engine
from harness.ledger import LEDGER_OPTIONS, Ledger, LedgerOptionError, check_option, sqlite_url
from harness.scenario import ParamError, Params, Scenario
from harness.session import BACKENDS, BackendUnavailable, Session
from harness.spec import COMPARED, SystemSpec, find_systems


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

    def __init__(self, doc: dict[str, Any], out_dir: Path) -> None:
        self.doc = doc
        """The results.json document."""
        self.out_dir = out_dir
        """The scenario's directory (results.json, ``<system>/ledger.db``)."""
        self.runs = {r["system"]: RunView(r) for r in doc["runs"]}
        """Runs by system name."""

    @property
    def params(self) -> Params:
        """The parameters the scenario ran with (its defaults and every override)."""
        return Params(**self.doc["manifest"]["params"])

    def ledger_of(self, system: str) -> Ledger:
        """The ledger of one system's run, for tests that check the raw history."""
        return Ledger(sqlite_url(self.out_dir / system / "ledger.db"))

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
    group.addoption("--engine", default=None, choices=ENGINES,
                    help="built (default: the harness's own Hatchet engine) or external: the engine the "
                         "HATCHET_CLIENT_* variables name (it receives the scenarios' real load)")
    group.addoption("--systems", default=",".join(COMPARED),
                    help="comma-separated systems to run (default: native,hatchet; calibration scenarios name "
                         "their own)")
    group.addoption("--backend", choices=BACKENDS, default="process",
                    help="what runs the servers: local processes (default) or Docker containers")
    group.addoption("--dockerd", choices=("never", "auto"), default="never",
                    help="with --backend docker: `auto` starts a private dockerd (root) when no engine is reachable")
    group.addoption("--processes", type=int, default=0, metavar="N",
                    help="Locust worker processes sending the measured load (0: one process)")
    group.addoption("--hosts", type=int, default=0, metavar="N",
                    help="place each system's processes on N network hosts the run creates (root); 0: one machine")
    group.addoption("--ledger", default="sqlite", metavar="BACKEND",
                    help=f"where the ledgers live: {LEDGER_OPTIONS} (default sqlite)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: long randomized scenario, not in the default tier (-m soak)")
    config.addinivalue_line("markers", "docker: needs a Docker engine; runs only with --backend docker")


def _scenario_of(item: pytest.Item) -> Scenario | None:
    scenario = getattr(item.module, "SCENARIO", None) if hasattr(item, "module") else None
    return scenario if isinstance(scenario, Scenario) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if (scenario := _scenario_of(item)) is not None and scenario.tier == "soak":
            item.add_marker(pytest.mark.soak)
    if config.getoption("--backend") != "docker":  # the Docker tier (make docker-test) runs them
        deselected = [item for item in items if item.get_closest_marker("docker")]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if not item.get_closest_marker("docker")]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Check --param against every scenario that will run (not the deselected ones) before any starts."""
    overrides = _overrides(session.config)
    for item in session.items:
        if (scenario := _scenario_of(item)) is not None:
            _checked(scenario, overrides)


def _checked(scenario: Scenario, overrides: dict[str, Any]) -> Params:
    """The scenario's params with these overrides; a bad one is a usage error (one line, nothing run)."""
    try:
        return scenario.params(overrides)
    except ParamError as exc:
        raise pytest.UsageError(str(exc)) from None


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
def harness_docker_host(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Docker engine of the session (``DOCKER_HOST`` form); a private one with ``--dockerd auto``."""
    from harness.docker_backend import DockerUnavailable, connect, leftovers
    from harness.dockerd import engine

    try:
        with engine(pytestconfig.getoption("--dockerd") == "auto", tmp_path_factory.mktemp("dockerd")) as host:
            yield host
            client = connect(host)
            remaining = leftovers(client, owner=os.getpid())  # the session's servers and every test's
            client.close()
            assert not remaining, f"left behind in Docker by this test session: {', '.join(remaining)}"
    except DockerUnavailable as exc:
        pytest.exit(f"harness: error: --backend docker: {exc}", returncode=2)


@pytest.fixture(scope="session")
def harness_session(request: pytest.FixtureRequest, pytestconfig: pytest.Config) -> Iterator[Session]:
    """One run id and one set of shared servers (and ledger store, ``--ledger``) for the whole pytest session."""
    try:
        engine = select_engine(pytestconfig.getoption("--engine"), os.environ)
        ledger = check_option(pytestconfig.getoption("--ledger"))
        count = pytestconfig.getoption("--hosts")
        if count:
            hosts.check_available()
            hosts.check_placement(count, [["api"]] * count, "the session")  # per system: when each scenario runs
    except (EngineUnusable, LedgerOptionError, hosts.HostsUnavailable) as exc:
        raise pytest.UsageError(str(exc)) from None
    backend = pytestconfig.getoption("--backend")
    if backend == "docker":  # set up first, so torn down last: containers go before a private dockerd stops
        request.getfixturevalue("harness_docker_host")
    try:
        session = Session(engine=engine, ledger=ledger, hosts=count,
                          load_processes=max(0, pytestconfig.getoption("--processes")), backend=backend)
    except BackendUnavailable as exc:
        pytest.exit(f"harness: error: {exc}", returncode=2)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def run_scenario(harness_session: Session, harness_systems: list[SystemSpec],
                 pytestconfig: pytest.Config) -> RunScenario:
    """Run a scenario against the selected systems (or the ones it names); prints the comparison table."""

    def run(scenario: Scenario, **overrides: Any) -> Outcome:
        params = _checked(scenario, {**overrides, **_overrides(pytestconfig)})
        known = find_systems()
        names = scenario.systems_for([s.name for s in harness_systems])
        if missing := [n for n in names if n not in known]:
            raise pytest.UsageError(f"scenario {scenario.name}: no system {missing[0]!r} (known: {', '.join(known)})")
        doc = harness_session.run(scenario, [known[n] for n in names], params)
        out_dir = harness_session.root / scenario.name
        print("\n" + report.text_table(doc), file=sys.stderr)
        print(f"results: {out_dir / 'results.json'}", file=sys.stderr)
        return Outcome(doc, out_dir)

    return run
