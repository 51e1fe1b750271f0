"""``orchestrator demo``: the product's main job on the embedded defaults.

One command starts SQLite, the built-in Plivo-compatible simulator, the whole service
(:func:`server.wiring.run_service`) and a sample customer endpoint, then drives a batch
of calls through every path (connected, tier escalation, press-1 decline, voicemail, lead
hang-up, "no agents") and checks each got the outcome its scenario expects.

Modules, each with one job:

- :mod:`.scenarios` (pure): the scenario table and the lead-number encoding;
- :mod:`.plans` (pure): the Step 2 fields a customer sends for a scenario;
- :mod:`.customer`: the sample customer endpoint (Step 1, Step 2 post, Step 3);
- :mod:`.summary` (pure): per-call checks and per-outcome / per-scenario statistics;
- :mod:`.display`: rich rendering (live progress, summary tables);
- :mod:`.options`: the command-line options (light: the CLI imports it to build its parser);
- :mod:`.runner`: runs it all (:func:`~commands.demo.runner.run_demo`).

This package ``__init__`` imports nothing, so that ``orchestrator --help`` stays fast.
"""

from __future__ import annotations
