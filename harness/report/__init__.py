"""The comparison report: HTML pages rendered from results.json and the ledgers alone.

For each scenario, ``<scenario>/index.html``: the systems side by side with a verdict computed
from the numbers, charts over time with fault windows shaded, the story of every lost and
duplicated task, the manifest and links to the raw data (including a JSON-lines export of each
system's history). Each run gets ``<run>/index.html``, a scenario-by-system matrix of what each
system lost; a reports directory gets ``index.html`` listing every run with the losses and
duplicates across runs. ``findings.html`` shows a check of the findings catalogue. Pages come
from Jinja2 templates (``templates/``, autoescaped) and inline their chart library (uPlot, from a
pinned Python dependency), so they open with no network. ``harness report DIR...`` rebuilds
them without running anything.
"""

from harness.report.build import (
    REPORTS_DIR,
    ReportInputError,
    classify_dir,
    rebuild,
    write_findings_pages,
    write_reports_index,
    write_run_index,
    write_scenario,
)
from harness.report.findings import write_findings_page
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
    "write_findings_page",
    "write_findings_pages",
    "write_reports_index",
    "write_run_index",
    "write_scenario",
]
