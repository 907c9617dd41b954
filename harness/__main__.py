"""``python -m harness``: the same as the ``harness`` console script."""

import sys

from harness.front.cli import main

sys.exit(main())
