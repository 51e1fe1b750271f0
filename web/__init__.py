"""The HTTP surface: Quart-Trio routes in front of the orchestrator (SPEC §10 "Routes").

- :mod:`web.app` — ``create_app(service, settings, *, blueprints=())``, JSON errors, body cap;
- :mod:`web.service` — ``CallService``, the protocol the routes need from the orchestrator;
- :mod:`web.health` — ``/healthz``, ``/readyz``; :mod:`web.step2` — ``/responsecollect[.aspx]``;
- :mod:`web.guard` — the hypercorn #225 per-connection guard applied by ``orchestrator.server``.

Nothing is imported here, so importing one submodule (``web.guard`` from the server runner) does
not pull in the routes.
"""

from __future__ import annotations
