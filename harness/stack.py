"""The stack of one run: a system's processes, its downstream service and its links.

Every process gets a port picked free at run time on 127.0.0.1 (kept across restarts), the
harness environment (ledger URL, system and process names, task settings), and one link per
service it reaches, named ``<process>-><service>``. A link that some fault of the scenario may
target (``proxy`` patterns, known before the stack starts) goes through Toxiproxy, so a fault can
hit one worker's link alone; every other link is direct, so the system is measured without a
proxy in paths no fault touches.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from apps.common.contract import ENV_DOWNSTREAM, ENV_TASK_CONFIG, TaskConfig
from harness.external import ExternalHatchet
from harness.ledger import ENV_LEDGER, ENV_PROCESS, ENV_SYSTEM, Ledger
from harness.links import Link, match_links, proxied
from harness.procs import Health, Proc, free_port, stop_all
from harness.services import DB_LINK, SERVICE_PROCESSES, Infra, Progress
from harness.spec import PROJECT_ROOT, SystemSpec, health_of


def planned_processes(spec: SystemSpec) -> dict[str, tuple[str, ...]]:
    """Every process a run of spec will have (own, downstream, shared), with roles, before it starts."""
    procs: dict[str, tuple[str, ...]] = {"downstream": ("downstream",)}
    procs.update({srv.name: srv.roles for srv in spec.servers})
    for t in spec.processes:
        procs.update({name: t.roles for name in t.instance_names()})
    for service in spec.services:
        procs.update(SERVICE_PROCESSES.get(service, {}))
    return procs


def select(selector: str, processes: dict[str, tuple[str, ...]]) -> list[str]:
    """Names selected by ``a|b|...``: each alternative is a process name, or else a role; no repeats."""
    out: list[str] = []
    for alt in selector.split("|"):
        named = [n for n in processes if n == alt]
        for name in named or [n for n, roles in processes.items() if alt in roles]:
            if name not in out:
                out.append(name)
    return out


def planned_links(spec: SystemSpec) -> list[str]:
    """Every link a run of spec will have, before it starts."""
    links = [f"{name}->{svc}" for t in spec.processes for name in t.instance_names() for svc in t.links]
    return links + ([DB_LINK] if "hatchet" in spec.services else [])


class ServerMissing(RuntimeError):
    """A system's server needs an executable that is not installed."""


