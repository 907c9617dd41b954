"""Command line: ``harness list``, ``harness run``, ``harness report``, ``harness up``, ``harness findings``.

Bad input gets one line on stderr and exit status 2; an identity failure (a harness bug) exits 3;
Ctrl-C or SIGTERM stops every process of the run and exits 130/143.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import NoReturn

from harness import report
from harness.analysis.checker import IdentityError
from harness.backends import hosts
from harness.backends.base import HealthTimeout, free_port
from harness.front import plan
from harness.front.catalog import discover
from harness.front.options import RunRequest, UsageError, add_to_argparse, resolve, scenario_params
from harness.front.preflight import check, select_runs
from harness.ledger import ENV_LEDGER, ENV_SYSTEM, LedgerOptionError
from harness.load.drivers import LOCUSTFILE
from harness.model.env import ENV_SHAPE
from harness.model.params import LIMITS, ParamError, Params
from harness.model.scenario import Scenario
from harness.model.spec import SpecError, find_systems, selections
from harness.runner import StackBroken
from harness.runtime.stack import Stack
from harness.servers.base import ServerUnusable
from harness.session import BackendUnavailable, Session
from harness.tools import ToolMissing


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"harness: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="harness", description="Reliability harness for Python background work: native FastAPI "
                 "BackgroundTasks vs durable task queues, measured under load and faults.")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="list scenarios and systems")
    run = sub.add_parser("run", help="run scenarios against systems and write results.json and index.html")
    run.add_argument("scenarios", nargs="+", metavar="SCENARIO",
                     help="scenario names (see `harness list`), or `all` for every default-tier scenario of the "
                          "comparison (scenarios naming their own systems, e.g. calibration, run by name)")
    add_to_argparse(run)
    run.add_argument("--out", type=Path, default=None,
                     help="output directory (default reports/<run-id>/<scenario>; with several scenarios "
                          "each gets OUT/<scenario>)")
    up = sub.add_parser("up", help="start one system's stack for your own load (prints the Locust command); "
                        "Ctrl-C stops it")
    add_to_argparse(up, ("system", "engine", "backend", "dockerd", "ledger", "processes", "hosts"))
    up.add_argument("--out", type=Path, default=None, help="run directory (default reports/<run-id>)")
    rep = sub.add_parser("report", help="rebuild the HTML reports from saved results.json and ledgers (runs nothing)")
    rep.add_argument("dirs", nargs="+", type=Path, metavar="DIR",
                     help="a scenario, run or reports directory, e.g. reports/latest, reports/ or an --out directory")
    findings = sub.add_parser("findings", help="list the findings catalogue, or re-check its reproductions")
    findings.add_argument("action", nargs="?", choices=("list", "check", "readme"), default="list",
                          help="list the catalogue, check (re-run) reproductions, or print the README section")
    findings.add_argument("names", nargs="*", metavar="NAME", help="findings to check (default: every one)")
    findings.add_argument("--out", type=Path, default=None, help="where `check` writes findings.json and its page")
    findings.add_argument("--sdk", action="append", default=[], metavar="DIST==VERSION",
                          help="check the findings about that library on that version (its venv: make sdk-versions)")
    return ap


def _cmd_list() -> int:
    scenarios = discover()
    print("scenarios:")
    for s in scenarios.values():
        tier = "" if s.tier == "default" else f" [{s.tier}]"
        own = f" [systems: {','.join(s.systems)}]" if s.systems is not None else ""
        print(f"  {s.name:<18}{tier}{own} {s.fault}")
    named = "; ".join(f"`{name}`: {', '.join(systems)}" for name, systems in selections().items())
    print(f"systems ({named}):")
    for spec in find_systems().values():
        print(f"  {spec.name:<18} {spec.description}")
    print("parameters (--param NAME=VALUE; a scenario may change the default):")
    defaults = Params()
    for name, limit in LIMITS.items():
        print(f"  {name:<20} default {getattr(defaults, name)!r:<8} {limit.describe(allow_long=False)}")
    return 0


def _writable_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {path}: cannot create it ({exc.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"--out {path}: not writable")
    if any(path.iterdir()):
        raise UsageError(f"--out {path}: not empty (results of an earlier run would be mixed in); use a new directory")
    return path


def _request(args: argparse.Namespace) -> RunRequest:
    return resolve(vars(args), find_systems())


def _cmd_run(args: argparse.Namespace) -> int:
    request = _request(args)
    runs = select_runs(args.scenarios, request.systems, discover(), find_systems())
    plans = [(scenario, specs, scenario_params(scenario, request.overrides)) for scenario, specs in runs]
    prepared = check(request, runs)
    if request.dry_run:
        print("dry run: nothing is started", *(plan.describe(*p) for p in plans), sep="\n", flush=True)
        return 0
    out = _writable_dir(args.out) if args.out else None
    _stop_on_sigterm()
    with ExitStack() as cleanup:
        docker_engine(cleanup, request)
        session = cleanup.enter_context(Session(
            root=out, prepared=prepared, ledger=request.ledger, hosts=request.hosts,
            load_processes=request.processes, backend=request.backend, parallel=bool(request.parallel)))
        session.planned = len(plans)
        for scenario, specs, params in plans:
            target = out if out and len(plans) == 1 else None
            doc = session.run(scenario, specs, params, out_dir=target)
            print(report.text_table(doc), flush=True)
            print(f"results: {(target or session.root / scenario.name) / 'results.json'}", flush=True)
    print(f"report: {session.root / 'index.html'}", flush=True)
    return 0


def docker_engine(cleanup: ExitStack, request: RunRequest) -> None:
    """With ``--backend docker``, the Docker engine of the run (a private one with ``--dockerd auto``)."""
    if request.backend != "docker":
        return
    from harness.backends.docker import DockerUnavailable  # the process backend never imports the Docker SDK
    from harness.backends.dockerd import engine

    try:
        logs = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="harness-dockerd-"))
        cleanup.enter_context(engine(request.dockerd == "auto", Path(logs)))
    except DockerUnavailable as exc:
        raise UsageError(f"--backend docker: {exc}") from None


def _cmd_report(args: argparse.Namespace) -> int:
    try:
        pages = report.rebuild(args.dirs)
    except report.ReportInputError as exc:
        raise UsageError(str(exc)) from None
    for page in pages:
        print(f"report: {page}")
    return 0


def _locust_command(api_url: str, ledger_url: str, system: str) -> str:
    locust = Path(sys.executable).with_name("locust")
    exe = [str(locust)] if locust.exists() else [sys.executable, "-m", "locust"]
    env = f"{ENV_LEDGER}={shlex.quote(ledger_url)} {ENV_SYSTEM}={shlex.quote(system)}"
    return env + " " + shlex.join([*exe, "-f", str(LOCUSTFILE), "--host", api_url, "--web-host", "127.0.0.1",
                                   "--web-port", str(free_port())])


def _cmd_up(args: argparse.Namespace) -> int:
    request = _request(args)
    systems = find_systems()
    if len(request.systems) != 1:
        raise UsageError(f"--system {args.system!r}: `harness up` starts one system (one of {', '.join(systems)})")
    spec, params = systems[request.systems[0]], Params()
    prepared = check(request, [(Scenario(name="up", fault="", claim=""), [spec])])
    out = _writable_dir(args.out) if args.out else None
    _stop_on_sigterm()
    with ExitStack() as cleanup:
        docker_engine(cleanup, request)
        session = cleanup.enter_context(Session(root=out, prepared=prepared, ledger=request.ledger,
                                                hosts=request.hosts, backend=request.backend))
        run_dir = session.root / spec.name
        ledger = session.ledgers.create(run_dir, f"{session.run_id}_up_{spec.name}")
        ledger.set_meta("system", spec.name)
        cleanup.callback(ledger.save)
        stack = Stack(spec, run_dir, ledger, session.infra, params.task_config(), session.run_id, session.progress,
                      grace_s=params.grace_s)
        cleanup.callback(stack.down)
        try:
            stack.up()
            print(f"{spec.name} is up; Ctrl-C stops every process\n"
                  f"  API     {stack.api_url}\n"
                  f"  ledger  {ledger.url}\n"
                  f"  logs    {run_dir / 'logs'}\n"
                  f"  locust  {_locust_command(stack.api_url, ledger.url, spec.name)}\n"
                  f"  (headless: add --headless -u 10 -r 10 -t 30s; open loop: prefix {ENV_SHAPE}=open, add "
                  f"--rate 50 --duration 30; see harness/load/loadgen/locustfile.py)", flush=True)
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping", flush=True)
    print(f"{spec.name} stopped; its history is in {ledger.path}", flush=True)
    return 0


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through every finally: stacks and servers stop


def _stop_on_sigterm() -> None:
    """From here on SIGTERM unwinds like Ctrl-C (set only by commands that start processes)."""
    signal.signal(signal.SIGTERM, _terminate)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``harness`` console script and ``python -m harness``."""
    # Ctrl-C stops a run even when it was started with SIGINT ignored (a background job, a pytest-xdist worker's
    # child): Python only installs its handler when the inherited disposition is the default.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return _cmd_list()
        if args.command == "report":
            return _cmd_report(args)
        if args.command == "up":
            return _cmd_up(args)
        if args.command == "findings":
            from harness.front.findings import command  # the catalogue's machinery only when asked for

            return command(args.action, args.names, args.out, args.sdk)
        return _cmd_run(args)
    except (UsageError, ParamError, SpecError, ServerUnusable, LedgerOptionError, hosts.HostsUnavailable,
            BackendUnavailable, ToolMissing) as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except (StackBroken, HealthTimeout) as exc:
        print(f"harness: the stack failed: {exc}", file=sys.stderr)
        return 1
    except IdentityError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("harness: interrupted; every process of the run was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
