"""Several network hosts on one machine: network namespaces the run creates, joined by veth pairs to a
bridge the run creates, each with an address the run allocates (``--hosts N``, needs root).

A stack placed on hosts (:class:`HostsBackend`) runs each process inside its host's namespace,
bound to that host's address, so processes on different hosts talk over a real (virtual) network.
A ``link-down`` fault between two hosts is then a network partition, not a proxy toggle:
packets from the process's host to the service's address and port are dropped in that host's
firewall (:class:`PartitionNemesis`), and the TCP connections find out as they would across
machines. Nothing outside the run's own namespaces and bridge is ever touched; everything is
removed at the end, and by the reaper if the harness dies.

Placement (:func:`placement`): the units of a stack, in this order, go to hosts round robin:
the engine with its database, the system's own servers (a broker), the API, each worker, the
downstream service, the load generator. Units that talk to no one but through their own links
(the load generator) may share a host with a worker: a partition only drops the cut service's
traffic.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.backends import reaper
from harness.backends.base import Health, OneShot, Proc, ProcessBackend
from harness.backends.local import LocalBackend, run_local

SUBNETS = ipaddress.IPv4Network("10.234.0.0/16")
"""Where a run picks its /24 (one not in use on this machine)."""
ENGINE_UNIT = ("engine", "engine-api", "engine-api-bridge", "postgres")
"""The engine and its database are placed together, as they are deployed."""


class HostsUnavailable(RuntimeError):
    """Hosts cannot be made here (not root, no ``ip``/``iptables``) or the placement is impossible."""


def _run(*argv: str) -> None:
    proc = subprocess.run(list(argv), capture_output=True, text=True)
    if proc.returncode != 0:
        raise HostsUnavailable(f"{' '.join(argv)}: {proc.stderr.strip() or proc.returncode}")


def _undo(argv: list[str]) -> None:
    """Run a clean-up command registered with the reaper (already gone is fine) and tell the reaper it is done."""
    subprocess.run(argv, capture_output=True)
    reaper.on_exit_done(argv)


def check_available() -> None:
    """Raise HostsUnavailable unless this process can make namespaces and firewall rules."""
    if os.geteuid() != 0:
        raise HostsUnavailable("--hosts needs root (network namespaces, veth pairs, a bridge)")
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            raise HostsUnavailable(f"--hosts needs {tool} on PATH (`make setup` installs iptables)")


def _free_subnet() -> ipaddress.IPv4Network:
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    taken = [ipaddress.IPv4Interface(w).network for line in used.splitlines() for w in line.split()
             if "/" in w and w[0].isdigit()]
    for _ in range(64):
        net = list(SUBNETS.subnets(new_prefix=24))[secrets.randbelow(256)]
        if not any(net.overlaps(t) for t in taken):
            return net
    raise HostsUnavailable(f"no free /24 in {SUBNETS}")


@dataclass(frozen=True)
class Host:
    """One host: a network namespace with one interface on the run's bridge."""

    name: str
    """``h1``, ``h2``, ... (reports and placement)."""
    netns: str
    """The kernel's name of its namespace."""
    address: str
    """Its address on the bridge."""

    def exec_prefix(self) -> list[str]:
        """Run a command inside this host."""
        return ["ip", "netns", "exec", self.netns]


