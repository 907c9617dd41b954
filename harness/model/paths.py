"""Where things are: the checkout and the directories the harness reads and writes."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
"""The checkout holding harness/, apps/ and scenarios/."""
APPS_DIR = PROJECT_ROOT / "apps"
"""Where system specs are found."""
SCENARIOS_DIR = PROJECT_ROOT / "scenarios"
"""Where scenario files live."""
FINDINGS_DIR = PROJECT_ROOT / "findings"
"""Where the findings catalogue lives (one file per finding)."""
REPORTS_DIR = Path(os.environ.get("HARNESS_REPORTS_DIR", PROJECT_ROOT / "reports"))
"""Home of run directories (``HARNESS_REPORTS_DIR`` overrides ``reports/``)."""
