"""System specs: what a system under test is made of, read from ``apps/<name>/system.toml``.

A spec lists the servers a system needs (``[[server]]``: a broker, an engine and its database),
its processes with their commands, roles and health checks, and the links each process reaches
a server through (a Toxiproxy proxy when a fault may target it, so network faults can hit it).
A server is either a command line (Celery's Redis, Hatchet's RabbitMQ) or, when it needs more (a
database to migrate, a token to mint), a plug-in class in ``apps/<system>/`` named by ``plugin``
(:mod:`harness.servers.base`). ``[variants.NAME]`` tables declare the same system with other
settings (``params``, ``env``, server changes), runnable as ``<system>-<NAME>``: the naive
default beside the recommended configuration.

Placeholders in commands, environment values and health checks: ``{python}`` (this interpreter),
``{name}`` (the instance's name, ``worker-2``), ``{host}`` (the address it binds: 127.0.0.1, or its
host's when the run has several), ``{port}`` (a free port picked for that process at run time),
``{grace_s}`` (graceful-shutdown seconds), ``{here}`` (the directory of the system.toml, for a script
beside it), ``{state_dir}`` (servers: a private data directory kept across restarts), ``{ports.NAME}``
(servers: more free ports, e.g. ``{ports.dist}``), and
``{<server>}`` (the ``host:port`` a process reaches that server at, through its link).

This module is data: it imports nothing of the runtime.
"""

from __future__ import annotations

import ast
import functools
import operator
import re
import shutil
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from harness.model.fault import PROCESS_ACTIONS, Fault
from harness.model.links import match_links
from harness.model.params import Params
from harness.model.paths import APPS_DIR

SELECTIONS_FILE = "selections.toml"
"""In the apps directory: named selections of systems (``all``, the default: the systems the project compares)."""
RESERVED_SERVICES = ("downstream",)
"""Services the harness itself provides to links (the downstream HTTP service every job may call)."""


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
    """Servers this process reaches (``engine``, ``broker``, ``downstream``), each through a link."""
    count: int = 1
    """How many instances."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment."""

    def instance_names(self) -> list[str]:
        """Names of the instances: ``api`` or ``worker-1``, ``worker-2``."""
        return [self.name] if self.count == 1 else [f"{self.name}-{i}" for i in range(1, self.count + 1)]


