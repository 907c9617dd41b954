"""The run options, defined once for the command line and the pytest plugin alike.

:data:`OPTIONS` holds each option's flags, default and help; :func:`add_to_argparse` and
:func:`add_to_pytest` build both front doors from it. :func:`resolve` checks the values the same
way for both (every bad value or combination: one :class:`UsageError` line, before anything
starts) and returns a :class:`RunRequest` the session is made from.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.model.params import ParamError, show
from harness.model.scenario import Scenario
from harness.model.spec import SystemSpec, selections

BACKENDS = ("process", "docker")
"""What runs the servers: local processes (the default) or Docker containers."""
ENGINES = ("built", "external")
"""Where a system's engine comes from: the harness's own (default), or the user's (``--engine external``)."""
LEDGERS = "sqlite, pg (the harness's own PostgreSQL) or postgresql://USER@HOST:PORT/DB"
"""What ``--ledger`` accepts."""


class UsageError(Exception):
    """Bad input: reported in one line, exit status 2 (pytest: its usage error)."""


@dataclass(frozen=True)
class Option:
    """One run option as both front doors show it."""

    flags: tuple[str, ...]
    """Its flags, the first being its name (``--system``, with ``--systems`` as an alias)."""
    dest: str
    """The attribute it is stored in."""
    help: str
    """One line of help, the same in both doors."""
    default: Any = None
    """Its default (None: not given)."""
    type: Callable[[str], Any] | None = None
    """Converts the text given (argparse and pytest both call it)."""
    choices: tuple[str, ...] | None = None
    """The values it takes, when a fixed set."""
    action: str | None = None
    """``append`` (repeatable), ``store_true``/``store_false``, or None."""
    metavar: str | None = None
    """Placeholder in the help."""

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of argparse's and pytest's ``add_argument``/``addoption`` (they take the same)."""
        out: dict[str, Any] = {"dest": self.dest, "help": self.help, "default": self.default}
        for key in ("type", "choices", "action", "metavar"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.action == "append":
            out["default"] = []
        return out


OPTIONS: tuple[Option, ...] = (
    Option(("--system", "--systems"), "system", "a selection (" + "; ".join(
           f"{name}: {','.join(systems)}" for name, systems in selections().items()) + "; default all), or a "
           "comma-separated list of system names; a scenario naming its own systems (calibration) ignores it",
           default="all", metavar="SYSTEMS"),
    Option(("--seed",), "seed", "seed of schedules and job failures (default: the scenario's, 1)", type=int),
    Option(("--param",), "param", "override a scenario parameter, e.g. --param rate=50 (repeatable; see `harness "
           "list`)", action="append", metavar="NAME=VALUE"),
    Option(("--engine",), "engine", "built (the harness builds and starts its own engine; the default) or external: "
           "your own engine, named by its SDK's environment variables (README: Your own engine); it receives the "
           "scenario's real load", choices=ENGINES),
    Option(("--backend",), "backend", "what runs the servers: local processes (default) or Docker containers",
           default="process", choices=BACKENDS),
    Option(("--dockerd",), "dockerd", "with --backend docker: `auto` starts a private dockerd (root) when no engine "
           "is reachable", default="never", choices=("never", "auto")),
    Option(("--ledger",), "ledger", f"where the ledgers live: {LEDGERS} (default sqlite; a fresh file or schema per "
           "scenario and system, copied to <system>/ledger.db when the run ends)", default="sqlite",
           metavar="BACKEND"),
    Option(("--processes",), "processes", "Locust worker processes sending the measured load (0, the default: one "
           "process); with --hosts each runs on a host of its own when there are enough", default=0, type=int,
           metavar="N"),
    Option(("--hosts",), "hosts", "place each system's processes on N network hosts (namespaces joined by a bridge "
           "the run creates; needs root): link-down faults between hosts become network partitions; 0 (default): "
           "one machine", default=0, type=int, metavar="N"),
    Option(("--parallel",), "parallel", "run the systems of a scenario side by side where its verdict rests on "
           "counts (default for pytest; `harness run` is serial unless given, for publication figures)",
           action="store_true"),
    Option(("--serial",), "serial", "run the systems of every scenario one after another (`harness run`'s default)",
           action="store_true"),
    Option(("--dry-run",), "dry_run", "check every parameter and option and print the plan (systems, load, fault "
           "schedule, params); start nothing", action="store_true"),
)
"""Every run option of ``harness run`` and ``pytest scenarios/``."""


def add_to_argparse(parser: argparse.ArgumentParser, only: Iterable[str] | None = None) -> None:
    """Add the options (those named by dest in ``only``, else all) to an argparse parser."""
    wanted = set(only) if only is not None else None
    for opt in OPTIONS:
        if wanted is None or opt.dest in wanted:
            parser.add_argument(*opt.flags, **opt.kwargs())


def add_to_pytest(group: Any) -> None:
    """Add every option to a pytest option group (pytest's ``addoption`` takes argparse's arguments)."""
    for opt in OPTIONS:
        group.addoption(*opt.flags, **opt.kwargs())


@dataclass(frozen=True)
class RunRequest:
    """What the options ask for, checked: the same for both doors."""

    systems: tuple[str, ...]
    """The systems selected (before a scenario's own or its variants)."""
    overrides: dict[str, str] = field(default_factory=dict)
    """Parameter overrides by name (``--param``, ``--seed``)."""
    server_options: dict[str, str] = field(default_factory=dict)
    """Options handed to server plug-ins (``engine``, ``backend``)."""
    backend: str = "process"
    """What runs the servers."""
    dockerd: str = "never"
    """Whether to start a private dockerd."""
    ledger: str = "sqlite"
    """Where the ledgers live."""
    processes: int = 0
    """Locust worker processes."""
    hosts: int = 0
    """Network hosts of the run."""
    parallel: bool | None = None
    """Systems side by side (True), one after another (False), or the door's default (None)."""
    dry_run: bool = False
    """Print the plan, start nothing."""


def _overrides(params: Sequence[str], seed: int | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--param {item!r}: expected NAME=VALUE")
        name = key.strip().replace("-", "_")
        if name in out and out[name] != value:
            raise UsageError(f"--param {show(key)}: given twice with different values ({show(out[name])} and "
                             f"{show(value)})")
        out[name] = value
    if seed is not None:
        if "seed" in out and out["seed"] != str(seed):
            raise UsageError(f"--seed {seed} and --param seed={show(out['seed'])}: two different seeds")
        out["seed"] = str(seed)
    return out


def _systems(arg: str, known: Mapping[str, SystemSpec]) -> tuple[str, ...]:
    named = selections()
    wanted = list(named.get(arg) or [s.strip() for s in arg.split(",") if s.strip()])
    bad = [s for s in wanted if s not in known]
    if bad or not wanted:
        raise UsageError(f"--system {arg!r}: expected {', '.join(named)} or names among {', '.join(known)}")
    if twice := next((s for s in wanted if wanted.count(s) > 1), None):
        raise UsageError(f"--system {arg!r}: {twice} is named twice")
    return tuple(wanted)


def resolve(values: Mapping[str, Any], known: Mapping[str, SystemSpec]) -> RunRequest:
    """Check the options' values (argparse's namespace or pytest's options as a mapping by dest)."""
    if values.get("parallel") and values.get("serial"):
        raise UsageError("--parallel and --serial: choose one")
    processes, hosts = int(values.get("processes") or 0), int(values.get("hosts") or 0)
    if processes < 0 or processes > 64:
        raise UsageError(f"--processes {processes}: expected 0 (one Locust process) to 64 worker processes")
    if hosts < 0:
        raise UsageError(f"--hosts {hosts}: expected a number of hosts of at least 1")
    backend = values.get("backend") or "process"
    if hosts and backend != "process":
        raise UsageError(f"--hosts places processes on network hosts of this machine: it needs --backend process, "
                         f"not {backend}")
    if values.get("dockerd", "never") == "auto" and backend != "docker":
        raise UsageError("--dockerd auto starts a Docker engine for --backend docker: give --backend docker too")
    parallel = True if values.get("parallel") else False if values.get("serial") else None
    return RunRequest(
        systems=_systems(str(values.get("system") or "all"), known),
        overrides=_overrides(values.get("param") or [], values.get("seed")),
        # What server plug-ins are told: which engine (``--engine``) and what runs their programs (``--backend``).
        server_options={"backend": backend, **({"engine": values["engine"]} if values.get("engine") else {})},
        backend=backend, dockerd=values.get("dockerd") or "never", ledger=values.get("ledger") or "sqlite",
        processes=processes, hosts=hosts, parallel=parallel, dry_run=bool(values.get("dry_run")),
    )


def scenario_params(scenario: Scenario, overrides: Mapping[str, Any]) -> Any:
    """The scenario's parameters with the overrides (UsageError: one line)."""
    try:
        return scenario.params(overrides)
    except ParamError as exc:
        raise UsageError(str(exc)) from None
