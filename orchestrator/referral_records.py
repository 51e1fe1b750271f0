"""Referrals as the store keeps them (docs/contract.md §7): the :class:`Referral` value and its
write record.

A leaf module beside :mod:`orchestrator.records` (which it extends without editing): it imports
only :mod:`orchestrator.model` and :mod:`orchestrator.records`. The store's writer applies
:data:`StoreRecord` (a call record or a referral record) in the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.model import LeadDetails
from orchestrator.records import Record


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


@dataclass(frozen=True, slots=True)
class ReferralAssigned:
    """A referral was registered: insert it (a second insert of the same id does nothing)."""

    referral: Referral


ReferralRecord = ReferralAssigned
#: Everything the store's writer applies: the call actors' records and the referral records.
StoreRecord = Record | ReferralRecord
