"""The operator token: every operator route (call history, live calls, admin actions) needs it.

Sent as ``Authorization: Bearer <token>`` (scripts, ``orchestrator calls``) or as the ``token``
query parameter (the browser's live page and its server-sent events, which cannot set headers).
Compared in constant time. With no ``operator.token`` configured, every operator route answers
401: the operator surface is off.
"""

from __future__ import annotations

import hmac

import structlog
from quart import Blueprint, request
from quart.typing import ResponseReturnValue

logger = structlog.get_logger()

TOKEN_PARAM = "token"


def presented_token() -> str:
    """The token the current request carries (header first, then the query parameter)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.args.get(TOKEN_PARAM, "")


def token_ok(expected: str, presented: str) -> bool:
    return bool(expected) and hmac.compare_digest(expected.encode(), presented.encode())


def require_operator_token(blueprint: Blueprint, token: str) -> None:
    """Guard every route of ``blueprint``: 401 ``{"error": ...}`` unless the token matches."""

    @blueprint.before_request
    async def check() -> ResponseReturnValue | None:
        if token_ok(token, presented_token()):
            return None
        logger.warning(
            "operator.unauthorized",
            path=request.path,
            reason="no operator token configured" if not token else "bad token",
        )
        return {"error": "operator token required"}, 401, {"WWW-Authenticate": "Bearer"}
