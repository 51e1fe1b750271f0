"""``python -m orchestrator``: the same command as the ``orchestrator`` console script."""

from __future__ import annotations

from commands.main import main

raise SystemExit(main())
