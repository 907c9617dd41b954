"""The comparison report: HTML pages rendered from results.json and the ledgers alone.

For each scenario, ``<scenario>/index.html``: native and Hatchet side by side with a verdict
computed from the numbers, charts over time with fault windows shaded, the story of every lost
and duplicated task, the manifest and links to the raw data (including a JSON-lines export of
each system's history). Each run gets ``<run>/index.html``; a reports directory gets
``index.html`` listing every run with trends. Pages inline their chart library (uPlot, from a
pinned Python dependency), so they open with no network. ``harness report DIR...`` rebuilds
them without running anything.
"""

from harness.report.build import (
    REPORTS_DIR,
    ReportInputError,
    classify_dir,
    rebuild,
    write_reports_index,
    write_run_index,
    write_scenario,
)
from harness.report.metrics import text_table
from harness.report.verdict import Verdict, verdict

__all__ = [
    "REPORTS_DIR",
    "ReportInputError",
    "Verdict",
    "classify_dir",
    "rebuild",
    "text_table",
    "verdict",
    "write_reports_index",
    "write_run_index",
    "write_scenario",
]
