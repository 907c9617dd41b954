"""pytest plugin: fixtures that run scenarios on the real stack, options to override parameters.

Options: the same as ``harness run`` (:mod:`harness.front.options`, one definition for both):
``--system``, ``--seed``, ``--param NAME=VALUE``, ``--engine``, ``--backend``, ``--dockerd``,
``--ledger``, ``--processes``, ``--hosts``, ``--parallel``/``--serial``, ``--dry-run``; checked the
same way, a bad one is pytest's usage error before any scenario starts. Markers: ``smoke`` (the
seed's claims in their shortest honest form: ``make smoke``), ``soak`` (long scenarios, left out of
the default tier: ``-m soak``), ``docker`` (tests that need a Docker engine, run only with
``--backend docker``). Results land in ``reports/<run-id>/<scenario>/``.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _pytest.mark.expression import Expression

from harness import report
from harness.front import plan
from harness.front.catalog import by_file
from harness.front.options import OPTIONS, RunRequest, UsageError, add_to_pytest, resolve, scenario_params
from harness.front.preflight import check, select_runs
from harness.front.slots import ENV_SLOTS, make_slots_dir, slot
from harness.ledger import Ledger, open_ledger, sqlite_url
from harness.model.params import Params
from harness.model.paths import REPORTS_DIR, SCENARIOS_DIR
from harness.model.scenario import Scenario
from harness.model.spec import SystemSpec, find_systems
from harness.servers.registry import Prepared
from harness.session import BackendUnavailable, Session, new_run_id, point_latest, progress_line


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


@dataclass(frozen=True)
class Loss:
    """One accepted task that never completed, as its run's ledger holds it."""

    task_id: str
    """The task's id."""
    accepted_s: float
    """When the system's acceptance came back, in seconds from the run's start (the faults' clock)."""
    started: bool
    """Whether a worker ever started it."""

    def within(self, start_s: float, end_s: float) -> bool:
        """Never started, and accepted between start_s and end_s: where a loss of a fault's instant comes from."""
        return not self.started and start_s <= self.accepted_s <= end_s

    def __str__(self) -> str:
        return f"{self.task_id} accepted at {self.accepted_s:.2f} s" + (", started" if self.started else "")


def described(losses: list[Loss]) -> str:
    """The losses on one line, for a test's printout ("none" when there are none)."""
    return ", ".join(map(str, losses)) or "none"


def unexplained(run: RunView, losses: list[Loss], start_s: float, end_s: float) -> list[Loss]:
    """The losses a fault between start_s and end_s cannot explain: started, or accepted outside that window (an
    acceptance up to FAULT_LEAD_S before it still counts: its message may be in a socket buffer at the fault). Every
    loss counts as unexplained when results.json kept fewer ids than it lost."""
    if len(losses) < run.lost:
        return losses or [Loss("?", -1.0, False)]
    return [loss for loss in losses if not loss.within(start_s - FAULT_LEAD_S, end_s)]


FAULT_LEAD_S = 1.0
"""How long before a fault an acceptance may still be lost to it (a message written, not yet delivered)."""


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
        return open_ledger(sqlite_url(self.out_dir / system / "ledger.db"))

    def losses(self, system: str) -> list[Loss]:
        """The tasks system accepted and lost, each with when it was accepted and whether it ever started."""
        lost = set(self.runs[system].lost_ids)
        with closing(self.ledger_of(system)) as ledger:
            t0 = float(ledger.meta()["t0"])
            started = {e.task_id for e in ledger.events("start") if e.task_id in lost}
            accepted = {op.task_id: op.complete_t - t0 for op in ledger.ops() if op.task_id in lost}
        return [Loss(t, accepted[t], t in started) for t in sorted(lost)]

    def __getattr__(self, name: str) -> RunView:
        try:
            return self.runs[name]
        except KeyError:
            raise AttributeError(f"no run of system {name!r}") from None


RunScenario = Callable[..., Outcome]
"""``run_scenario(SCENARIO, **param_overrides) -> Outcome``."""


def pytest_addoption(parser: pytest.Parser) -> None:
    add_to_pytest(parser.getgroup("harness", "reliability harness (the same options as `harness run`)"))


ENV_RUN_ID = "HARNESS_RUN_ID"
"""The run id a pytest-xdist controller gives its workers: every worker writes into one run directory."""


def _xdist_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", None))


def _marks(scenario: Scenario) -> Callable[..., bool]:
    """A -m matcher of the markers a scenario's test carries."""
    marks = {"soak"} if scenario.tier == "soak" else set()
    marks |= {"smoke"} if scenario.smoke else set()

    def matcher(name: str, /, **kwargs: Any) -> bool:
        return name in marks

    return matcher