class Stack:
    """All processes and links of one system's run, started in order and stopped on every path."""

    def __init__(self, spec: SystemSpec, run_dir: Path, ledger: Ledger, infra: Infra, task_config: TaskConfig,
                 run_key: str, progress: Progress, grace_s: float = 10.0,
                 link_faults: Mapping[str, set[str]] | None = None) -> None:
        self.spec = spec
        """The system."""
        self.run_dir = run_dir
        """Where logs go (``run_dir/logs``)."""
        self.ledger = ledger
        """The run's ledger."""
        self.infra = infra
        """Shared servers (Toxiproxy, Postgres, engine)."""
        self.task_config = task_config
        """Retries, timeouts and slots passed to the system."""
        self.namespace = re.sub(r"[^a-z0-9]+", "_", f"{run_key}_{spec.name}".lower()) + "_"
        """Hatchet namespace of this run (run_key: run id and scenario), so leftovers of other runs never
        reach its workers."""
        self.progress = progress
        """One-line progress callback."""
        self.grace_s = grace_s
        """Graceful-shutdown time: ``{grace_s}`` in commands, and SIGKILL after it on stop."""
        self.processes: dict[str, Proc] = {}
        """Own processes by name (downstream included), in start order."""
        self.link_faults = dict(link_faults or {})
        """Link patterns a fault of the scenario may target, with the fault actions; every other link is direct."""
        self.links: dict[str, Link] = {}
        """Toxiproxy links by name."""
        self.direct: list[str] = []
        """Links that are direct connections (no fault targets them, or a partition between hosts cuts them)."""
        self.partitionable: dict[str, tuple[str, str, int]] = {}
        """Links between two hosts that only ``link-down`` targets: name -> (process, service address, port),
        cut at the network layer by the partition nemesis."""
        self.api_url = ""
        """Base URL of the (first) api process."""
        self._ports: dict[str, int] = {}
        self._state_dirs: list[Path] = []

    def _base_env(self, process: str) -> dict[str, str]:
        return {
            ENV_LEDGER: self.ledger.url,
            ENV_SYSTEM: self.spec.name,
            ENV_PROCESS: process,
            ENV_TASK_CONFIG: self.task_config.model_dump_json(),
            "PYTHONPATH": str(PROJECT_ROOT),
            "PYTHONUNBUFFERED": "1",
        }

    def _endpoint(self, service: str) -> str:
        """Address (host:port) of what a link to service leads to."""
        if service == "engine" and "hatchet" in self.spec.services and self.infra.hatchet is not None:
            return self.infra.hatchet.address
        if service in self._ports:
            return f"{self.infra.backend.address(service)}:{self._ports[service]}"
        raise ValueError(f"{self.spec.name}: no link {service!r} here (available: {', '.join(self._ports)}; 'engine'"
                         " needs services = [\"hatchet\"])")

    def _link(self, process: str, service: str) -> str:
        """Make ``process->service``, proxied or direct; return the address the process reaches it at."""
        name, upstream = f"{process}->{service}", self._endpoint(service)
        actions = {a for pattern, acts in self.link_faults.items() if proxied(name, [pattern]) for a in acts}
        backend = self.infra.backend
        host, _, port = upstream.rpartition(":")
        if actions == {"link-down"} and host != "127.0.0.1" and backend.address(process) != host:
            self.partitionable[name] = (process, host, int(port))  # two hosts: a real partition can cut it
        if not actions or name in self.partitionable:
            self.direct.append(name)
            return upstream
        toxi = self.infra.toxiproxy
        assert toxi is not None
        link = toxi.create(name, upstream, listen_host=self.infra.backend.shared_address)
        self.links[link.name] = link
        return link.listen

    def _subst(self, name: str, port: int) -> dict[str, str]:
        return {"python": sys.executable, "name": name, "host": self.infra.backend.address(name), "port": str(port),
                "grace_s": f"{self.grace_s:g}"}

    def _start_servers(self, logs: Path) -> None:
        """The system's own servers (a broker...), each with a private data directory kept across restarts."""
        for srv in self.spec.servers:
            port = free_port()
            self._ports[srv.name] = port
            data = self.infra.state_dir / self.namespace / srv.name
            data.mkdir(parents=True, exist_ok=True)
            self._state_dirs.append(data)
            subst = {**self._subst(srv.name, port), "state_dir": str(data)}
            proc = self.infra.backend.process(
                name=srv.name, argv=[a.format(**subst) for a in srv.command],
                env={**self._base_env(srv.name), **{k: v.format(**subst) for k, v in srv.env.items()}},
                log_path=logs / f"{srv.name}.log", roles=srv.roles, health=health_of(srv.health, subst), cwd=data,
                stop_grace_s=self.grace_s + 1,
            )
            self.processes[srv.name] = proc
            proc.start()
        for srv in self.spec.servers:  # healthy before any client starts
            took = self.processes[srv.name].wait_healthy(60)
            self.progress(f"  {self.spec.name}/{srv.name} (server) healthy in {took:.1f}s")

    def up(self) -> None:
        """Start the downstream and the system's servers, make links, start every process; wait until healthy."""
        logs = self.run_dir / "logs"
        if missing := [exe for srv in self.spec.servers for exe in srv.missing()]:
            raise ServerMissing(f"{self.spec.name} needs {', '.join(missing)} on PATH (`make setup` installs it)")
        if "hatchet" in self.spec.services and isinstance(self.infra.hatchet, ExternalHatchet):
            self.infra.hatchet.check_namespace(self.namespace)  # a user's engine: never share a namespace
        self.infra.ensure(self.spec.services, list(self.link_faults))
        self.infra.place(self.spec)
        self._ports["downstream"] = port = free_port()
        downstream = self.infra.backend.process(
            name="downstream",
            argv=[sys.executable, "-m", "harness.downstream", "--host", self.infra.backend.address("downstream"),
                  "--port", str(port)],
            env=self._base_env("downstream"),
            log_path=logs / "downstream.log",
            roles=("downstream",),
            health=Health(http=f"http://{self.infra.backend.address('downstream')}:{port}/healthz"),
            cwd=PROJECT_ROOT,
            stop_grace_s=2,
        )
        self.processes["downstream"] = downstream
        downstream.start()
        self._start_servers(logs)
        service_env: dict[str, str] = {}
        if "hatchet" in self.spec.services and self.infra.hatchet:
            service_env = self.infra.hatchet.client_env(self.namespace)
        for template in self.spec.processes:
            for name in template.instance_names():
                port = free_port()
                subst = self._subst(name, port)
                env = {**self._base_env(name), **service_env}
                for service in template.links:
                    address = self._link(name, service)
                    if service == "downstream":
                        env[ENV_DOWNSTREAM] = f"http://{address}"
                    elif service == "engine" and self.infra.hatchet is not None:
                        env.update(self.infra.hatchet.link_env(address))
                    else:
                        subst[service] = address  # a server of the system: {broker} in its command and env
                try:
                    argv = [arg.format(**subst) for arg in template.command]
                    env.update({k: v.format(**subst) for k, v in template.env.items()})
                except KeyError as exc:
                    raise ValueError(f"{self.spec.name}/{name}: placeholder {exc} unknown (a server must be in the"
                                     " process's links to be named)") from None
                proc = self.infra.backend.process(
                    name=name,
                    argv=argv,
                    env=env,
                    log_path=logs / f"{name}.log",
                    roles=template.roles,
                    health=health_of(template.health, subst),
                    cwd=PROJECT_ROOT,
                    stop_grace_s=self.grace_s + 1,  # the app's own timeout first, SIGKILL just after
                )
                self.processes[name] = proc
                if "api" in template.roles and not self.api_url:
                    self.api_url = f"http://{subst['host']}:{port}"
                proc.start()
        servers = {srv.name for srv in self.spec.servers}  # waited for already
        for proc in self.processes.values():
            if proc.name not in servers:
                took = proc.wait_healthy(90)
                self.progress(f"  {self.spec.name}/{proc.name} healthy in {took:.1f}s")

    def targets(self, selector: str) -> list[Proc]:
        """Processes a fault may hit: ``a|b`` alternatives, each an exact name or else a role."""
        pool = list(self.processes.values()) + self.infra.processes(self.spec.services)
        hit = select(selector, {p.name: p.roles for p in pool})
        return [p for p in pool if p.name in hit]

    def link_names(self, pattern: str) -> list[str]:
        """Proxied links matching a glob-like pattern (``*->engine``, ``worker-1->engine``)."""
        shared = [DB_LINK] if "hatchet" in self.spec.services and self.infra.db_link else []
        return match_links(pattern, [*self.links, *shared])

    def link_report(self) -> dict[str, list[str]]:
        """Which links went through Toxiproxy, which were direct, and which a partition between hosts can cut."""
        shared = [DB_LINK] if "hatchet" in self.spec.services else []
        proxied_shared = [n for n in shared if self.infra.db_link is not None]
        return {"proxied": [*self.links, *proxied_shared],
                "direct": [*self.direct, *(n for n in shared if n not in proxied_shared)],
                "partitionable": list(self.partitionable)}

    def down(self) -> None:
        """Stop own processes (workers before APIs, servers, downstream last), remove the links and server data."""
        stop_all(list(reversed(self.processes.values())))
        for data in self._state_dirs:
            shutil.rmtree(data, ignore_errors=True)
        toxi = self.infra.toxiproxy
        if toxi is not None:
            for name in self.links:
                try:
                    toxi.destroy(name)
                except Exception:  # noqa: BLE001 - the server may be gone; nothing to clean then
                    pass
        self.links.clear()
