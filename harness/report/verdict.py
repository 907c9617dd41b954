"""The one-line verdict of a scenario, derived from its results.json and nothing else.

No scenario has hand-written conclusions: the same function reads every scenario's numbers,
so a verdict can never claim what the run did not measure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from harness.report.metrics import applicable, fmt, ordered_runs, share

Level = Literal["bug", "na", "loss", "duplicates", "clean"]


@dataclass(frozen=True)
class Verdict:
    """What a scenario run showed, in one line, with how alarming it is."""

    text: str
    """The line."""
    level: Level
    """``bug`` (identities broken), ``na`` (nothing applicable), ``loss``, ``duplicates`` or ``clean``."""


def _loss_clause(run: dict[str, Any]) -> str:
    system, accepted, lost = run["system"], run.get("accepted", 0), run.get("lost", 0)
    notes = []
    if lost:
        failed, silent = run.get("failed", 0), run.get("silent_loss", lost)
        notes += [share(lost, accepted), "all silently" if not failed else "all reported failed" if not silent
                  else f"{silent} silently"]
        text = f"{system} lost {lost} of {accepted} accepted"
    else:
        text = f"{system} lost none of {accepted} accepted"
    notes += [f"{run[k]} {label}" for k, label in (("refused", "refused"), ("indeterminate", "unanswered"))
              if run.get(k)]
    if notes:
        text += f" ({', '.join(notes)})"
    if run.get("duplicated"):
        text += f" and ran {run['duplicated']} more than once"
    return text


def _ms(run: dict[str, Any], field: str, pct: str) -> Any:
    latency = run.get(field)
    return latency.get(pct) if isinstance(latency, dict) else None


def _knee(run: dict[str, Any]) -> Any:
    cap = run.get("capacity") or {}
    return cap.get("knee_median", cap.get("knee_rate"))


def _cost_clause(run: dict[str, Any], ref: dict[str, Any], with_recovery: bool) -> str:
    parts = [
        f"end-to-end p50 {fmt(_ms(run, 'e2e_latency_ms', 'p50'))} vs {fmt(_ms(ref, 'e2e_latency_ms', 'p50'))} ms",
        f"API p99 {fmt(_ms(run, 'api_latency_ms', 'p99'))} vs {fmt(_ms(ref, 'api_latency_ms', 'p99'))} ms",
    ]
    if run.get("capacity") and ref.get("capacity"):
        # Over a rising ladder the mean throughput measures how long the ladder ran: compare the knees.
        parts.append(f"knee {fmt(_knee(run))} vs {fmt(_knee(ref))} offered/s")
    else:
        parts.append(f"throughput {fmt(run.get('throughput_tps'))} vs {fmt(ref.get('throughput_tps'))} tasks/s")
    if with_recovery:
        def rec(r: dict[str, Any]) -> str:
            return "never" if r.get("recovery_s") is None else f"{fmt(r['recovery_s'])} s"
        parts.append(f"recovery {rec(run)} vs {rec(ref)}")
    return f"{run['system']} vs {ref['system']}: " + ", ".join(parts)


def verdict(doc: dict[str, Any]) -> Verdict:
    """The verdict of one scenario's results.json."""
    runs = ordered_runs(doc)
    broken = [f"{r['system']}: {b}" for r in runs for b in r.get("identities_broken") or []]
    if broken:
        return Verdict(f"harness bug, not a result: identities broken ({'; '.join(broken)})", "bug")
    live = [r for r in runs if applicable(r)]
    skipped = [f"not applicable to {r['system']} ({r.get('reason') or 'no reason given'})"
               for r in runs if not applicable(r)]
    if not live:
        return Verdict("; ".join(skipped), "na")
    text = "; ".join([_loss_clause(r) for r in live] + skipped) + "."
    if len(live) > 1:
        with_recovery = any(r.get("faults") for r in live)
        text += " " + "; ".join(_cost_clause(r, live[0], with_recovery) for r in live[1:]) + "."
    level: Level = ("loss" if any(r.get("lost") for r in live)
                    else "duplicates" if any(r.get("duplicated") for r in live) else "clean")
    return Verdict(text, level)
