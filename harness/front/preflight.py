"""Checks both front doors run before anything starts: which runs, the ledger, the hosts, every server.

:func:`select_runs` turns scenario names and the selected systems into (scenario, systems) pairs;
:func:`check` then makes sure the ledger answers, the hosts can be made and every server of every
system can be made (a user's engine answers, a binary is built): each failure one
:class:`~harness.front.options.UsageError` line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.backends import hosts
from harness.front.options import RunRequest, UsageError
from harness.ledger import LedgerOptionError, check_option
from harness.model.scenario import Scenario
from harness.model.spec import SystemSpec
from harness.servers.base import ServerUnusable
from harness.servers.registry import Prepared

Runs = list[tuple[Scenario, list[SystemSpec]]]


def select_runs(scenario_names: Sequence[str], systems: Sequence[str], known: Mapping[str, Scenario],
                specs: Mapping[str, SystemSpec]) -> Runs:
    """Each scenario to run with its systems.

    Scenario ``all`` is every default-tier scenario that does not name its own systems; a scenario
    naming its systems (calibration) runs against those whatever the selection says, and one with
    ``also`` adds those variants after their base system.
    """
    # A calibration scenario in `all` would add its system to the comparison's report: it runs by name.
    everything = [n for n in known if known[n].tier == "default" and known[n].systems is None]
    names = everything if list(scenario_names) == ["all"] else list(scenario_names)
    if unknown := [n for n in names if n not in known]:
        raise UsageError(f"unknown scenario {unknown[0]!r} (known: {', '.join(known)})")
    if twice := next((n for n in names if names.count(n) > 1), None):
        raise UsageError(f"scenario {twice!r} is named twice")
    runs = []
    for name in names:
        chosen = known[name].systems_for(list(systems))
        if missing := [s for s in chosen if s not in specs]:
            raise UsageError(f"scenario {name!r} runs against {missing[0]!r}, which has no apps/*/system.toml")
        runs.append((known[name], [specs[s] for s in chosen]))
    return runs


def check(request: RunRequest, runs: Runs) -> Prepared:
    """Refuse what cannot run here before anything starts; the servers made (and checked) for the run."""
    try:
        check_option(request.ledger)  # an unreachable server is bad input
        if request.backend == "docker" and request.dockerd != "auto":
            from harness.backends.docker import DockerUnavailable, connect  # only when Docker is asked for

            try:
                connect().close()
            except DockerUnavailable as exc:
                raise UsageError(f"--backend docker: {exc}") from None
        prepared = Prepared(request.server_options).check(spec for _, specs in runs for spec in specs)
        if request.hosts:
            hosts.check_available()
            for _, specs in runs:
                for spec in specs:
                    units = spec.units(request.processes, prepared.started_here)
                    hosts.check_placement(request.hosts, units, spec.name)
        return prepared
    except (LedgerOptionError, hosts.HostsUnavailable, ServerUnusable) as exc:
        raise UsageError(str(exc)) from None
