"""Celery's loss window on a worker SIGKILL: moved to the findings catalogue.

The reproduction is now ``findings/repro/celery_kill_window.py`` (finding ``celery-kill-window``:
``harness findings check celery-kill-window``), on the harness's own servers, with a deterministic
mechanism check beside the timed tries. This entry point stays for old command lines:
``python -m bench.celery_kill_window [--trials N]`` runs it with N tries.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from findings.repro import celery_kill_window


def main(argv: Sequence[str] | None = None) -> int:
    """Run the finding's reproduction (``--trials`` is its ``--tries``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    return celery_kill_window.main(["--tries" if a == "--trials" else a for a in args])


if __name__ == "__main__":
    sys.exit(main())
