"""Downstream calls seen from both ends: the job's ``downstream.client`` span beside the service's
``downstream.server`` span, so a slow or failed call shows where its time went.

Client time is the job's (request sent to answer or error, through its link: Toxiproxy when the
scenario may fault it, else direct); server time is the service's (request received to answer
sent, its ledger commit included). What lies between them, "outside the server", is the link and
its faults, the network, the client's connection pool and the client's own event loop. A call the
service never saw has no server side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.analysis.checker import Latency
from harness.model.history import Span

CLIENT = "downstream.client"
"""Span the job records around its call (apps/common/job.py)."""
SERVER = "downstream.server"
"""Span the service records per call (harness/downstream.py)."""
SLACK_S = 0.05
"""How far a server span may start outside its client span and still pair with it (one clock; rounding)."""
SLOWEST = 5
"""Slowest calls listed per system."""


@dataclass(frozen=True)
class Call:
    """One downstream call: the client's span and, when the service saw it, the server's."""

    client: Span
    """The job's side."""
    server: Span | None = None
    """The service's side (None: the call never reached it, or the service could not record it)."""

    @property
    def ok(self) -> bool:
        """The client got a 2xx answer."""
        return (self.client.detail or "").startswith("2")

    @property
    def outcome(self) -> str:
        """The status, or the error's type (``ReadTimeout``, ``ConnectError``, ...)."""
        return (self.client.detail or "?").split(":", 1)[0]

    @property
    def client_s(self) -> float:
        """Seconds the job waited for the call."""
        return self.client.t_end - self.client.t_start

    @property
    def server_s(self) -> float | None:
        """Seconds the service took, received to answered."""
        return None if self.server is None else self.server.t_end - self.server.t_start

    @property
    def outside_s(self) -> float | None:
        """Client time not spent in the service: the link, the network, the client's pool and loop."""
        return None if self.server_s is None else max(0.0, self.client_s - self.server_s)

    def breakdown(self) -> str:
        """Where the call's time went, in one line."""
        head = f"attempt {self.client.attempt}: {1000 * self.client_s:.0f} ms at the client ({self.client.detail})"
        if self.server is None:
            return f"{head}; the service never recorded it"
        before = 1000 * (self.server.t_start - self.client.t_start)
        after = 1000 * (self.client.t_end - self.server.t_end)
        return (f"{head}; reached the service after {before:.0f} ms, served in {1000 * (self.server_s or 0):.1f} ms "
                f"({self.server.detail}), answer reached the client {after:.0f} ms later")


def pair(client: Sequence[Span], server: Sequence[Span]) -> tuple[list[Call], int]:
    """Each client span with the server span of the same task and attempt that started within it.

    Returns the calls in client start order and how many server spans paired with no client span
    (the job's process died before recording its side, or a client span was lost with it).
    """
    unused: dict[tuple[str, int], list[Span]] = {}
    for s in sorted(server, key=lambda s: s.t_start):
        unused.setdefault((s.task_id, s.attempt), []).append(s)
    calls = []
    for c in sorted(client, key=lambda s: s.t_start):
        candidates = unused.get((c.task_id, c.attempt), [])
        match = next((s for s in candidates if c.t_start - SLACK_S <= s.t_start <= c.t_end + SLACK_S), None)
        if match is not None:
            candidates.remove(match)
        calls.append(Call(c, match))
    return calls, sum(len(v) for v in unused.values())


@dataclass
class CallSummary:
    """One system's downstream calls in a few numbers, and its slowest calls."""

    calls: int
    """Client spans (calls the jobs made and saw end)."""
    ok: int
    """Answered 2xx."""
    outcomes: dict[str, int]
    """Calls by status or error type."""
    client_ms: Latency
    """Client time of every call."""
    server_ms: Latency
    """Server time of every call the service answered."""
    outside_ms: Latency
    """Client minus server time of calls seen from both ends."""
    server_only: int
    """Server spans with no client span."""
    slowest: list[Call] = field(default_factory=list)
    """The SLOWEST slowest calls by client time."""


def summarize(client: Sequence[Span], server: Sequence[Span]) -> CallSummary | None:
    """The summary of one run's spans (None when no downstream call was made)."""
    if not client and not server:
        return None
    calls, server_only = pair(client, server)
    outcomes: dict[str, int] = {}
    for c in calls:
        outcomes[c.outcome] = outcomes.get(c.outcome, 0) + 1
    return CallSummary(
        calls=len(calls), ok=sum(c.ok for c in calls), outcomes=dict(sorted(outcomes.items(), key=lambda kv: -kv[1])),
        client_ms=Latency.of([c.client_s for c in calls]),
        server_ms=Latency.of([s.t_end - s.t_start for s in server]),
        outside_ms=Latency.of([c.outside_s for c in calls if c.outside_s is not None]),
        server_only=server_only,
        slowest=sorted(calls, key=lambda c: -c.client_s)[:SLOWEST],
    )
