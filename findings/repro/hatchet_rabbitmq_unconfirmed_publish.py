"""Hatchet's RabbitMQ publisher runs without confirms: a trigger answered as the broker link drops can be gone.

Starts Postgres, RabbitMQ and the pinned engine as the ``hatchet`` system runs them (optimistic
scheduling off, so every trigger goes through the message queue, as under load), the engine's link
to RabbitMQ through Toxiproxy, and one hatchet-sdk client triggering ``probe`` runs at 100/s (no
worker needed: a run that exists in the engine's database is not lost). Each try cuts the
link for 1 s (every 3 s). After the load, heal and settle, every run id the engine acknowledged is
looked up in its own tables (``v1_lookup_table``). A try reproduces it when an id acknowledged within
3 s before or during its cut has no run.

The same machinery as ``hatchet_pg_mq_at_most_once`` (its :func:`arm`), another link and direction.

Usage: ``python -m findings.repro.hatchet_rabbitmq_unconfirmed_publish [--tries 12]``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from findings.repro import common
from findings.repro.hatchet_pg_mq_at_most_once import Cuts, arm
from harness.model.finding import CheckResult

TRIES = 12
HOW = Cuts(link="engine->mq", rate=100.0, period_s=3.0, cut_s=1.0, slow_s=0.0)
"""Many short cuts under a brisk load: the window is the instant between the broker's side closing and the
engine's publisher noticing, so the odds grow with publishes per second and cuts."""


def plan(args: common.Args) -> list[str]:
    """What a run does."""
    return [f"start: Postgres + RabbitMQ + hatchet-engine {common.engine_version()} (the hatchet system, optimistic "
            f"scheduling off), {HOW.link} through Toxiproxy",
            f"load: one hatchet-sdk client, {HOW.rate:g} triggers/s for {args.tries * HOW.period_s + 3:.0f} s",
            f"tries: {args.tries} cuts of {HOW.link}, {HOW.cut_s:g} s every {HOW.period_s:g} s",
            "reproduced: a try whose acknowledged triggers (3 s before or during its cut) have no run afterwards"]


def run(args: common.Args) -> list[CheckResult]:
    """One arm: the RabbitMQ queue, its link cut again and again under load."""
    t0 = time.monotonic()
    got = arm(args, "hatchet", args.logs / "rabbitmq", how=HOW)
    hits = sum(1 for t in got["tries"] if t["lost"])
    detail = (f"RabbitMQ queue: lost {got['lost']} of {got['acknowledged']} acknowledged triggers "
              f"({got['lost_outside_windows']} outside the cuts' windows); {hits} of {args.tries} cuts lost some")
    common.say(f"lost {hits} of {args.tries}")
    return [CheckResult.judge(hits, args.tries, time.monotonic() - t0, detail,
                              {"hatchet-engine": common.engine_version(), "hatchet-sdk": got["sdk"]},
                              {"rabbitmq": got})]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    return common.main(argv, __doc__ or "", TRIES, plan, run)


if __name__ == "__main__":
    sys.exit(main())
