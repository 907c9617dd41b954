"""Link names and patterns: ``<process>-><server>`` links, matched by glob-like patterns (``*->engine``)."""

from __future__ import annotations

import re
from collections.abc import Sequence


def match_links(pattern: str, names: list[str]) -> list[str]:
    """Names matching a glob-like pattern where ``*`` is any text (``*->engine``); ``a|b`` matches either."""
    alts = [re.compile("^" + re.escape(alt).replace(r"\*", ".*") + "$") for alt in pattern.split("|")]
    return [n for n in names if any(rx.match(n) for rx in alts)]


def proxied(link: str, patterns: Sequence[str]) -> bool:
    """True when some pattern matches link: it must go through Toxiproxy (a fault may target it)."""
    return any(match_links(p, [link]) for p in patterns)
