"""An in-memory referral pool: the answers of :mod:`store.referral_pool`, without a database.

For a single process without a store (the MockClock tests); ``tests/actors/
test_referral_desk.py`` runs the same tests against it, SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import trio

from orchestrator.errors import NoTrackingNumbers
from orchestrator.model import LeadDetails
from orchestrator.referral_records import Referral


@dataclass(slots=True)
class _Number:
    campaign: str
    current: Referral | None = None


class MemoryReferralPool:
    """Implements ``orchestrator.ports.ReferralPool`` in memory."""

    def __init__(self) -> None:
        self._numbers: dict[str, _Number] = {}
        self._last_id = 0
        self.referrals: dict[int, Referral] = {}

    async def sync_referral_pool(self, pools: Mapping[str, Sequence[str]]) -> None:
        await trio.lowlevel.checkpoint()
        for campaign, numbers in pools.items():
            for number in numbers:
                found = self._numbers.setdefault(number, _Number(campaign))
                found.campaign = campaign

    async def assign_referral(
        self, campaign: str, visitor: LeadDetails, *, now: float, ttl_s: float
    ) -> tuple[Referral, int | None]:
        await trio.lowlevel.checkpoint()
        pool = sorted(
            (n for n in self._numbers.items() if n[1].campaign == campaign),
            key=lambda item: (
                item[1].current is not None and item[1].current.live_at(now),
                -1.0 if item[1].current is None else item[1].current.assigned_at,
                item[0],
            ),
        )
        if not pool:
            raise NoTrackingNumbers(f"campaign {campaign!r} has no tracking_numbers")
        number, slot = pool[0]
        held = slot.current
        superseded = held.referral_id if held is not None and held.live_at(now) else None
        self._last_id += 1
        referral = Referral(
            self._last_id,
            campaign,
            number,
            replace(visitor, referral_id=self._last_id),
            now,
            now + ttl_s,
        )
        slot.current = self.referrals[referral.referral_id] = referral
        return referral, superseded

    async def referral_on(self, number: str) -> Referral | None:
        await trio.lowlevel.checkpoint()
        found = self._numbers.get(number)
        return None if found is None else found.current
