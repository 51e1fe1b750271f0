"""``python -m orchestrator.simulator``: run the carrier simulator on its own."""

from __future__ import annotations

import sys

from orchestrator.simulator.cli import main

sys.exit(main())
