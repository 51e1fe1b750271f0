"""``POST /referrals`` (docs/contract.md §7) and the optional Step 2 API-key check.

**POST /referrals** registers a website visitor and answers the ReferralID and the tracking
number to show. Fields come from the query string plus a form (urlencoded or multipart) or JSON
object body, names matched case-insensitively: ``campaign`` (required), ``FirstName``,
``LastName``, ``FullName``, ``City``, ``St``, ``Zip`` (optional), and the campaign's API key in
the ``X-Api-Key`` header or an ``ApiKey`` field. Answers, in the order they are checked:

- 400 ``{"error": ...}`` — a body that cannot be read;
- 400 ``{"error": "invalid referral", "problems": [{"field", "index", "message"}]}`` — no
  ``campaign``;
- 401 ``{"error": ...}`` — unknown campaign, a campaign without ``api_key`` (referrals off), or a
  missing or wrong key; nothing is registered (the log line ``referral.unauthorized`` says which);
- 400 ``invalid referral`` with every problem of the visitor's fields;
- 409 — the campaign has no ``tracking_numbers``;
- 503 — the referral could not be stored (try again);
- 200 ``{"ReferralID", "TrackingNumber", "campaign", "ExpiresAt" (ISO 8601 UTC), "TTLSeconds"}``
  once the referral is committed to the store, so that its id can never be handed out again.

The Step 2 API-key check (a campaign's ``step2_requires_key``) belongs to Step 2:
:class:`web.step2.Step2KeyCheck`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

import structlog
from quart import Blueprint, request
from quart.typing import ResponseReturnValue

from orchestrator.config import Settings
from orchestrator.errors import (
    BodyError,
    BodyTooLarge,
    NoTrackingNumbers,
    ReferralRejected,
    StoreError,
)
from orchestrator.model import LeadDetails
from orchestrator.referral_records import Referral
from orchestrator.referrals import (
    API_KEY_CHALLENGE,
    API_KEY_HEADER,
    given_api_key,
    key_problem,
    parse_visitor,
    requested_campaign,
)
from web.fields import read_fields

logger = structlog.get_logger()

REFERRALS_PATH = "/referrals"


class Referrals(Protocol):
    """The shared referral pool as the route needs it (``actors.referral_desk.ReferralDesk``)."""

    async def assign(self, campaign: str, visitor: LeadDetails, now: float) -> Referral:
        """The new referral, committed (``NoTrackingNumbers``, ``StoreError``)."""
        ...


def unauthorized(message: str) -> ResponseReturnValue:
    return {"error": message}, 401, {"WWW-Authenticate": API_KEY_CHALLENGE}


def _invalid(exc: ReferralRejected) -> ResponseReturnValue:
    problems = [p.as_dict() for p in exc.problems]
    return {"error": "invalid referral", "problems": problems}, 400


def _iso_utc(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def create_referrals_blueprint(
    referrals: Referrals,
    settings: Settings,
    *,
    now: Callable[[], float] = time.time,
) -> Blueprint:
    """``POST /referrals``: register visitors with ``referrals`` (the shared pool).

    ``now`` is the epoch clock of the referrals' lifetimes (the orchestrator's own clock, which
    calls are attributed with).
    """
    blueprint = Blueprint("referrals", __name__)

    async def register() -> ResponseReturnValue:
        try:
            fields = await read_fields()
        except BodyError as exc:
            logger.warning("referral.rejected", reason=str(exc), problems=0)
            return {"error": str(exc)}, 413 if isinstance(exc, BodyTooLarge) else 400
        try:
            name = requested_campaign(fields)
        except ReferralRejected as exc:
            logger.warning("referral.rejected", problems=1, fields=["campaign"])
            return _invalid(exc)
        campaign = settings.campaign_named(name)
        given = given_api_key(request.headers.get(API_KEY_HEADER), fields)
        if campaign is None or not campaign.api_key:
            reason = "unknown_campaign" if campaign is None else "referrals_disabled"
            logger.warning("referral.unauthorized", campaign=name[:100], reason=reason)
            return unauthorized("missing or wrong API key for this campaign")
        problem = key_problem(campaign, given)
        if problem is not None:
            reason = "missing_key" if given is None else "wrong_key"
            logger.warning("referral.unauthorized", campaign=name, reason=reason)
            return unauthorized(problem)
        try:
            visitor = parse_visitor(fields)
        except ReferralRejected as exc:
            logger.warning(
                "referral.rejected",
                campaign=name,
                problems=len(exc.problems),
                fields=sorted({p.field for p in exc.problems}),
            )
            return _invalid(exc)
        try:
            referral = await referrals.assign(name, visitor, now())
        except NoTrackingNumbers as exc:
            logger.warning("referral.no_tracking_numbers", campaign=name)
            return {"error": str(exc)}, 409
        except StoreError as exc:
            logger.error("referral.store_failed", campaign=name, error=str(exc))
            return {"error": "the referral could not be stored; try again"}, 503
        logger.info(
            "referral.assigned",
            referral_id=referral.referral_id,
            campaign=name,
            tracking_number=referral.tracking_number,
            ttl_s=campaign.referral_ttl_s,
        )
        return {
            "ReferralID": referral.referral_id,
            "TrackingNumber": referral.tracking_number,
            "campaign": name,
            "ExpiresAt": _iso_utc(referral.expires_at),
            "TTLSeconds": campaign.referral_ttl_s,
        }, 200

    blueprint.add_url_rule(REFERRALS_PATH, view_func=register, methods=["POST"])
    return blueprint
