"""The Quart-Trio application: routes, JSON errors, body cap (docs/contract.md §10 "Routes").

:func:`create_app` registers the probes (``/healthz``, ``/readyz``), Step 2
(``/responsecollect[.aspx]``) and any further blueprints (the Plivo webhooks) the wiring passes
in. Every error answer is JSON ``{"error": ...}`` — a 404, 405, 413 or 500 from Quart included —
because every client of this service (customers' integrations, the carrier, probes) is a
program. Request bodies are capped at :data:`MAX_BODY_BYTES` (Step 2 plans and Plivo webhooks
are a few KB). There is no access log: hypercorn's costs 15-19% of throughput
(docs/architecture.md); the routes log what matters as events.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

import structlog
from quart import Blueprint, has_request_context, request
from quart.typing import ResponseReturnValue
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, InternalServerError

from orchestrator.config import Settings
from web.call_service import CallService
from web.fields import MAX_FORM_PARTS
from web.health import create_health_blueprint
from web.step2 import KeyCheck, create_step2_blueprint

logger = structlog.get_logger()

#: Largest request body accepted; larger ones get 413 ``{"error": ...}``.
MAX_BODY_BYTES = 256 * 1024

_ExcInfo = tuple[type, BaseException, TracebackType] | tuple[None, None, None]


class OrchestratorApp(QuartTrio):
    """QuartTrio that reports unhandled route errors as structlog events, not stdlib logging."""

    def log_exception(self, exception_info: _ExcInfo) -> None:
        if has_request_context():
            logger.error(
                "http.request_failed",
                method=request.method,
                path=request.path,
                exc_info=exception_info,
            )
        else:
            logger.error("http.request_failed", exc_info=exception_info)


async def _json_error(error: HTTPException) -> ResponseReturnValue:
    """Render any HTTP error as ``{"error": "<reason>"}``, keeping headers such as ``Allow``."""
    code = error.code or 500
    reason = (error.name or "error").lower()
    if isinstance(error, InternalServerError):
        reason = "internal server error"
    elif code == 413:
        reason = f"request body larger than {MAX_BODY_BYTES} bytes"
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    return {"error": reason}, code, headers


def create_app(
    service: CallService,
    settings: Settings,
    *,
    blueprints: Sequence[Blueprint] = (),
    step2_key_check: KeyCheck | None = None,
) -> QuartTrio:
    """Build the HTTP surface in front of ``service``.

    Args:
        service: the orchestrator (anything satisfying :class:`web.call_service.CallService`).
        settings: the loaded configuration; kept as ``app.config["SETTINGS"]`` for blueprints.
        blueprints: further route groups to register (e.g. the Plivo webhooks, referrals).
        step2_key_check: the optional Step 2 API-key check (``web.step2.step2_key_check``).

    Returns:
        The app, to be served by :func:`server.http.serve_http`.
    """
    app = OrchestratorApp("orchestrator")
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        MAX_FORM_PARTS=MAX_FORM_PARTS,
        # Unhandled errors become JSON 500s even under test, never re-raised into hypercorn.
        PROPAGATE_EXCEPTIONS=False,
        SETTINGS=settings,
    )
    app.register_error_handler(HTTPException, _json_error)
    app.register_blueprint(create_health_blueprint(service))
    app.register_blueprint(create_step2_blueprint(service, key_check=step2_key_check))
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    return app
