"""Hatchet's Postgres message queue is at most once across a database cut: acknowledged triggers never become runs.

Starts Postgres and the pinned engine with the Postgres message queue (the ``hatchet-lite`` system,
optimistic scheduling off so every trigger goes through the queue), its link to Postgres through
Toxiproxy, and one hatchet-sdk client triggering ``probe`` runs at 40/s (no worker needed: a run
that exists in the engine's database is not lost). Each try cuts the engine <-> Postgres link for
3 s. After the load, heal and settle, every run id the engine acknowledged to the client is looked
up in the engine's own tables (``v1_lookup_table``). A try reproduces it when an id acknowledged
within 3 s before or during its cut has no run; the message rows stranded in ``ASSIGNED``
(``"MessageQueueItem"``) and the engine's ``error pre-acking message`` lines are counted beside.

Control (after the tries; ``--no-control`` skips it): half as many cuts against the ``hatchet``
system (the RabbitMQ queue, the engine's default): expect 0 lost.

Usage: ``python -m findings.repro.hatchet_pg_mq_at_most_once [--tries 6] [--no-control]``.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from findings.repro import common
from harness.model.finding import CheckResult

TRIES = 6
PERIOD_S = 9.0
"""One cut every PERIOD_S seconds of load."""
CUT_S = 3.0
"""How long each cut lasts."""
RATE = 40.0
"""Triggers per second."""
SETTLE_S = 12.0
"""Wait after the load before counting (the queue drains, the engine writes what it will)."""
WINDOW_S = 3.0
"""An acknowledgement this long before a cut (or during it) belongs to that cut."""
SLOW_S = 2.0
"""Before each cut, the link is slowed this long (a loaded machine's database: transactions in flight at the cut)."""
SLOW_MS = 150
"""How much each packet from Postgres is delayed then."""
SETTINGS = {"SERVER_OPTIMISTIC_SCHEDULING_ENABLED": "false"}


@dataclass(frozen=True)
class Cuts:
    """How an arm cuts one link of the engine under a trigger load."""

    link: str = "engine->postgres"
    """The engine's link cut."""
    rate: float = RATE
    """Triggers per second."""
    period_s: float = PERIOD_S
    """One cut every period_s seconds of load."""
    cut_s: float = CUT_S
    """How long each cut lasts."""
    slow_s: float = SLOW_S
    """Before each cut, the link is slowed this long (0: not slowed)."""
    slow_stream: str = "downstream"
    """Which direction is slowed (Toxiproxy's ``downstream``: towards the engine)."""


def plan(args: common.Args) -> list[str]:
    """What a run does."""
    return [f"start: Postgres + hatchet-engine {common.engine_version()} (hatchet-lite: Postgres message queue, "
            f"optimistic scheduling off), engine->postgres through Toxiproxy",
            f"load: one hatchet-sdk client, {RATE:g} triggers/s for {args.tries * PERIOD_S + 3:.0f} s",
            f"tries: {args.tries} cuts of engine->postgres, {CUT_S:g} s every {PERIOD_S:g} s",
            "reproduced: a try whose acknowledged triggers (3 s before or during its cut) have no run afterwards",
            f"control (unless --no-control): {control_cuts(args.tries)} cuts on the hatchet system (RabbitMQ queue): "
            "expect 0 lost"]


def decode(payload: Any) -> tuple[str, str]:
    """A ``MessageQueueItem`` payload: its message kind and its messages decoded (base64 JSON) into one text."""
    doc = payload if isinstance(payload, dict) else json.loads(str(payload))
    texts = []
    for message in doc.get("messages") or []:
        try:
            texts.append(base64.b64decode(message).decode(errors="replace"))
        except (ValueError, TypeError):
            texts.append(str(message))
    return str(doc.get("id", "?")), "\n".join(texts)


def control_cuts(tries: int) -> int:
    """Cuts of the control arm."""
    return max(2, tries // 2)


def arm(args: common.Args, system: str, logs: Path, cuts_n: int = 0, how: Cuts = Cuts()) -> dict[str, Any]:
    """One stack, one load with cuts (how); what was acknowledged and what became runs."""
    logs.mkdir(parents=True, exist_ok=True)
    py = common.runtimes(args, "hatchet-sdk")[0]
    with common.hatchet_stack(logs, system, [how.link], SETTINGS) as st:
        out = logs / "load.jsonl"
        env = {**st.client_env("pgmq"), "HATCHET_CLIENT_TENACITY_MAX_ATTEMPTS": "0"}  # one RPC per trigger
        n = cuts_n or args.tries
        seconds = n * how.period_s + 3
        st.processes.start("load", [py.python, "-m", common.client_module(), "load", "--rate", str(how.rate),
                                    "--seconds", str(seconds), "--out", str(out)], env,
                           common.Health(log=r"(?m)^ready$"), wait_s=90)
        t0 = time.time()
        cuts: list[tuple[float, float]] = []
        for k in range(n):
            time.sleep(max(0.0, t0 + 3 + k * how.period_s - how.slow_s - time.time()))
            if how.slow_s:
                st.toxic(how.link, "slow", "latency", {"latency": SLOW_MS}, stream=how.slow_stream)
                time.sleep(how.slow_s)
            start = time.time()
            st.set_link(how.link, False)
            time.sleep(how.cut_s)
            if how.slow_s:
                st.untoxic(how.link, "slow")
            st.set_link(how.link, True)
            cuts.append((start, time.time()))
            common.say(f"{system}: cut {k + 1}/{n}: {how.link} down {how.cut_s:g} s")
        load = st.processes.started[-1]
        load.wait(seconds + 60)
        time.sleep(SETTLE_S)
        sent = common.read_lines(out)
        acked = {r["id"]: r for r in sent if r.get("ok")}
        found = {str(row[0]) for row in st.query(
            "SELECT external_id FROM v1_lookup_table WHERE external_id = ANY(%s::uuid[])", (list(acked),))}
        lost = {i: acked[i] for i in acked if i not in found}
        rows = [row[0] for row in st.query(
            """SELECT payload FROM "MessageQueueItem" WHERE status = 'ASSIGNED'""")] if system == "hatchet-lite" else []
        stranded = [decode(p) for p in rows]
        in_assigned = sum(1 for i in lost if any(i in text for _, text in stranded))
        kinds = Counter(kind for kind, _ in stranded)
        preack = sum(line.count("error pre-acking message")
                     for line in (logs / "engine.log").read_text(errors="replace").splitlines())
        per_try = []
        for start, end in cuts:
            mine = [i for i, r in lost.items() if start - WINDOW_S <= r["done"] <= end]
            near = [i for i, r in acked.items() if start - WINDOW_S <= r["done"] <= end]
            per_try.append({"acknowledged_near_cut": len(near), "lost": len(mine)})
        outside = len(lost) - sum(t["lost"] for t in per_try)
        return {"system": system, "sent": len(sent), "acknowledged": len(acked), "lost": len(lost),
                "lost_outside_windows": outside, "stranded_assigned_rows": len(stranded),
                "stranded_by_message": dict(kinds),
                "lost_in_assigned_rows": in_assigned,
                "engine_preack_errors": preack, "tries": per_try, "sdk": py.version,
                "lost_ids": sorted(lost)[:20]}


def run(args: common.Args, control: bool = True) -> list[CheckResult]:
    """The Postgres-queue arm, then the RabbitMQ control (unless skipped)."""
    t0 = time.monotonic()
    main = arm(args, "hatchet-lite", args.logs / "lite")
    hits = sum(1 for t in main["tries"] if t["lost"])
    detail = (f"Postgres queue: lost {main['lost']} of {main['acknowledged']} acknowledged triggers; "
              f"{hits} of {args.tries} cuts lost some; {main['stranded_assigned_rows']} message rows left ASSIGNED "
              f"(holding {main['lost_in_assigned_rows']} of the lost run ids); "
              f"{main['engine_preack_errors']} 'error pre-acking message' lines")
    data: dict[str, Any] = {"lite": main}
    if control:
        ctl = arm(args, "hatchet", args.logs / "rabbitmq", control_cuts(args.tries))
        data["control"] = ctl
        detail += (f". Control (RabbitMQ queue, {len(ctl['tries'])} cuts): lost {ctl['lost']} of "
                   f"{ctl['acknowledged']} acknowledged")
    common.say(f"lost {hits} of {args.tries}")
    return [CheckResult.judge(hits, args.tries, time.monotonic() - t0, detail,
                              {"hatchet-engine": common.engine_version(), "hatchet-sdk": main["sdk"]}, data)]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    argv = list(sys.argv[1:] if argv is None else argv)
    control = "--no-control" not in argv
    argv = [a for a in argv if a != "--no-control"]
    return common.main(argv, __doc__ or "", TRIES, plan, lambda a: run(a, control))


if __name__ == "__main__":
    sys.exit(main())
