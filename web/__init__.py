"""The HTTP surface: Quart-Trio routes in front of the orchestrator (docs/contract.md §10 "Routes").

- :mod:`web.app` — ``create_app(service, settings, *, blueprints=())``, JSON errors, body cap;
- :mod:`web.call_service` — ``CallService``, the protocol the routes need from the orchestrator;
- :mod:`web.health` — ``/healthz``, ``/readyz``; :mod:`web.step2` — ``/responsecollect[.aspx]``;
- :mod:`server.guard` — the hypercorn #225 per-connection guard applied by ``server.http``.

Nothing is imported here, so importing one submodule (``server.guard`` from the server runner) does
not pull in the routes.
"""

from __future__ import annotations
