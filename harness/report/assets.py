"""The script and style every report page inlines, so it opens with no network and no sibling files.

Charts are drawn by uPlot (about 44 KB of JavaScript), taken from an installed Python
distribution that bundles it (``metaflow-card-uplot``, pinned; none of its Python is imported),
plus this package's own ``static/report.js`` and ``static/report.css``.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import metadata, resources

UPLOT_DIST = "metaflow-card-uplot"
"""The PyPI distribution that ships uPlot's built files."""
_UPLOT_JS = "uPlot.iife.min.js"
_UPLOT_CSS = "uPlot.min.css"


class AssetMissing(RuntimeError):
    """The chart library is not installed."""


def _dist_file(name: str) -> str:
    try:
        dist = metadata.distribution(UPLOT_DIST)
    except metadata.PackageNotFoundError:
        raise AssetMissing(f"{UPLOT_DIST} is not installed (pip install -r requirements.lock)") from None
    for f in dist.files or []:
        if f.name == name:
            return f.read_text(encoding="utf-8")
    raise AssetMissing(f"{UPLOT_DIST} has no {name}")


def _static(name: str) -> str:
    return resources.files("harness.report").joinpath("static", name).read_text(encoding="utf-8")


@cache
def uplot_version() -> str:
    """Version of the bundled uPlot, from its banner."""
    found = re.search(r"\(v(\d+\.\d+\.\d+)\)", _dist_file(_UPLOT_JS)[:200])
    return found.group(1) if found else "unknown"


@cache
def style() -> str:
    """All CSS of a page."""
    return _dist_file(_UPLOT_CSS) + "\n" + _static("report.css")


@cache
def chart_script() -> str:
    """All JavaScript of a page with charts: uPlot, then the code that draws the report's charts."""
    # "</script" cannot occur in either file, but guard so a future version can never end the tag early.
    return (_dist_file(_UPLOT_JS) + "\n" + _static("report.js")).replace("</script", "<\\/script")
