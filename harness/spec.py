"""System specs: what a system under test is made of, read from ``apps/<name>/system.toml``.

A spec lists the harness services the system needs (``hatchet``: Postgres and the engine), its
processes with their commands, roles and health checks, and the links each process reaches a
service through (each link is a Toxiproxy proxy, so network faults can hit it). Plugging in
another system (Celery, RQ, ...) means writing one such file and an app on the HTTP contract.

Placeholders in commands and health URLs: ``{python}`` (this interpreter), ``{port}`` (a free
port picked for that process at run time), ``{grace_s}`` (graceful-shutdown seconds).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.procs import Health

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The checkout holding harness/, apps/ and scenarios/."""
APPS_DIR = PROJECT_ROOT / "apps"
"""Where system specs are found."""
COMPARED = ("native", "hatchet")
"""The systems the project compares: what ``both`` (the default selection) means. Any other system
(``calibration``, a user's Celery app) runs when named, or by a scenario that names it."""


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
    drain_quiet_s: float
    """The drain ends early once the effect log has been quiet this long with tasks missing."""
    path: Path
    """The system.toml it came from."""

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
            spec = cls(
                name=raw["name"], description=raw.get("description", ""),
                services=tuple(raw.get("services", ())), processes=procs,
                drain_quiet_s=float(raw.get("drain", {}).get("quiet_s", 10)), path=path,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SpecError(f"{path}: missing or bad field {exc}") from exc
        if not any("api" in p.roles for p in procs):
            raise SpecError(f"{path}: no process has the api role")
        return spec

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


def _positive(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"'count' must be a positive integer, got {value!r}")
    return value


def health_of(template: ProcessTemplate, subst: dict[str, str]) -> Health:
    """The health check of one instance, placeholders filled."""
    h = {k: v.format(**subst) for k, v in template.health.items()}
    return Health(http=h.get("http"), tcp=("127.0.0.1", int(h["tcp"])) if "tcp" in h else None, log=h.get("log"))


def find_systems(apps_dir: Path = APPS_DIR) -> dict[str, SystemSpec]:
    """Every system with an ``apps/<name>/system.toml``, by name, native first."""
    specs = [SystemSpec.load(p) for p in sorted(apps_dir.glob("*/system.toml"))]
    # The baseline system first, so every table reads "native vs the others".
    specs.sort(key=lambda s: (s.name != "native", s.name))
    return {s.name: s for s in specs}
