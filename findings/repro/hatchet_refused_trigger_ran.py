"""Triggers refused during a Hatchet engine restart run anyway: the SDK keeps retrying them after the caller gave up.

Starts Postgres and the pinned engine, and two hatchet-sdk client processes that trigger as the
harness's API does (``aio_run(wait_for_result=False)`` under ``asyncio.wait_for(..., 5)``, a
refusal to the caller on timeout), each run marked in its metadata. The engine is SIGKILLed;
each client then fires its triggers at once (one try = one trigger) and every one times out:
refused. The engine is started again ~6 s after the kill, on the same database. The first client
keeps the SDK's default retries (tenacity: 5 attempts over ~15-19 s, in a thread ``wait_for``
cannot stop); the control has them off (``HATCHET_CLIENT_TENACITY_MAX_ATTEMPTS=0``). Both stay up
24 s more, as an API process would. A try reproduces it when a refused trigger has a run in the
engine's database (``v1_task``, by its marker): a caller retrying on the refusal runs it twice.

Usage: ``python -m findings.repro.hatchet_refused_trigger_ran [--tries 8] [--sdk hatchet-sdk==1.43.1]``.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from findings.repro import common
from harness.model.finding import CheckResult

TRIES = 8
VERSIONS = ("hatchet-sdk==1.38.0", "hatchet-sdk==1.43.1")
DOWN_S = 6.0
"""The engine is started again this long after its SIGKILL (the triggers have been refused by then)."""
LINGER_S = 24.0
"""The clients stay up this long after their last answer (an API process lives on)."""


def plan(args: common.Args) -> list[str]:
    """What a run does."""
    versions = list(args.sdk) or list(VERSIONS)
    return [f"start: Postgres + hatchet-engine {common.engine_version()} (hatchet-lite)",
            f"versions: {', '.join(versions)}: two trigger clients each (SDK default retries; retries off: control)",
            f"tries: {args.tries} triggers per client, fired after the engine's SIGKILL under wait_for(5 s); "
            f"engine started again {DOWN_S:g} s after the kill",
            "reproduced: a refused trigger (timed out at the caller) has a run in the engine's database"]


def outage(st: common.HatchetStack, py: common.Runtime, tries: int) -> dict[str, Any]:
    """One engine kill with both clients firing into it; what was refused and what ran."""
    logs = st.processes.logs
    go = logs / f"go-{py.version}"
    arms = {"sdk-default": {}, "retries-off": {"HATCHET_CLIENT_TENACITY_MAX_ATTEMPTS": "0"}}
    outs = {}
    for arm, extra in arms.items():
        prefix = f"{arm}-{py.version}"
        outs[arm] = logs / f"burst-{prefix}.jsonl"
        st.processes.start(f"burst-{prefix}", [py.python, "-m", common.client_module(), "burst", "--count",
                                               str(tries), "--timeout", "5", "--go-file", str(go), "--prefix",
                                               prefix, "--linger", str(LINGER_S), "--out", str(outs[arm])],
                           {**st.client_env("refused"), **extra}, common.Health(log=r"(?m)^ready$"), wait_s=90)
    engine = st.engine.engine
    engine.kill()
    killed = time.time()
    go.touch()
    common.say(f"{py.label}: engine SIGKILLed, {tries} triggers fired by each client")
    time.sleep(max(0.0, killed + DOWN_S - time.time()))
    engine.start()
    took = engine.wait_healthy(60)
    back = time.time() - killed
    common.say(f"{py.label}: engine up again {back:.1f} s after the kill ({took:.1f} s to start)")
    for proc in st.processes.started[-2:]:
        proc.wait(LINGER_S + 30)
    time.sleep(2)
    out: dict[str, Any] = {"engine_back_after_s": round(back, 1)}
    for arm, path in outs.items():
        answers = common.read_lines(path)
        markers = [a["marker"] for a in answers]
        runs = Counter(str(row[0]) for row in st.query(
            "SELECT additional_metadata->>'finding' FROM v1_task WHERE additional_metadata->>'finding' = ANY(%s)",
            (markers,)))
        refused = [a for a in answers if not a["ok"]]
        ran = [a["marker"] for a in refused if runs.get(a["marker"])]
        out[arm] = {"fired": len(answers), "accepted": len(answers) - len(refused), "refused": len(refused),
                    "refused_ran": len(ran), "runs": sum(runs.values()),
                    "more_than_one_run": sum(1 for n in runs.values() if n > 1),
                    "errors": dict(Counter(a.get("error", "") for a in refused))}
    return out


def run(args: common.Args) -> list[CheckResult]:
    """Each version's outage on one engine."""
    pys = common.runtimes(args, "hatchet-sdk", VERSIONS)
    results = []
    with common.hatchet_stack(args.logs, "hatchet-lite") as st:
        for py in pys:
            t0 = time.monotonic()
            got = outage(st, py, args.tries)
            main, ctl = got["sdk-default"], got["retries-off"]
            detail = (f"SDK default retries: {main['refused']} of {main['fired']} triggers refused (timed out at "
                      f"5 s), {main['refused_ran']} of them ran anyway; control (retries off): {ctl['refused']} "
                      f"refused, {ctl['refused_ran']} ran")
            common.say(f"{py.label}: refused yet ran {main['refused_ran']} of {main['fired']}")
            results.append(CheckResult.judge(main["refused_ran"], main["fired"] or args.tries,
                                             time.monotonic() - t0, detail,
                                             {"hatchet-sdk": py.version, "hatchet-engine": common.engine_version()},
                                             got))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    return common.main(argv, __doc__ or "", TRIES, plan, run)


if __name__ == "__main__":
    sys.exit(main())
