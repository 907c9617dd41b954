"""The stack of one run: a system's servers, processes, its downstream service and its links.

Every process gets a port picked free at run time on 127.0.0.1 (kept across restarts), the
harness environment (ledger URL, system and process names, task settings), and one link per
server it reaches, named ``<process>-><server>``. A link that some fault of the scenario may
target (``link_faults`` patterns, known before the stack starts) goes through Toxiproxy, so a
fault can hit one worker's link alone; every other link is direct, so the system is measured
without a proxy in paths no fault touches. The servers come from the session's
:class:`~harness.runtime.infra.Infra` (shared ones stay for the next run).

:meth:`Stack.up` and :meth:`Stack.down` pair through one :class:`contextlib.ExitStack`: whatever
was started is stopped, in reverse order, however far ``up`` got.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Collection, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from harness.backends.base import Health, Proc, free_port, stop_all
from harness.ledger import Ledger
from harness.model.env import ENV_DOWNSTREAM, ENV_LEDGER, ENV_PROCESS, ENV_SYSTEM, ENV_TASK_CONFIG
from harness.model.links import match_links, proxied
from harness.model.paths import PROJECT_ROOT
from harness.model.spec import SystemSpec, select
from harness.runtime.infra import Acquired, Infra, Progress
from harness.servers.command import health_of
from harness.servers.toxiproxy import Link


class Stack:
    """All servers, processes and links of one system's run, started in order and stopped on every path."""

    def __init__(self, spec: SystemSpec, run_dir: Path, ledger: Ledger, infra: Infra, task_config: Mapping[str, Any],
                 run_key: str, progress: Progress, grace_s: float = 10.0,
                 link_faults: Mapping[str, set[str]] | None = None, private: Collection[str] = ()) -> None:
        self.spec = spec
        """The system."""
        self.run_dir = run_dir
        """Where logs go (``run_dir/logs``)."""
        self.ledger = ledger
        """The run's ledger."""
        self.infra = infra
        """The session's servers (Toxiproxy, shared servers)."""
        self.task_config = dict(task_config)
        """Retries, timeouts and slots passed to the system (``Params.task_config()``)."""
        self.namespace = re.sub(r"[^a-z0-9]+", "_", f"{run_key}_{spec.name}".lower()) + "_"
        """Namespace of this run (run_key: run id and scenario), so leftovers of other runs never reach its
        workers (a server that shares state across runs, an engine, keys its work by it)."""
        self.progress = progress
        """One-line progress callback."""
        self.grace_s = grace_s
        """Graceful-shutdown time: ``{grace_s}`` in commands, and SIGKILL after it on stop."""
        self.link_faults = dict(link_faults or {})
        """Link patterns a fault of the scenario may target, with the fault actions; every other link is direct."""
        self.private = tuple(private)
        """Shared servers this run gets a copy of (its faults hit them while other runs go on)."""
        self.servers = Acquired()
        """The servers it uses (from the infra), by name."""
        self.processes: dict[str, Proc] = {}
        """Own processes by name (downstream included), in start order."""
        self.links: dict[str, Link] = {}
        """Own Toxiproxy links by name."""
        self.direct: list[str] = []
        """Own links that are direct connections (no fault targets them, or a partition between hosts cuts them)."""
        self.partitionable: dict[str, tuple[str, str, int]] = {}
        """Links between two hosts that only ``link-down`` targets: name -> (process, server address, port),
        cut at the network layer by the partition nemesis."""
        self.api_url = ""
        """Base URL of the (first) api process."""
        self._ports: dict[str, int] = {}
        self._cleanup = ExitStack()

    def _base_env(self, process: str) -> dict[str, str]:
        return {
            ENV_LEDGER: self.ledger.url,
            ENV_SYSTEM: self.spec.name,
            ENV_PROCESS: process,
            ENV_TASK_CONFIG: json.dumps(self.task_config),
            "PYTHONPATH": str(PROJECT_ROOT),
            "PYTHONUNBUFFERED": "1",
        }

    def _endpoint(self, service: str) -> str:
        """Address (host:port) of what a link to service leads to."""
        if service in self.servers.servers:
            return self.servers.servers[service].server.address
        if service in self._ports:
            return f"{self.infra.backend.address(service)}:{self._ports[service]}"
        raise ValueError(f"{self.spec.name}: no link {service!r} here (available: "
                         f"{', '.join([*self.servers.servers, *self._ports])})")

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
        link = self.infra.ensure_toxiproxy().create(name, upstream, listen_host=backend.shared_address,
                                                    owner=self.namespace)
        self.links[link.name] = link
        return link.listen

    def _subst(self, name: str, port: int) -> dict[str, str]:
        return {"python": sys.executable, "name": name, "host": self.infra.backend.address(name), "port": str(port),
                "grace_s": f"{self.grace_s:g}", "here": str(self.spec.path.parent)}

    def _own(self, proc: Proc) -> Proc:
        """Register proc as started by this stack (stopped on the way down)."""
        self.processes[proc.name] = proc
        return proc

    def up(self) -> None:
        """Start the downstream and the system's servers, make links, start every process; wait until healthy.

        Whatever was started is stopped by :meth:`down`, also when this raises half-way."""
        logs = self.run_dir / "logs"
        # Last in, first out: processes stop, then their links go, then the servers only this run used.
        self._cleanup.callback(self.infra.release, self.namespace)
        self._cleanup.callback(self._unlink)
        self._cleanup.callback(self._stop_processes)
        self.infra.place(self.spec)  # where each process runs (hosts), before any of its servers starts
        self.servers = self.infra.acquire(self.spec, self.namespace, list(self.link_faults), self.private, logs)
        self._ports["downstream"] = port = free_port()
        host = self.infra.backend.address("downstream")
        self._own(self.infra.backend.process(
            name="downstream",
            argv=[sys.executable, "-m", "harness.servers.downstream", "--host", host, "--port", str(port)],
            env=self._base_env("downstream"), log_path=logs / "downstream.log", roles=("downstream",),
            health=Health(http=f"http://{host}:{port}/healthz"), cwd=PROJECT_ROOT, stop_grace_s=2,
        )).start()
        for template in self.spec.processes:
            for name in template.instance_names():
                port = free_port()
                subst = self._subst(name, port)
                env = self._base_env(name)
                for service in template.links:
                    address = self._link(name, service)
                    if service == "downstream":
                        env[ENV_DOWNSTREAM] = f"http://{address}"
                    else:
                        subst[service] = address  # a server: {broker} in its command and env
                        env.update(self.servers.servers[service].server.client_env(self.namespace, address))
                try:
                    argv = [arg.format(**subst) for arg in template.command]
                    env.update({k: v.format(**subst) for k, v in template.env.items()})
                except KeyError as exc:
                    raise ValueError(f"{self.spec.name}/{name}: placeholder {exc} unknown (a server must be in the"
                                     " process's links to be named)") from None
                proc = self._own(self.infra.backend.process(
                    name=name, argv=argv, env=env, log_path=logs / f"{name}.log", roles=template.roles,
                    health=health_of(template.health, subst), cwd=PROJECT_ROOT,
                    stop_grace_s=self.grace_s + 1,  # the app's own timeout first, SIGKILL just after
                ))
                if "api" in template.roles and not self.api_url:
                    self.api_url = f"http://{subst['host']}:{port}"
                proc.start()
        for proc in self.processes.values():
            took = proc.wait_healthy(90)
            self.progress(f"  {self.spec.name}/{proc.name} healthy in {took:.1f}s")

    def _stop_processes(self) -> None:
        """Stop own processes (workers before APIs, downstream last)."""
        stop_all(list(reversed(self.processes.values())))

    def _unlink(self) -> None:
        """Remove own Toxiproxy links (the server may be gone already: nothing to clean then)."""
        toxi = self.infra.toxiproxy
        for link in self.links.values():
            try:
                if toxi is not None:
                    toxi.destroy(link.proxy)
            except Exception:  # noqa: BLE001 - Toxiproxy stopped first on an abort: its proxies went with it
                pass
        self.links.clear()

    def targets(self, selector: str) -> list[Proc]:
        """Processes a fault may hit: ``a|b`` alternatives, each an exact name or else a role."""
        pool = list(self.processes.values()) + self.servers.processes()
        hit = select(selector, {p.name: p.roles for p in pool})
        return [p for p in pool if p.name in hit]

    def watched(self) -> list[Proc]:
        """Every process of the run (its own and its servers'): sampled, and restarted when one exits on its own."""
        return list(self.processes.values()) + self.servers.processes()

    def proxied(self) -> dict[str, Link]:
        """Every Toxiproxy link of the run (its own and its servers'), by name."""
        return {**self.links, **self.servers.proxied()}

    def link_names(self, pattern: str) -> list[str]:
        """Proxied links matching a glob-like pattern (``*->engine``, ``worker-1->engine``)."""
        return match_links(pattern, list(self.proxied()))

    def link_report(self) -> dict[str, list[str]]:
        """Which links went through Toxiproxy, which were direct, and which a partition between hosts can cut."""
        return {"proxied": list(self.proxied()), "direct": [*self.direct, *self.servers.direct()],
                "partitionable": list(self.partitionable)}

    def outside(self) -> dict[str, str]:
        """What of the run is not the harness's to fault (a user's engine), with why."""
        return self.infra.outside(self.spec)

    def down(self) -> None:
        """Stop own processes, remove the links, let go of the servers (shared ones stay for the next run)."""
        self._cleanup.close()
