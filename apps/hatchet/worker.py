"""Hatchet system, worker side: a separate process with N slots running the shared job."""

from __future__ import annotations

import os

from apps.hatchet.tasks import config, hatchet, job
from harness.ledger import ENV_PROCESS


def main() -> None:
    """Register with the engine and run tasks until SIGTERM (graceful) or SIGKILL."""
    worker = hatchet.worker(os.environ.get(ENV_PROCESS, "worker"), slots=config.slots, workflows=[job])
    worker.start()


if __name__ == "__main__":
    main()
