"""System specs: what a system under test is made of, read from ``apps/<name>/system.toml``.

A spec lists the harness services the system needs (``hatchet``: Postgres and the engine), the
servers it brings itself (``[[server]]``, e.g. a Redis broker: started, health-checked and stopped
by the harness with each run), its processes with their commands, roles and health checks, and
the links each process reaches a service or server through (a Toxiproxy proxy when a fault may
target it, so network faults can hit it). Plugging in another system (Celery, RQ, ...) means
writing one such file and an app on the HTTP contract. ``[variants.NAME]`` tables declare the
same system with other settings (``params``, ``env``), runnable as ``<system>-<NAME>``: the naive
default beside the recommended configuration.

Placeholders in commands, environment values and health checks: ``{python}`` (this interpreter),
``{name}`` (the instance's name, ``worker-2``), ``{host}`` (the address it binds: 127.0.0.1, or its
host's when the run has several), ``{port}`` (a free port picked for that process at run time),
``{grace_s}`` (graceful-shutdown seconds), ``{state_dir}`` (servers: a private data directory kept
across restarts within a run), and ``{<server>}`` (the ``host:port`` a process reaches that server
at, through its link).
"""

from __future__ import annotations

import ast
import operator
import re
import shutil
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.procs import Health

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The checkout holding harness/, apps/ and scenarios/."""
APPS_DIR = PROJECT_ROOT / "apps"
"""Where system specs are found."""
COMPARED = ("native", "hatchet", "celery")
"""The systems the project compares: what ``all`` (the default selection) means. Any other system
(``calibration``, a variant such as ``hatchet-naive``, a user's own) runs when named, or by a scenario
that names it."""
SELECTIONS = {"all": COMPARED, "both": ("native", "hatchet")}
"""Names of system selections: ``all`` the compared systems; ``both`` native and Hatchet (earlier runs' default)."""


class SpecError(ValueError):
    """A system.toml is malformed."""


@dataclass(frozen=True)
class ProcessTemplate:
    """One kind of process of a system; ``count`` instances are started."""

    name: str
    """Base name; instances are ``name`` or ``name-1..N``."""
    command: tuple[str, ...]
    """Command line with placeholders."""
    roles: tuple[str, ...]
    """``api``, ``worker``, ... (fault targets are resolved by role or by name)."""
    health: dict[str, str] = field(default_factory=dict)
    """``{http = URL}``, ``{tcp = PORT}`` or ``{log = REGEX}``."""
    links: tuple[str, ...] = ()
    """Services this process reaches through Toxiproxy (``engine``, ``downstream``)."""
    count: int = 1
    """How many instances."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment."""

    def instance_names(self) -> list[str]:
        """Names of the instances: ``api`` or ``worker-1``, ``worker-2``."""
        return [self.name] if self.count == 1 else [f"{self.name}-{i}" for i in range(1, self.count + 1)]


@dataclass(frozen=True)
class ServerTemplate:
    """A server the system brings itself (a broker, a cache): one process per run, reached through links."""

    name: str
    """Its name: the service processes list in ``links`` (``broker``), so links are ``<process>->broker``."""
    command: tuple[str, ...]
    """Command line with placeholders (``{port}``, ``{state_dir}``)."""
    roles: tuple[str, ...]
    """Fault targets by role (``broker``)."""
    health: dict[str, str] = field(default_factory=dict)
    """Readiness check, as for processes (``{tcp = "{port}"}``)."""
    requires: tuple[str, ...] = ()
    """Executables that must be on PATH (set-up installs them); a clear error names the missing one."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment."""

    def missing(self) -> list[str]:
        """Required executables not found on PATH."""
        return [exe for exe in self.requires if shutil.which(exe) is None]


@dataclass(frozen=True)
class Variant:
    """The same system with other settings, run as ``<system>-<name>``."""

    name: str
    """Suffix of the variant's system name."""
    description: str
    """One line: what differs and why it is worth measuring."""
    params: dict[str, Any] = field(default_factory=dict)
    """Scenario parameters it overrides for its runs (e.g. ``trigger_threads = 0``)."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment added to every process of the system."""
    server_commands: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Servers whose command line it replaces (e.g. a broker without persistence), by server name."""


@dataclass(frozen=True)
class SystemSpec:
    """A system under test as the harness sees it."""

    name: str
    """Short name used on the command line and in results."""
    description: str
    """One line for reports."""
    services: tuple[str, ...]
    """Harness services it needs besides the downstream (``hatchet``)."""
    processes: tuple[ProcessTemplate, ...]
    """Its processes."""
    drain_quiet_s: float | str
    """The drain ends early once the effect log has been quiet this long with tasks missing: seconds, or an
    expression over the scenario's parameters (``"execution_timeout_s + 25"``), see :meth:`drain_quiet`."""
    path: Path
    """The system.toml it came from."""
    servers: tuple[ServerTemplate, ...] = ()
    """Servers it brings itself (started before its processes, with each run)."""
    variants: tuple[Variant, ...] = ()
    """Other configurations of the same system (``<name>-<variant>``)."""
    params: dict[str, Any] = field(default_factory=dict)
    """Scenario parameters this (variant) system always runs with."""
    base: str = ""
    """The system a variant derives from (empty for a base system)."""
    drain_why: str = ""
    """Why the drain's quiet time is what it is (the system's redelivery settings), shown on the report."""

    def drain_quiet(self, params: Mapping[str, Any]) -> float:
        """The drain's quiet time for a run with these parameters (``Params`` as a dict)."""
        return _arith(self.drain_quiet_s, params)

    @classmethod
    def load(cls, path: Path) -> SystemSpec:
        """Parse and validate a system.toml."""
        try:
            raw: dict[str, Any] = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SpecError(f"{path}: {exc}") from exc
        try:
            procs = tuple(
                ProcessTemplate(
                    name=p["name"], command=_strings(p, "command"), roles=_strings(p, "roles"),
                    health=dict(p.get("health", {})), links=_strings(p, "links"),
                    count=_positive(p.get("count", 1)), env=dict(p.get("env", {})),
                )
                for p in raw["process"]
            )
            servers = tuple(
                ServerTemplate(
                    name=_name(srv["name"], "server"), command=_strings(srv, "command"),
                    roles=_strings(srv, "roles"), health=_table(srv, "health"), requires=_strings(srv, "requires"),
                    env=_table(srv, "env"),
                )
                for srv in _list(raw, "server")
            )
            variants = tuple(
                Variant(name=_name(key, "variant"), description=str(v.get("description", "")),
                        params=_table(v, "params", str_values=False), env=_table(v, "env"),
                        server_commands={k: _strings(c, "command") for k, c in
                                         _table(v, "servers", str_values=False).items()})
                for key, v in _table(raw, "variants", str_values=False).items()
            )
            drain = _table(raw, "drain", str_values=False)
            spec = cls(
                name=_name(raw["name"], "system"), description=raw.get("description", ""),
                services=tuple(raw.get("services", ())), processes=procs,
                drain_quiet_s=_quiet(drain.get("quiet_s", 10)), path=path, servers=servers,
                variants=variants, drain_why=str(drain.get("why", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SpecError(f"{path}: missing or bad field {exc}") from exc
        if not any("api" in p.roles for p in procs):
            raise SpecError(f"{path}: no process has the api role")
        names = [n for p in procs for n in p.instance_names()] + [srv.name for srv in servers]
        if dupe := next((n for n in names if names.count(n) > 1), None):
            raise SpecError(f"{path}: two processes or servers are named {dupe!r}")
        if clash := next((srv.name for srv in servers if srv.name in RESERVED_SERVICES), None):
            raise SpecError(f"{path}: server {clash!r}: the harness provides a service of that name")
        known = {srv.name for srv in servers} | set(RESERVED_SERVICES)
        if bad := next((f"{p.name} -> {svc}" for p in procs for svc in p.links if svc not in known), None):
            raise SpecError(f"{path}: link {bad!r}: no such service or server (known: {', '.join(sorted(known))})")
        if bad := next((f"{v.name}: {n}" for v in variants for n in v.server_commands
                        if n not in {srv.name for srv in servers}), None):
            raise SpecError(f"{path}: variant {bad!r}: no such server")
        return spec

    def variant(self, name: str) -> SystemSpec:
        """This system run as its variant ``name``: its params and environment added."""
        v = next(v for v in self.variants if v.name == name)
        procs = tuple(replace(p, env={**p.env, **v.env}) for p in self.processes)
        servers = tuple(replace(srv, command=v.server_commands.get(srv.name, srv.command)) for srv in self.servers)
        return replace(self, name=f"{self.name}-{v.name}", description=f"{self.description}; {v.description}",
                       processes=procs, servers=servers, variants=(), params={**self.params, **v.params},
                       base=self.name)

    def has_role(self, role: str) -> bool:
        """True when some process of the system itself plays role."""
        return any(role in p.roles for p in self.processes)


def _strings(table: dict[str, Any], key: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"'{key}' must be a list of strings, got {value!r}")
    if key == "command" and not value:
        raise KeyError("command")
    return tuple(value)


RESERVED_SERVICES = ("engine", "downstream")
"""Services the harness provides to links (``engine`` needs ``services = ["hatchet"]``)."""


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", value):
        raise ValueError(f"{what} name {value!r} must be lower-case letters, digits and _ (starting with a letter)")
    return value


def _list(table: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"'{key}' must be an array of tables ([[{key}]]), got {value!r}")
    return value


def _table(table: dict[str, Any], key: str, str_values: bool = True) -> dict[str, Any]:
    value = table.get(key, {})
    if not isinstance(value, dict) or (str_values and not all(isinstance(v, str) for v in value.values())):
        raise ValueError(f"'{key}' must be a table{' of strings' if str_values else ''}, got {value!r}")
    return dict(value)


_ARITH_OPS: dict[type[ast.AST], Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _arith(expr: float | str, names: Mapping[str, Any]) -> float:
    """Value of a number, or of an arithmetic expression (+ - * /, max, min) over names."""
    if not isinstance(expr, str):
        return float(expr)

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.Name) and isinstance(names.get(node.id), int | float):
            return float(names[node.id])
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITH_OPS:
            return _ARITH_OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("max", "min") \
                and node.args and not node.keywords:
            return float((max if node.func.id == "max" else min)(ev(a) for a in node.args))
        raise ValueError(f"unsupported in {expr!r}: {ast.unparse(node)}")

    return ev(ast.parse(expr, mode="eval").body)


def _quiet(value: Any) -> float | str:
    """drain.quiet_s: a number, or an expression checked against the scenario parameters' names."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"'quiet_s' must be seconds or an expression, got {value!r}")
    if isinstance(value, str):
        from harness.scenario import Params  # here: scenario imports the load plan, which imports spec

        _arith(value, {f: 1.0 for f in Params.__dataclass_fields__})  # fails now, not in the middle of a run
    return value


def _positive(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"'count' must be a positive integer, got {value!r}")
    return value


def health_of(health: dict[str, str], subst: dict[str, str]) -> Health:
    """A health check (a ``health`` table of system.toml) with its placeholders filled."""
    h = {k: v.format(**subst) for k, v in health.items()}
    tcp = (subst.get("host", "127.0.0.1"), int(h["tcp"])) if "tcp" in h else None
    return Health(http=h.get("http"), tcp=tcp, log=h.get("log"))


def find_systems(apps_dir: Path = APPS_DIR) -> dict[str, SystemSpec]:
    """Every system with an ``apps/<name>/system.toml`` and every variant of one, by name, native first."""
    specs = [SystemSpec.load(p) for p in sorted(apps_dir.glob("*/system.toml"))]
    specs += [s.variant(v.name) for s in specs for v in s.variants]
    # The baseline system first, then each system followed by its variants: tables read "native vs the others".
    specs.sort(key=lambda s: (s.name != "native", s.base or s.name, s.base != ""))
    return {s.name: s for s in specs}