def _controller_checks(config: pytest.Config) -> None:
    """Under pytest-xdist only the workers collect: the controller checks the options and --param against the
    scenarios its arguments and -m select, so bad input is still one line before anything starts."""
    request = _request(config)
    wanted = [Path(a.split("::")[0]).resolve() for a in config.args] or [SCENARIOS_DIR]
    expr = Expression.compile(config.getoption("markexpr")) if config.getoption("markexpr") else None
    chosen = [s for path, s in by_file().items()
              if any(path == w or w in path.parents for w in wanted) and (expr is None or expr.evaluate(_marks(s)))]
    try:
        for scenario in chosen:
            scenario_params(scenario, request.overrides)
        runs = select_runs([s.name for s in chosen], request.systems, {s.name: s for s in chosen}, find_systems())
        if runs and not request.dry_run:
            check(request, runs)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_configure(config: pytest.Config) -> None:
    if _xdist_controller(config):
        _controller_checks(config)
    if _xdist_controller(config) and ENV_RUN_ID not in os.environ:
        # Set before the workers start (they inherit it): one run directory, one machine-slot lock for all of them.
        os.environ[ENV_RUN_ID] = new_run_id()
        os.environ[ENV_SLOTS] = make_slots_dir()
    config.addinivalue_line("markers", "smoke: the seed's claims in their shortest honest form (make smoke, every "
                                       "pull request)")
    config.addinivalue_line("markers", "soak: long randomized scenario, not in the default tier (-m soak)")
    config.addinivalue_line("markers", "docker: needs a Docker engine; runs only with --backend docker")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under pytest-xdist, the controller writes the run's index from every worker's results (each wrote its own
    scenarios) and points reports/latest at it; its slot lock goes."""
    if not _xdist_controller(session.config):
        return
    root = REPORTS_DIR / os.environ.get(ENV_RUN_ID, "")
    if os.environ.get(ENV_RUN_ID) and any(root.glob("*/results.json")):
        report.rebuild([root])
        point_latest(root)
    shutil.rmtree(os.environ.get(ENV_SLOTS, ""), ignore_errors=True)


@pytest.fixture(autouse=True)
def _machine_slot(request: pytest.FixtureRequest) -> Iterator[None]:
    """Under pytest-xdist, a test other than a scenario's holds a shared slot of the machine, so an exclusive
    scenario (capacity, cpu-heavy) runs with nothing beside it; a scenario takes its own in ``run_scenario``."""
    if _scenario_of(request.node) is not None:
        yield
        return
    with slot(exclusive=False):
        yield


def _scenario_of(item: pytest.Item) -> Scenario | None:
    scenario = getattr(item.module, "SCENARIO", None) if hasattr(item, "module") else None
    return scenario if isinstance(scenario, Scenario) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tier markers from each scenario. Under pytest-xdist each worker runs one scenario at a time (their systems
    side by side within), so with ``-n 2`` at most two run at once, capacity and cpu-heavy alone (their slot);
    three at once on two cores (``-n 3``) overloaded the machine until faults missed the work they target."""
    for item in items:
        if (scenario := _scenario_of(item)) is not None:
            if scenario.tier == "soak":
                item.add_marker(pytest.mark.soak)
            if scenario.smoke:
                item.add_marker(pytest.mark.smoke)
    items[:] = tier_order(items)
    if config.getoption("backend") != "docker":  # the Docker tier (make docker-test) runs them
        deselected = [item for item in items if item.get_closest_marker("docker")]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if not item.get_closest_marker("docker")]


def tier_order(items: list[pytest.Item]) -> list[pytest.Item]:
    """The order pytest-xdist hands scenarios out in: other tests first (as collected), then the scenarios that run
    alone (exclusive slot) while both workers are free, so neither waits for the other's scenario to end first, then
    the longest first (``Scenario.tier_s``), so the tier ends on short ones."""

    def key(item: pytest.Item) -> tuple[int, float]:
        scenario = _scenario_of(item)
        if scenario is None:
            return (0, 0.0)
        return (1 if not scenario.side_by_side else 2, -scenario.tier_s)

    return sorted(items, key=key)  # stable: tests of one module keep their order


def _request(config: pytest.Config) -> RunRequest:
    values = {opt.dest: config.getoption(opt.dest) for opt in OPTIONS}
    try:
        return resolve(values, find_systems())
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


