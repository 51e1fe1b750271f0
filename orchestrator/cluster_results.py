"""What the store answers to the cluster's conditional writes. A leaf module.

Each of these writes is one conditional statement (PostgreSQL decides the race, nothing else
does): claiming a call for its owner, committing a Step 2 plan, giving up on the plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class CallClaim:
    """The answer to claiming a call row: ``claimed``, or the owner that already has it."""

    claimed: bool
    owner_id: str | None = None


class PlanCommit(StrEnum):
    """The answer to committing a plan (``UPDATE calls ... WHERE plan IS NULL AND ...``)."""

    COMMITTED = "committed"  # this plan is now the call's
    IDENTICAL = "identical"  # the call already has this very plan (a customer's retry)
    CONFLICT = "conflict"  # another plan, or the call no longer waits for one
    UNKNOWN = "unknown"  # no such call
