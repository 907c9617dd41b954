"""Command line: ``harness list``, ``harness run``, ``harness report``, ``harness up``.

Bad input gets one line on stderr and exit status 2; an identity failure (a harness bug) exits 3;
Ctrl-C or SIGTERM stops every process of the run and exits 130/143.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import NoReturn

from harness import hosts, plan, report
from harness.catalog import discover
from harness.checker import IdentityError
from harness.external import ENGINES, EngineUnusable, select_engine
from harness.ledger import ENV_LEDGER, ENV_SYSTEM, LEDGER_OPTIONS, LedgerOptionError, check_option
from harness.load import ENV_SHAPE, LOCUSTFILE
from harness.procs import HealthTimeout, free_port
from harness.runner import StackBroken
from harness.scenario import LIMITS, ParamError, Params, Scenario
from harness.services import stack_units
from harness.session import BACKENDS, BackendUnavailable, Session
from harness.spec import COMPARED, SELECTIONS, SpecError, SystemSpec, find_systems
from harness.stack import ServerMissing, Stack
from harness.tools import ToolMissing


class UsageError(Exception):
    """Bad input: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"harness: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="harness", description="Reliability harness for Python background work: native FastAPI "
                 "BackgroundTasks vs Hatchet, measured under load and faults.")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="list scenarios and systems")
    run = sub.add_parser("run", help="run scenarios against systems and write results.json and index.html")
    run.add_argument("scenarios", nargs="+", metavar="SCENARIO",
                     help="scenario names (see `harness list`), or `all` for every default-tier scenario of the "
                          "native-vs-Hatchet comparison (scenarios naming their own systems, e.g. calibration, "
                          "run by name)")
    run.add_argument("--system", default="all",
                     help="all (default: native, hatchet and celery), both (native and hatchet), or a comma-separated "
                          "list of system names; a scenario naming its own systems (calibration) ignores it")
    run.add_argument("--seed", type=int, default=None, help="seed of schedules and job failures (default: 1)")
    run.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                     help="override a scenario parameter, e.g. --param rate=50 (repeatable; see `harness list`)")
    run.add_argument("--engine", default=None, choices=ENGINES,
                     help="built (the harness builds and starts its own Hatchet engine; the default) or external: "
                          "the engine the HATCHET_CLIENT_* variables name (it receives the scenario's real load)")
    run.add_argument("--out", type=Path, default=None,
                     help="output directory (default reports/<run-id>/<scenario>; with several scenarios "
                          "each gets OUT/<scenario>)")
    run.add_argument("--backend", choices=BACKENDS, default="process",
                     help="what runs the servers: local processes (default) or Docker containers")
    run.add_argument("--dry-run", action="store_true",
                     help="check every parameter and option and print the plan (systems, load, fault schedule, "
                          "params); start nothing")
    _ledger_arg(run)
    up = sub.add_parser("up", help="start one system's stack for your own load (prints the Locust command); "
                        "Ctrl-C stops it")
    up.add_argument("--system", required=True, help="native or hatchet (or another system's name)")
    up.add_argument("--out", type=Path, default=None, help="run directory (default reports/<run-id>)")
    up.add_argument("--backend", choices=BACKENDS, default="process",
                    help="what runs the servers: local processes (default) or Docker containers")
    _ledger_arg(up)
    rep = sub.add_parser("report", help="rebuild the HTML reports from saved results.json and ledgers (runs nothing)")
    rep.add_argument("dirs", nargs="+", type=Path, metavar="DIR",
                     help="a scenario, run or reports directory, e.g. reports/latest, reports/ or an --out directory")
    return ap


def _ledger_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ledger", default="sqlite", metavar="BACKEND",
                        help=f"where the ledger lives: {LEDGER_OPTIONS} (default sqlite; a fresh file, schema per "
                             "scenario and system, copied to <system>/ledger.db when the run ends)")
    parser.add_argument("--processes", type=int, default=0, metavar="N",
                        help="Locust worker processes sending the measured load (0, the default: one process); "
                             "with --hosts each runs on a host of its own when there are enough")
    parser.add_argument("--hosts", type=int, default=0, metavar="N",
                        help="place each system's processes on N network hosts (namespaces joined by a bridge the run "
                             "creates; needs root): link-down faults between hosts become network partitions; "
                             "0 (default): one machine")


def check_hosts(count: int, processes: int, runs: list[tuple[Scenario, list[SystemSpec]]], external: bool) -> None:
    """Refuse a --hosts or --processes value this machine or these systems cannot have, before anything starts."""
    if processes < 0 or processes > 64:
        raise UsageError(f"--processes {processes}: expected 0 (one Locust process) to 64 worker processes")
    if not count:
        return
    hosts.check_available()
    for _, specs in runs:
        for spec in specs:
            units = stack_units(spec, "hatchet" in spec.services and not external, processes)
            hosts.check_placement(count, units, spec.name)


def _cmd_list() -> int:
    scenarios = discover()
    print("scenarios:")
    for s in scenarios.values():
        tier = "" if s.tier == "default" else f" [{s.tier}]"
        own = f" [systems: {','.join(s.systems)}]" if s.systems is not None else ""
        print(f"  {s.name:<18}{tier}{own} {s.fault}")
    print(f"systems (`all`: {', '.join(COMPARED)}; `both`: {', '.join(SELECTIONS['both'])}):")
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