REQUEST = pytest.StashKey[RunRequest]()
PREPARED = pytest.StashKey[Prepared]()
PLANNED = pytest.StashKey[int]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Check the options, and --param against every scenario that will run (not the deselected ones), and make
    their systems' servers (a user's engine answers), before any starts."""
    request = _request(session.config)
    session.config.stash[REQUEST] = request
    scenarios = [s for item in session.items if (s := _scenario_of(item)) is not None]
    session.config.stash[PLANNED] = len(scenarios)
    specs = find_systems()
    try:
        for scenario in scenarios:
            scenario_params(scenario, request.overrides)
        runs = select_runs(list(dict.fromkeys(s.name for s in scenarios)), request.systems,
                           {s.name: s for s in scenarios}, specs) if scenarios else []
        if runs and not request.dry_run:
            session.config.stash[PREPARED] = check(request, runs)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    if request.dry_run and runs:
        print("\ndry run: nothing is started", *(plan.describe(scenario, systems, scenario.params(request.overrides))
                                                   for scenario, systems in runs), sep="\n", flush=True)
        session.items.clear()


@pytest.fixture(scope="session")
def harness_request(pytestconfig: pytest.Config) -> RunRequest:
    """The run options, checked (``--system``, ``--param``, ``--backend``, ...)."""
    return pytestconfig.stash.get(REQUEST, None) or _request(pytestconfig)


@pytest.fixture(scope="session")
def harness_systems(harness_request: RunRequest) -> list[SystemSpec]:
    """The systems under test selected by ``--system``."""
    known = find_systems()
    return [known[n] for n in harness_request.systems]


@pytest.fixture(scope="session")
def harness_session(request: pytest.FixtureRequest, pytestconfig: pytest.Config,
                    harness_request: RunRequest) -> Iterator[Session]:
    """One run id and one set of shared servers (and ledger store, ``--ledger``) for the whole pytest session."""
    with ExitStack() as cleanup:
        if harness_request.backend == "docker":  # set up first, so torn down last: containers go before dockerd
            request.getfixturevalue("harness_docker_host")
        try:
            session = cleanup.enter_context(Session(
                run_id=os.environ.get(ENV_RUN_ID), prepared=pytestconfig.stash.get(PREPARED, None),
                ledger=harness_request.ledger,
                hosts=harness_request.hosts, load_processes=harness_request.processes,
                backend=harness_request.backend,
                # CI's tier runs a scenario's systems side by side unless --serial (harness run: the other way).
                parallel=harness_request.parallel is not False))
        except BackendUnavailable as exc:
            pytest.exit(f"harness: error: {exc}", returncode=2)
        # "scenario k of n" as the tier goes; a pytest-xdist worker runs an unknown share of them ("scenario k").
        session.planned = 0 if hasattr(pytestconfig, "workerinput") else pytestconfig.stash.get(PLANNED, 0)
        yield session


@pytest.fixture(scope="session")
def harness_docker_host(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory,
                        harness_request: RunRequest) -> Iterator[str]:
    """The Docker engine of the session (``DOCKER_HOST`` form); a private one with ``--dockerd auto``."""
    from harness.backends.docker import DockerUnavailable, connect, leftovers
    from harness.backends.dockerd import engine

    try:
        with engine(harness_request.dockerd == "auto", tmp_path_factory.mktemp("dockerd")) as host:
            yield host
            client = connect(host)
            remaining = leftovers(client, owner=os.getpid())  # the session's servers and every test's
            client.close()
            assert not remaining, f"left behind in Docker by this test session: {', '.join(remaining)}"
    except DockerUnavailable as exc:
        pytest.exit(f"harness: error: --backend docker: {exc}", returncode=2)


def _announce(config: pytest.Config, line: str) -> None:
    """A line on pytest's own terminal as the tier goes, past output capture (the rest of a run's progress is kept
    with its test's output)."""
    reporter = config.pluginmanager.getplugin("terminalreporter")
    capture = config.pluginmanager.getplugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


@pytest.fixture
def run_scenario(harness_session: Session, harness_systems: list[SystemSpec], harness_request: RunRequest,
                 pytestconfig: pytest.Config) -> RunScenario:
    """Run a scenario against the selected systems (or the ones it names); prints the comparison table."""

    def run(scenario: Scenario, **overrides: Any) -> Outcome:
        try:
            params = scenario_params(scenario, {**overrides, **harness_request.overrides})
            ((_, specs),) = select_runs([scenario.name], [s.name for s in harness_systems], {scenario.name: scenario},
                                        find_systems())
        except UsageError as exc:
            raise pytest.UsageError(str(exc)) from None
        side_by_side = harness_session.parallel and scenario.side_by_side and len(specs) > 1
        _announce(pytestconfig, "\n" + progress_line(harness_session.begun + 1, harness_session.planned,
                                                    scenario.name, time.monotonic() - harness_session.started)
                  + f": {', '.join(s.name for s in specs)}" + (" side by side" if side_by_side else ""))
        with slot(exclusive=not scenario.side_by_side):  # under pytest-xdist: capacity and cpu-heavy run alone
            doc = harness_session.run(scenario, specs, params)
        out_dir = harness_session.root / scenario.name
        print("\n" + report.text_table(doc), file=sys.stderr)
        print(f"results: {out_dir / 'results.json'}", file=sys.stderr)
        return Outcome(doc, out_dir)

    return run
