"""``python -m simulator``: run the carrier simulator on its own."""

from __future__ import annotations

import sys

from simulator.cli import main

sys.exit(main())