@dataclass
class Hosts:
    """The hosts of one session, with the bridge joining them (the harness itself is at ``gateway``)."""

    count: int
    """How many hosts."""
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    """Makes this run's names unique on the machine (interface names stay under 15 characters)."""
    hosts: list[Host] = field(default_factory=list)
    """The hosts, once up."""
    gateway: str = ""
    """The root namespace's address on the bridge: the harness, Toxiproxy's links and the ledger server."""
    subnet: str = ""
    """The run's /24."""

    @property
    def bridge(self) -> str:
        """The bridge's interface name."""
        return f"hb{self.tag}"

    def _veth(self, i: int) -> str:
        """The root namespace's end of host i's veth pair."""
        return f"hv{self.tag}{i}"

    def up(self) -> None:
        """Make the bridge and the hosts; the reaper removes them if the harness dies."""
        check_available()
        net = _free_subnet()
        addrs = list(net.hosts())
        self.subnet, self.gateway = str(net), str(addrs[0])
        reaper.on_exit(["ip", "link", "del", self.bridge])
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for i in range(1, self.count + 1):
            host = Host(f"h{i}", f"harness-{self.tag}-h{i}", str(addrs[i]))
            outer, inner = self._veth(i), f"hn{self.tag}{i}"
            reaper.on_exit(["ip", "netns", "del", host.netns])
            _run("ip", "netns", "add", host.netns)
            # Deleting a namespace frees its veth pair only when the kernel's clean-up gets to it (seconds later
            # on a busy machine); deleting the outer end removes the pair at once.
            reaper.on_exit(["ip", "link", "del", outer])
            _run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
            _run("ip", "link", "set", outer, "master", self.bridge)
            _run("ip", "link", "set", outer, "up")
            _run("ip", "link", "set", inner, "netns", host.netns)
            _run("ip", "-n", host.netns, "link", "set", "lo", "up")
            _run("ip", "-n", host.netns, "addr", "add", f"{host.address}/24", "dev", inner)
            _run("ip", "-n", host.netns, "link", "set", inner, "up")
            self.hosts.append(host)

    def down(self) -> None:
        """Remove every veth pair, every namespace and the bridge."""
        for i, host in enumerate(self.hosts, 1):
            _undo(["ip", "link", "del", self._veth(i)])
            _undo(["ip", "netns", "del", host.netns])
        _undo(["ip", "link", "del", self.bridge])
        self.hosts.clear()

    def drop(self, host: Host, address: str, port: int, insert: bool = True) -> None:
        """In host's firewall, drop (or, with insert False, stop dropping) TCP to and from address:port."""
        op = "-I" if insert else "-D"
        ipt = [*host.exec_prefix(), "iptables", "-w"]
        _run(*ipt, op, "OUTPUT", "-p", "tcp", "-d", address, "--dport", str(port), "-j", "DROP")
        _run(*ipt, op, "INPUT", "-p", "tcp", "-s", address, "--sport", str(port), "-j", "DROP")

    def describe(self) -> dict[str, str]:
        """Host name -> address (manifest)."""
        return {h.name: h.address for h in self.hosts}


def placement(units: Sequence[Sequence[str]], hosts: Sequence[Host]) -> dict[str, Host]:
    """Process name -> host: the units, in order, round robin over the hosts."""
    return {name: hosts[i % len(hosts)] for i, unit in enumerate(units) for name in unit}


def check_placement(count: int, units: Sequence[Sequence[str]], system: str) -> None:
    """Refuse a count below 1, or more hosts than units to place (a host would stay empty)."""
    if count < 1:
        raise HostsUnavailable(f"--hosts {count}: expected a number of hosts of at least 1")
    if count > len(units):
        raise HostsUnavailable(f"--hosts {count}: {system} has only {len(units)} units to place "
                               f"({', '.join('+'.join(u) for u in units)})")


class HostsBackend:
    """Runs each server inside the host its name is placed on (others, e.g. shared ones, on the machine)."""

    name = "process"

    def __init__(self, hosts: Hosts, inner: ProcessBackend | None = None) -> None:
        self.hosts = hosts
        """The session's hosts."""
        self.inner = inner or LocalBackend()
        """What actually starts the processes."""
        self.placed: dict[str, Host] = {}
        """Process name -> host, set by each stack (and the shared servers) before they start."""

    @property
    def shared_address(self) -> str:
        """The harness's side of the bridge: every host reaches it."""
        return self.hosts.gateway

    def place(self, units: Sequence[Sequence[str]]) -> None:
        """Put the units round robin on the hosts (the first unit always on h1: the engine when there is one)."""
        if not self.hosts.hosts:
            self.hosts.up()
        self.placed.update(placement(units, self.hosts.hosts))

    def address(self, name: str) -> str:
        """Where the server ``name`` binds and is reached."""
        host = self.placed.get(name)
        return host.address if host else "127.0.0.1"

    def process(self, *, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None,
                roles: tuple[str, ...] = (), health: Health | None = None, cwd: Path | None = None,
                user: str | None = None, stop_grace_s: float = 10.0) -> Proc:
        """A server inside its host's namespace (``ip netns exec`` execs it: the pid is the server's)."""
        host = self.placed.get(name)
        if host is None:
            return self.inner.process(name=name, argv=argv, log_path=log_path, env=env, roles=roles, health=health,
                                      cwd=cwd, user=user, stop_grace_s=stop_grace_s)
        # Entering a namespace needs root: drop to the server's user after it (setpriv execs, keeping the pid).
        become = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups"] if user else []
        return self.inner.process(name=name, argv=[*host.exec_prefix(), *become, *argv], log_path=log_path, env=env,
                                  roles=roles, health=health, cwd=cwd, stop_grace_s=stop_grace_s)

    def run_once(self, *, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None, timeout_s: float = 120.0, log_stdout: bool = True) -> OneShot:
        """Run a one-shot command inside the host ``name`` is placed on (on the machine when it is on none)."""
        host = self.placed.get(name)
        return run_local(argv, log_path, env, cwd, timeout_s, prefix=host.exec_prefix() if host else (),
                         log_stdout=log_stdout)

    def close(self) -> None:
        """Close the inner backend and remove the hosts."""
        try:
            self.inner.close()
        finally:
            self.hosts.down()
