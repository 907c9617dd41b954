"""The environment variables the harness hands every process of a run: the contract with apps and tools."""

from __future__ import annotations

ENV_LEDGER = "HARNESS_LEDGER"
"""The run's ledger URL (``sqlite:///...`` or ``postgresql://...``), for :class:`harness.ledger.Recorder`."""
ENV_SYSTEM = "HARNESS_SYSTEM"
"""The system's name (recorded with every effect)."""
ENV_PROCESS = "HARNESS_PROCESS"
"""The process's name (``worker-2``)."""
ENV_TASK_CONFIG = "HARNESS_TASK_CONFIG"
"""The scenario's task settings as JSON (``apps.common.contract.TaskConfig``)."""
ENV_DOWNSTREAM = "HARNESS_DOWNSTREAM_URL"
"""The downstream service's base URL (through the process's link)."""
ENV_SHAPE = "HARNESS_SHAPE"
"""The locustfile's load shape: ``steady``, ``ramp``, ``spike`` or ``open``."""
ENV_BACKEND = "HARNESS_BACKEND"
"""What ran the servers (``process`` or ``docker``), for the manifest."""