def select_runs(scenario_names: list[str], system_arg: str, known: dict[str, Scenario],
                systems: dict[str, SystemSpec]) -> list[tuple[Scenario, list[SystemSpec]]]:
    """Each scenario to run with its systems.

    Scenario ``all`` is every default-tier scenario that does not name its own systems; system ``all``
    is the compared systems (native, Hatchet, Celery), ``both`` native and Hatchet; a scenario naming its
    systems (calibration) runs against those whatever ``--system`` says.
    """
    # A calibration scenario in `all` would add its system to the comparison's report: it runs by name.
    everything = [n for n in known if known[n].tier == "default" and known[n].systems is None]
    names = everything if scenario_names == ["all"] else scenario_names
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown scenario {unknown[0]!r} (known: {', '.join(known)})")
    wanted = list(SELECTIONS.get(system_arg) or [s.strip() for s in system_arg.split(",") if s.strip()])
    bad = [s for s in wanted if s not in systems]
    if bad or not wanted:
        raise UsageError(f"--system {system_arg!r}: expected all, both or names among {', '.join(systems)}")
    runs = []
    for name in names:
        chosen = known[name].systems_for(wanted)
        missing = [s for s in chosen if s not in systems]
        if missing:
            raise UsageError(f"scenario {name!r} runs against {missing[0]!r}, which has no apps/*/system.toml")
        runs.append((known[name], [systems[s] for s in chosen]))
    return runs


def _cmd_run(args: argparse.Namespace) -> int:
    runs = select_runs(args.scenarios, args.system, discover(), find_systems())
    overrides: dict[str, str] = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--param {item!r}: expected NAME=VALUE")
        overrides[key] = value
    if args.seed is not None:
        overrides["seed"] = str(args.seed)
    plans = [(scenario, specs, scenario.params(overrides)) for scenario, specs in runs]  # validates overrides first
    engine = select_engine(args.engine, os.environ) if any("hatchet" in s.services for _, ss in runs for s in ss) \
        else None
    check_option(args.ledger)  # an unreachable server is bad input: refused before anything starts
    check_hosts(args.hosts, args.processes, runs, engine is not None)
    if args.dry_run:
        print("dry run: nothing is started", *(plan.describe(*p) for p in plans), sep="\n", flush=True)
        return 0
    out = _writable_dir(args.out) if args.out else None
    _stop_on_sigterm()
    with Session(root=out, engine=engine, ledger=args.ledger, hosts=args.hosts, load_processes=args.processes,
                 backend=args.backend) as session:
        for scenario, specs, params in plans:
            target = out if out and len(plans) == 1 else None
            doc = session.run(scenario, specs, params, out_dir=target)
            print(report.text_table(doc), flush=True)
            print(f"results: {(target or session.root / scenario.name) / 'results.json'}", flush=True)
    print(f"report: {session.root / 'index.html'}", flush=True)
    return 0


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
    systems = find_systems()
    if args.system not in systems:
        raise UsageError(f"--system {args.system!r}: expected one of {', '.join(systems)}")
    spec, params = systems[args.system], Params()
    check_option(args.ledger)
    check_hosts(args.hosts, args.processes, [(Scenario(name="up", fault="", claim=""), [spec])], False)
    out = _writable_dir(args.out) if args.out else None
    _stop_on_sigterm()
    with Session(root=out, ledger=args.ledger, hosts=args.hosts, backend=args.backend) as session:
        run_dir = session.root / spec.name
        ledger = session.ledgers.create(run_dir, f"{session.run_id}_up_{spec.name}")
        ledger.set_meta("system", spec.name)
        stack = Stack(spec, run_dir, ledger, session.infra, params.task_config(), session.run_id, session.progress,
                      grace_s=params.grace_s)
        try:
            stack.up()
            print(f"{spec.name} is up; Ctrl-C stops every process\n"
                  f"  API     {stack.api_url}\n"
                  f"  ledger  {ledger.url}\n"
                  f"  logs    {run_dir / 'logs'}\n"
                  f"  locust  {_locust_command(stack.api_url, ledger.url, spec.name)}\n"
                  f"  (headless: add --headless -u 10 -r 10 -t 30s; open loop: prefix {ENV_SHAPE}=open, add "
                  f"--rate 50 --duration 30; see harness/loadgen/locustfile.py)", flush=True)
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping", flush=True)
        finally:
            try:
                stack.down()
            finally:
                ledger.save()
    print(f"{spec.name} stopped; its history is in {ledger.path}", flush=True)
    return 0


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through every finally: stacks and servers stop


def _stop_on_sigterm() -> None:
    """From here on SIGTERM unwinds like Ctrl-C (set only by commands that start processes)."""
    signal.signal(signal.SIGTERM, _terminate)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``harness`` console script and ``python -m harness``."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return _cmd_list()
        if args.command == "report":
            return _cmd_report(args)
        if args.command == "up":
            return _cmd_up(args)
        return _cmd_run(args)
    except (UsageError, ParamError, SpecError, EngineUnusable, ServerMissing, LedgerOptionError,
            hosts.HostsUnavailable, BackendUnavailable) as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except ToolMissing as exc:
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
