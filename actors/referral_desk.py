"""Referrals (docs/contract.md §7) over the shared pool: registering visitors, attributing calls.

The policy is decided where the pool lives (``store.referral_pool``: in the database, so every
instance of a cluster shares one pool and one ReferralID sequence); this actor maps campaigns to
their pools and lifetimes and says what happened in the log:

- :meth:`ReferralDesk.assign` (``POST /referrals``): the new referral, committed before the
  visitor gets an answer; an exhausted pool supersedes its oldest live referral
  (``referral.pool_exhausted``, warning);
- :meth:`ReferralDesk.attribute` (a call's start, before Step 1 — never the lead's answer
  path): the Step 1 fields of the live referral on the dialled number, else ``None`` (a direct
  call, ReferralID 0). A pool that cannot be read makes the call a direct call, logged as an
  error: a lead is never held up for it.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from orchestrator.config import Campaign
from orchestrator.errors import NoTrackingNumbers, StoreError
from orchestrator.model import LeadDetails
from orchestrator.ports import ReferralPool
from orchestrator.referral_records import Referral

logger = structlog.get_logger()


class ReferralDesk:
    """See the module docstring."""

    def __init__(self, campaigns: Iterable[Campaign], pool: ReferralPool) -> None:
        self._pool = pool
        self._campaigns = {c.name: c for c in campaigns if c.tracking_numbers}
        self._owner = {n: c.name for c in self._campaigns.values() for n in c.tracking_numbers}

    async def open(self) -> None:
        """Make the configured pools (at start)."""
        pools = {name: c.tracking_numbers for name, c in self._campaigns.items()}
        await self._pool.sync_referral_pool(pools)

    def is_tracking_number(self, number: str) -> bool:
        return number in self._owner

    async def assign(self, campaign: str, visitor: LeadDetails, now: float) -> Referral:
        """Register ``visitor`` for ``campaign``.

        Raises:
            NoTrackingNumbers: the campaign has no tracking numbers (or is unknown).
            StoreError: the pool could not be written (nothing was assigned).
        """
        found = self._campaigns.get(campaign)
        if found is None:
            raise NoTrackingNumbers(f"campaign {campaign!r} has no tracking_numbers")
        referral, superseded = await self._pool.assign_referral(
            campaign, visitor, now=now, ttl_s=found.referral_ttl_s
        )
        if superseded is not None:
            logger.warning(
                "referral.pool_exhausted",
                campaign=campaign,
                tracking_number=referral.tracking_number,
                pool_size=len(found.tracking_numbers),
                superseded_referral_id=superseded,
            )
        return referral

    async def attribute(self, dialled_number: str, now: float) -> LeadDetails | None:
        """The Step 1 fields of the live referral on ``dialled_number``, or None."""
        campaign = self._owner.get(dialled_number)
        if campaign is None:
            return None
        try:
            referral = await self._pool.referral_on(dialled_number)
        except StoreError as exc:
            logger.error("referral.unreadable", tracking_number=dialled_number, error=str(exc))
            return None
        if referral is None or referral.campaign != campaign:
            return None
        if not referral.live_at(now):
            logger.info(
                "referral.expired_on_call",
                referral_id=referral.referral_id,
                tracking_number=dialled_number,
                expired_s_ago=round(now - referral.expires_at, 3),
            )
            return None
        logger.info(
            "referral.attributed",
            referral_id=referral.referral_id,
            tracking_number=dialled_number,
            campaign=campaign,
        )
        return referral.details
