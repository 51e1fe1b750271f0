"""Referrals as the store keeps them (docs/contract.md §7): the :class:`Referral` value.

A leaf module: it imports only :mod:`orchestrator.model`. The pool itself (numbers, the
ReferralID sequence) lives in the database (``store.referral_pool``).
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.model import LeadDetails


@dataclass(frozen=True, slots=True)
class Referral:
    """A website visitor registered with ``POST /referrals``.

    ``details`` are the Step 1 fields a call to ``tracking_number`` carries while the referral
    is live (``assigned_at <= now < expires_at``); ``details.referral_id == referral_id``.
    Times are epoch seconds.
    """

    referral_id: int
    campaign: str
    tracking_number: str  # 10 digits, one of the campaign's tracking_numbers
    details: LeadDetails
    assigned_at: float
    expires_at: float

    def live_at(self, now: float) -> bool:
        return now < self.expires_at
