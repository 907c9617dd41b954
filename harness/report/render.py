"""Jinja2 templates (``templates/*.html.j2``, shipped as package data) turned into whole pages.

Every value a template prints is HTML-escaped (autoescaping); the only markup passed through as
is, is the page's own inlined style, chart script and chart data, made safe for their elements here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from harness.report import assets
from harness.report.charts import Spec
from harness.report.metrics import fmt, share

_ID = re.compile(r"[^A-Za-z0-9_-]")


def dom_id(text: object) -> str:
    """text as an element id (anything but letters, digits, ``_`` and ``-`` becomes ``-``)."""
    return _ID.sub("-", str(text))


def percent(x: Any) -> str:
    """A share (0..1) as a whole percentage ("—" when absent)."""
    return "—" if not isinstance(x, int | float) or isinstance(x, bool) else f"{100 * float(x):.0f} %"


def when(iso: Any) -> str:
    """An ISO 8601 time in UTC, to the second (as given when it does not parse)."""
    try:
        return datetime.fromisoformat(str(iso)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return str(iso)


def web_url(text: Any) -> str:
    """text when it is an http(s) URL, else "": only such links become hrefs (never ``javascript:``)."""
    parts = urlsplit(str(text))
    return str(text) if parts.scheme in ("http", "https") and parts.netloc else ""


@cache
def environment() -> Environment:
    """The templates' environment: autoescaping on, undefined names an error, the report's filters."""
    env = Environment(loader=PackageLoader("harness.report", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(fmt=fmt, share=share, percent=percent, when=when, dom_id=dom_id, web_url=web_url)
    return env


def chart_data(charts: Sequence[Spec]) -> Markup:
    """The chart specs as the JSON text of a ``<script type="application/json">`` element.

    A script element's text is not HTML-decoded, so it cannot be entity-escaped; writing ``<``, ``>``
    and ``&`` as JSON escapes keeps any text in it (``</script>``, ``<!--``) from ending or bending the
    element.
    """
    text = json.dumps({"charts": list(charts)}, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def page(template: str, title: str, charts: Sequence[Spec] = (), **context: Any) -> str:
    """A whole HTML document from a template that extends ``base.html.j2``; with charts, their data and the
    chart script are inlined."""
    inline: Mapping[str, Any] = {
        "style": Markup(assets.style()),  # the package's own CSS and uPlot's
        "script": Markup(assets.chart_script()) if charts else "",  # "</script" guarded in assets
        "data": chart_data(charts) if charts else "",
        "uplot": assets.uplot_version() if charts else "",
    }
    return environment().get_template(template).render(title=title, **inline, **context)