@dataclass(frozen=True)
class ServerTemplate:
    """A server the system needs beside its own processes: a command line, or a plug-in class."""

    name: str
    """Its name: processes list it in ``links`` (``broker``), so links are ``<process>->broker``."""
    roles: tuple[str, ...]
    """Fault targets by role (``broker``, ``db``)."""
    command: tuple[str, ...] = ()
    """Command line with placeholders (``{port}``, ``{state_dir}``); empty for a plug-in."""
    plugin: str = ""
    """``module:factory`` of a plug-in (:class:`harness.servers.base.Server`), e.g. ``apps.hatchet.engine:server``."""
    health: dict[str, str] = field(default_factory=dict)
    """Readiness check, as for processes (``{tcp = "{port}"}``)."""
    requires: tuple[str, ...] = ()
    """Executables that must be on PATH (set-up installs them); a clear error names the missing one."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment of a command server."""
    links: tuple[str, ...] = ()
    """Links this server makes to other servers of the system: ``postgres`` (``<name>->postgres``), or
    ``engine-api->mq`` for one of its processes; a fault may cut them like any link."""
    shared: bool = False
    """One instance for every system of the session that declares the same server (started on first need,
    kept across scenarios); otherwise one per run."""
    processes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Its processes (name -> roles), fault targets; default one process named like the server."""
    settings: dict[str, str] = field(default_factory=dict)
    """Settings handed to a plug-in (the engine's environment, e.g. ``SERVER_MSGQUEUE_KIND``), shown on the report."""
    sources: dict[str, str] = field(default_factory=dict)
    """Where each setting comes from (a setting, or a flag of its command, -> a doc page or a default in the
    system's source); every setting needs one. Shown on the report beside its value."""
    ports: tuple[str, ...] = ()
    """Names of extra free ports a command server needs (``{ports.NAME}``), besides ``{port}``."""
    image: dict[str, Any] = field(default_factory=dict)
    """What the Docker backend runs it in (:mod:`harness.backends.images`); keys: ``official``, the official image
    (``{program}``: the program's name, one image per program); ``debian``, Debian packages providing its programs
    (the local stand-in is the base image holding every system's); ``tools``, a tool ``make tools`` builds
    (``.tools/<tool>-<version>/bin``: its programs, in the generic local image); ``path``, where a program is in
    the image (``/hatchet/{program}``; required with ``tools``; default: the command as written, a name on the
    image's PATH or a script of the read-only checkout); ``programs``, other programs it runs (one-shot commands)
    besides its command's."""
    here: str = ""
    """The directory of its system.toml (``{here}`` in its command: scripts and configuration beside it)."""

    def stated(self) -> dict[str, str]:
        """Its settings as the report states them: ``value (source)``, and each sourced flag of its command."""
        out = {k: f"{v} ({self.sources.get(k, 'no source given')})" for k, v in self.settings.items()}
        return {**out, **{k: src for k, src in self.sources.items() if k not in self.settings}}

    def missing(self) -> list[str]:
        """Required executables not found on PATH."""
        return [exe for exe in self.requires if shutil.which(exe) is None]

    def process_roles(self) -> dict[str, tuple[str, ...]]:
        """Its processes with their roles."""
        return dict(self.processes) or {self.name: self.roles}

    def link_names(self) -> list[str]:
        """Its links by full name (``engine->postgres``)."""
        return [link if "->" in link else f"{self.name}->{link}" for link in self.links]

    def link_target(self, link: str) -> str:
        """The server a link of its leads to."""
        return link.rpartition("->")[2]

    def identity(self) -> tuple[Any, ...]:
        """What makes two declarations the same server (a shared one is started once for all of them)."""
        return tuple(_frozen(getattr(self, f.name)) for f in fields(self))


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


@dataclass(frozen=True)
class ServerChange:
    """What a variant changes in one server: its command, settings (merged) or links."""

    command: tuple[str, ...] | None = None
    """A new command line."""
    settings: dict[str, str] = field(default_factory=dict)
    """Settings added to (or replacing) the server's; an empty value removes one."""
    sources: dict[str, str] = field(default_factory=dict)
    """Sources of its settings (merged like them; an empty one removes a source, a flag the new command lacks)."""
    links: tuple[str, ...] | None = None
    """New links."""


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
    servers: dict[str, ServerChange] = field(default_factory=dict)
    """Changes to servers, by name (e.g. a broker without persistence, an engine on another queue)."""
    without: tuple[str, ...] = ()
    """Servers it does not have (e.g. no message queue when the engine queues in Postgres)."""
    color: str = ""
    """Its colour on charts and tables (``#rrggbb``); empty: the palette's."""
    durability: str = ""
    """Its own durability line, when it differs from the base system's."""


@dataclass(frozen=True)
class SystemSpec:
    """A system under test as the harness sees it."""

    name: str
    """Short name used on the command line and in results."""
    description: str
    """One line for reports."""
    processes: tuple[ProcessTemplate, ...]
    """Its processes."""
    drain_quiet_s: float | str
    """The drain ends early once the effect log has been quiet this long with tasks missing: seconds, or an
    expression over the scenario's parameters (``"execution_timeout_s + 25"``), see :meth:`drain_quiet`."""
    path: Path
    """The system.toml it came from."""
    servers: tuple[ServerTemplate, ...] = ()
    """Servers it needs (started before its processes: shared ones once per session, others with each run)."""
    variants: tuple[Variant, ...] = ()
    """Other configurations of the same system (``<name>-<variant>``)."""
    params: dict[str, Any] = field(default_factory=dict)
    """Scenario parameters this (variant) system always runs with."""
    base: str = ""
    """The system a variant derives from (empty for a base system)."""
    drain_why: str = ""
    """Why the drain's quiet time is what it is (the system's redelivery settings), shown on the report."""
    drain_attempts_s: float | str = 0
    """How many attempts of a task the system makes at most (``[drain] attempts``: a number or an expression such as
    ``"retries + 1"``): a task whose that many attempts all failed is settled (given up) and the drain stops
    waiting for it. 0: unknown, only an effect settles a task."""
    color: str = ""
    """Its colour on every chart and table (``#rrggbb``); empty: a stable palette colour keyed by name."""
    versions: dict[str, str] = field(default_factory=dict)
    """Manifest keys and the Python distributions whose versions they record (``hatchet_sdk = "hatchet-sdk"``)."""
    setup: str = ""
    """``module:function`` that ``make tools`` runs to build what the system's servers need (its engine)."""
    reason: str = ""
    """A variant's reason to exist (its description's own part), shown beside it on the report."""
    durability: str = ""
    """When its store has an accepted task on disk, in one line (capacity compares only on equal footing)."""

    def drain_quiet(self, params: Mapping[str, Any]) -> float:
        """The drain's quiet time for a run with these parameters (``Params`` as a dict)."""
        return _arith(self.drain_quiet_s, params)

    def drain_attempts(self, params: Mapping[str, Any]) -> int:
        """The most attempts a task gets in a run with these parameters (0: unknown)."""
        return int(_arith(self.drain_attempts_s, params))

    @classmethod
    def load(cls, path: Path) -> SystemSpec:
        """Parse and validate a system.toml."""
        try:
            raw: dict[str, Any] = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SpecError(f"{path}: {exc}") from exc
        try:
            spec = _parse(raw, path)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SpecError(f"{path}: missing or bad field {exc}") from exc
        _validate(spec, path)
        return spec

    def variant(self, name: str) -> SystemSpec:
        """This system run as its variant ``name``: its params, environment and server changes applied."""
        v = next(v for v in self.variants if v.name == name)
        procs = tuple(replace(p, env={**p.env, **v.env}, links=tuple(s for s in p.links if s not in v.without))
                      for p in self.processes)
        servers = []
        for srv in self.servers:
            if srv.name in v.without:
                continue
            change = v.servers.get(srv.name, ServerChange())
            servers.append(replace(srv, command=srv.command if change.command is None else change.command,
                                   settings={k: v for k, v in {**srv.settings, **change.settings}.items() if v},
                                   sources={k: v for k, v in {**srv.sources, **change.sources}.items()
                                            if v and (k not in change.settings or change.settings[k])},
                                   links=tuple(link for link in (srv.links if change.links is None else change.links)
                                               if srv.link_target(link) not in v.without)))
        return replace(self, name=f"{self.name}-{v.name}", description=f"{self.description}; {v.description}",
                       processes=procs, servers=tuple(servers), variants=(), params={**self.params, **v.params},
                       base=self.name, color=v.color, reason=v.description,
                       durability=v.durability or self.durability)

    def has_role(self, role: str) -> bool:
        """True when some process of the system itself plays role."""
        return any(role in p.roles for p in self.processes)

    def server(self, name: str) -> ServerTemplate:
        """Its server called name."""
        return next(srv for srv in self.servers if srv.name == name)

    def planned_processes(self) -> dict[str, tuple[str, ...]]:
        """Every process a run will have (own, servers', downstream), with roles, before it starts."""
        procs: dict[str, tuple[str, ...]] = {"downstream": ("downstream",)}
        for srv in self.servers:
            procs.update(srv.process_roles())
        for t in self.processes:
            procs.update({name: t.roles for name in t.instance_names()})
        return procs

    def planned_links(self) -> list[str]:
        """Every link a run will have (processes to servers, servers to servers), before it starts."""
        links = [f"{name}->{svc}" for t in self.processes for name in t.instance_names() for svc in t.links]
        return links + [name for srv in self.servers for name in srv.link_names()]

    def units(self, load_processes: int = 0, started: Callable[[ServerTemplate], bool] = lambda _: True
              ) -> list[list[str]]:
        """The groups of processes a run places together, in placement order (see :mod:`harness.backends.hosts`):
        the shared servers as one unit (an engine with its database and queue, as they are deployed), each other
        server, its processes (API first), the downstream service, the load generator (its master, then each
        worker process apart). ``started``: whether a server starts processes of its own here."""
        shared = [name for srv in self.servers if srv.shared and started(srv) for name in srv.process_roles()]
        units = [shared] if shared else []
        units += [list(srv.process_roles()) for srv in self.servers if not srv.shared and started(srv)]
        units += [[name] for t in self.processes for name in t.instance_names()]
        workers = [[f"locust-{i}"] for i in range(1, load_processes + 1)] if load_processes else []
        return [*units, ["downstream"], ["locust"], *workers]


def select(selector: str, processes: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Names selected by ``a|b|...``: each alternative is a process name, or else a role; no repeats."""
    out: list[str] = []
    for alt in selector.split("|"):
        named = [n for n in processes if n == alt]
        for name in named or [n for n, roles in processes.items() if alt in roles]:
            if name not in out:
                out.append(name)
    return out


def _parse(raw: dict[str, Any], path: Path) -> SystemSpec:
    if "services" in raw:
        raise ValueError("'services' is gone: declare each server as a [[server]] table (see README: Plugging in)")
    procs = tuple(
        ProcessTemplate(
            name=p["name"], command=_strings(p, "command", required=True), roles=_strings(p, "roles"),
            health=dict(p.get("health", {})), links=_strings(p, "links"),
            count=_positive(p.get("count", 1)), env=dict(p.get("env", {})),
        )
        for p in raw["process"]
    )
    servers = tuple(_server(srv, path.parent) for srv in _list(raw, "server"))
    variants = tuple(
        Variant(name=_name(key, "variant"), description=str(v.get("description", "")),
                params=_table(v, "params", str_values=False), env=_table(v, "env"),
                servers={k: ServerChange(command=_strings(c, "command") or None, settings=_table(c, "settings"),
                                         sources=_table(c, "sources"),
                                         links=_strings(c, "links") if "links" in c else None)
                         for k, c in _table(v, "servers", str_values=False).items()},
                without=_strings(v, "without"), color=_color(v.get("color", "")),
                durability=str(v.get("durability", "")))
        for key, v in _table(raw, "variants", str_values=False).items()
    )
    drain = _table(raw, "drain", str_values=False)
    return SystemSpec(
        name=_name(raw["name"], "system"), description=raw.get("description", ""), processes=procs,
        drain_quiet_s=_quiet(drain.get("quiet_s", 10)), path=path, servers=servers,
        variants=variants, drain_why=str(drain.get("why", "")), color=_color(raw.get("color", "")),
        drain_attempts_s=_quiet(drain.get("attempts", 0)), durability=str(raw.get("durability", "")),
        versions=_table(raw, "versions"), setup=str(raw.get("setup", "")),
    )


def _server(srv: dict[str, Any], here: Path) -> ServerTemplate:
    command, plugin = _strings(srv, "command"), str(srv.get("plugin", ""))
    if bool(command) == bool(plugin):
        raise ValueError(f"server {srv.get('name')!r} needs exactly one of 'command' and 'plugin'")
    if plugin and not re.fullmatch(r"[\w.]+:\w+", plugin):
        raise ValueError(f"'plugin' must be module:name, got {plugin!r}")
    shared = srv.get("shared", False)
    if not isinstance(shared, bool):
        raise ValueError(f"'shared' must be true or false, got {shared!r}")
    return ServerTemplate(
        name=_name(srv["name"], "server"), roles=_strings(srv, "roles"), command=command, plugin=plugin,
        health=_table(srv, "health"), requires=_strings(srv, "requires"), env=_table(srv, "env"),
        links=_strings(srv, "links"), shared=shared,
        processes={k: tuple(v) for k, v in _table(srv, "processes", str_values=False).items()},
        settings=_table(srv, "settings"), sources=_table(srv, "sources"), ports=_strings(srv, "ports"),
        image=_table(srv, "image", str_values=False), here=str(here),
    )


def _validate(spec: SystemSpec, path: Path) -> None:
    procs, servers = spec.processes, spec.servers
    if not any("api" in p.roles for p in procs):
        raise SpecError(f"{path}: no process has the api role")
    names = [n for p in procs for n in p.instance_names()] + [n for srv in servers for n in srv.process_roles()]
    if dupe := next((n for n in names if names.count(n) > 1), None):
        raise SpecError(f"{path}: two processes or servers are named {dupe!r}")
    if clash := next((srv.name for srv in servers if srv.name in RESERVED_SERVICES), None):
        raise SpecError(f"{path}: server {clash!r}: the harness provides a service of that name")
    known = {srv.name for srv in servers} | set(RESERVED_SERVICES)
    if bad := next((f"{p.name} -> {svc}" for p in procs for svc in p.links if svc not in known), None):
        raise SpecError(f"{path}: link {bad!r}: no such service or server (known: {', '.join(sorted(known))})")
    if bad := next((link for srv in servers for link in srv.link_names()
                    if srv.link_target(link) not in known - set(RESERVED_SERVICES)), None):
        raise SpecError(f"{path}: server link {bad!r}: no such server")
    for v in spec.variants:
        if bad := next((n for n in (*v.servers, *v.without) if n not in {srv.name for srv in servers}), None):
            raise SpecError(f"{path}: variant {v.name!r}: no server {bad!r}")
    # Every setting is stated on the report with where it comes from: one without a source is refused.
    sourced = [(srv.name, srv.settings, srv.sources) for srv in servers] + [
        (f"{name} (variant {v.name})", c.settings, {**srv.sources, **c.sources})
        for v in spec.variants for name, c in v.servers.items()
        for srv in servers if srv.name == name]
    if bad := next((f"{who}: {k}" for who, settings, sources in sourced for k, val in settings.items()
                    if val and not sources.get(k)), None):
        raise SpecError(f"{path}: setting {bad!r} has no source (add it to the server's 'sources')")


def _strings(table: dict[str, Any], key: str, required: bool = False) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"'{key}' must be a list of strings, got {value!r}")
    if required and not value:
        raise KeyError(key)
    return tuple(value)


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", value):
        raise ValueError(f"{what} name {value!r} must be lower-case letters, digits and _ (starting with a letter)")
    return value


def _color(value: Any) -> str:
    if value and not (isinstance(value, str) and re.fullmatch(r"#[0-9a-fA-F]{6}", value)):
        raise ValueError(f"'color' must be #rrggbb, got {value!r}")
    return str(value).lower()


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
    """drain.quiet_s or drain.attempts: a number, or an expression checked against the scenario parameters' names."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"'quiet_s' and 'attempts' must be a number or an expression, got {value!r}")
    if isinstance(value, str):
        _arith(value, dict.fromkeys(Params.__dataclass_fields__, 1.0))  # fails now, not in the middle of a run
    return value


def _positive(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"'count' must be a positive integer, got {value!r}")
    return value


def find_systems(apps_dir: Path = APPS_DIR) -> dict[str, SystemSpec]:
    """Every system with an ``apps/<name>/system.toml`` and every variant of one, by name, native first."""
    specs = [SystemSpec.load(p) for p in sorted(apps_dir.glob("*/system.toml"))]
    specs += [s.variant(v.name) for s in specs for v in s.variants]
    # The baseline system first, then each system followed by its variants: tables read "native vs the others".
    specs.sort(key=lambda s: (s.name != "native", s.base or s.name, s.base != ""))
    return {s.name: s for s in specs}


@functools.cache
def selections(apps_dir: Path = APPS_DIR) -> dict[str, tuple[str, ...]]:
    """The named selections of systems in ``apps/selections.toml``; ``all`` (the default) is the compared systems."""
    path = apps_dir / SELECTIONS_FILE
    raw = tomllib.loads(path.read_text())
    if not isinstance(raw.get("all"), list) or not all(
            isinstance(v, list) and v and all(isinstance(n, str) for n in v) for v in raw.values()):
        raise SpecError(f"{path}: expected `all = [...]` and other selections as non-empty lists of system names")
    return {k: tuple(v) for k, v in raw.items()}


def not_applicable(fault: Fault, spec: SystemSpec, outside: Mapping[str, str] | None = None) -> str | None:
    """Why fault has no meaning for a system (nothing it could hit), or None when it applies.

    ``outside`` names processes and links the system has but the harness does not own (an external
    engine and its database), each with the reason: a fault hitting only those is not applicable.
    """
    outside = outside or {}
    if fault.action in PROCESS_ACTIONS:
        hit = select(fault.target, spec.planned_processes())
        missing = f"{spec.name} has no {fault.target!r} process"
    else:
        hit = match_links(fault.target, spec.planned_links())
        missing = f"{spec.name} has no link {fault.target!r}"
    if not hit:
        return missing
    return outside[hit[0]] if all(name in outside for name in hit) else None
