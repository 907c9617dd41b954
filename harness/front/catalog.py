"""Finding scenarios: each ``scenarios/test_*.py`` file defines one module-level ``SCENARIO``.

A scenario's definition and the test asserting what it measures live in the same short file;
``harness list`` and ``harness run NAME`` find them here without pytest.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from harness.model.paths import PROJECT_ROOT
from harness.model.scenario import Scenario

SCENARIOS_DIR = PROJECT_ROOT / "scenarios"
"""Where scenario files live."""


def discover(directory: Path = SCENARIOS_DIR) -> dict[str, Scenario]:
    """Every scenario defined under directory, by name (in file order)."""
    return {s.name: s for s in by_file(directory).values()}


def by_file(directory: Path = SCENARIOS_DIR) -> dict[Path, Scenario]:
    """Every scenario defined under directory, by its file."""
    found: dict[str, Scenario] = {}
    files: dict[Path, Scenario] = {}
    for path in sorted(directory.glob("test_*.py")):
        name = f"scenarios.{path.stem}"
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        scenario = getattr(module, "SCENARIO", None)
        if isinstance(scenario, Scenario):
            if scenario.name in found:
                raise ValueError(f"scenario {scenario.name!r} is defined twice (second in {path})")
            found[scenario.name] = files[path.resolve()] = scenario
    return files
