"""Referrals (docs/contract.md §7) and the per-campaign API key: validation and the policy.

Pure: no I/O, no trio (logging aside). The HTTP side is :mod:`web.referrals`; the pool lives in
the database (``store.referral_pool``, shared by every instance) and
``actors.referral_desk`` registers and attributes through it.

**Registering a visitor** (``POST /referrals``): the website sends the visitor's ``FirstName``,
``LastName``, ``FullName``, ``City``, ``St``, ``Zip`` (all optional) and the ``campaign``; field
names match case-insensitively. :func:`parse_visitor` checks the API doc's lengths (names ≤ 50,
full name ≤ 100, city ≤ 100 — our cap, the doc gives none), ``St`` two letters (returned in
upper case), ``Zip`` five digits, no control characters, and reports every problem at once.

**The pool policy**: each campaign hands out its ``tracking_numbers``. A number is *taken*
while its latest referral is live (``now < expires_at``, ``expires_at = assigned_at +
referral_ttl_s``). A new referral gets the least recently assigned number that is free; when
every number is taken (pool exhaustion) it gets the least recently assigned number anyway — the
oldest live referral loses its number (logged as ``referral.pool_exhausted``, warning) and calls
to that number are attributed to the new one from then on.

**Attribution** (at a call's start, before Step 1): a call to a tracking number while its latest
referral is live carries that referral's id and fields in Step 1 (and its id in Step 3);
otherwise it is a direct call (``ReferralID=0``). A referral is not used up by a call: a visitor
who calls twice within the TTL is attributed twice.

**ReferralIDs** are positive, unique and never reused, across every instance sharing the
database: a counter row in the database, incremented under its lock.

**API keys**: a campaign's ``api_key`` authenticates ``POST /referrals`` for it and, with
``step2_requires_key``, its Step 2 plans. The key travels in the ``X-Api-Key`` header or an
``ApiKey`` field (query, form or JSON; name case-insensitive); the header wins when both are
sent. Keys are compared in constant time (:func:`key_matches`).
"""

from __future__ import annotations

import hmac
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from functools import partial

import structlog

from orchestrator.config import Campaign
from orchestrator.errors import Problem, ReferralRejected
from orchestrator.model import LeadDetails
from orchestrator.plan_fields import single_value
from orchestrator.plan_values import Invalid, ProblemList, shown

logger = structlog.get_logger()

FieldsIn = Mapping[str, Sequence[str]]

CAMPAIGN_FIELD = "campaign"
API_KEY_HEADER = "X-Api-Key"
API_KEY_FIELD = "ApiKey"
#: The ``WWW-Authenticate`` challenge sent with every 401 (RFC 9110 asks for one).
API_KEY_CHALLENGE = f'ApiKey header="{API_KEY_HEADER}"'

#: Longest value of each text field (API doc: FirstName/LastName len 50, FullName len 100;
#: City has no length in the doc, 100 is ours).
TEXT_LIMITS = {"FirstName": 50, "LastName": 50, "FullName": 100, "City": 100}

_STATE = re.compile(r"[A-Za-z]{2}")
_ZIP = re.compile(r"[0-9]{5}")


# --- fields ------------------------------------------------------------------------------------


def field_values(fields: FieldsIn, name: str) -> list[str]:
    """Every value of the field ``name``, its name matched case-insensitively."""
    folded = name.casefold()
    return [v for key, values in fields.items() if key.strip().casefold() == folded for v in values]


def requested_campaign(fields: FieldsIn) -> str:
    """The ``campaign`` field, trimmed.

    Raises:
        ReferralRejected: missing, blank, or given twice with different values.
    """
    try:
        name = single_value(field_values(fields, CAMPAIGN_FIELD))
    except Invalid as exc:
        raise ReferralRejected([Problem(CAMPAIGN_FIELD, str(exc))]) from None
    if not name:
        raise ReferralRejected([Problem(CAMPAIGN_FIELD, "required: the campaign's name")])
    return name


def _check_text(text: str, limit: int) -> str:
    if len(text) > limit:
        raise Invalid(f"must be at most {limit} characters, got {len(text)}")
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise Invalid(f"must not contain control characters, got {shown(text)}")
    return text


def _check_state(text: str) -> str:
    if text and not _STATE.fullmatch(text):
        raise Invalid(f"must be a 2-letter state code, got {shown(text)}")
    return text.upper()


def _check_zip(text: str) -> str:
    if text and not _ZIP.fullmatch(text):
        raise Invalid(f"must be 5 digits, got {shown(text)}")
    return text


_CHECKS: dict[str, Callable[[str], str]] = {
    **{name: partial(_check_text, limit=limit) for name, limit in TEXT_LIMITS.items()},
    "St": _check_state,
    "Zip": _check_zip,
}


def parse_visitor(fields: FieldsIn) -> LeadDetails:
    """The visitor's Step 1 fields (``referral_id`` still 0), trimmed and checked.

    Unknown fields (``campaign``, ``ApiKey``, anything else) are ignored.

    Raises:
        ReferralRejected: listing every problem, each naming its field.
    """
    problems = ProblemList()
    values: dict[str, str] = {}
    for name, check in _CHECKS.items():
        try:
            values[name] = check(single_value(field_values(fields, name)))
        except Invalid as exc:
            problems.add(name, str(exc))
    if problems:
        raise ReferralRejected(problems.items)
    return LeadDetails(
        referral_id=0,
        first_name=values["FirstName"],
        last_name=values["LastName"],
        full_name=values["FullName"],
        city=values["City"],
        state=values["St"],
        zip=values["Zip"],
    )


# --- API keys ----------------------------------------------------------------------------------


def given_api_key(header: str | None, fields: FieldsIn) -> str | None:
    """The key the client sent: the ``X-Api-Key`` header, else the ``ApiKey`` field; ``None``
    when neither is given (or the field is given twice with different values)."""
    if header:
        return header.strip()
    try:
        key = single_value(field_values(fields, API_KEY_FIELD))
    except Invalid:
        return None
    return key or None


def key_matches(expected: str, given: str | None) -> bool:
    """Whether ``given`` is ``expected``, compared in constant time; an empty ``expected``
    (no key configured) matches nothing."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def key_problem(campaign: Campaign, given: str | None) -> str | None:
    """Why ``given`` does not authenticate for ``campaign`` (the 401 message), or ``None``."""
    if given is None:
        return f"missing API key: send the {API_KEY_HEADER} header or an {API_KEY_FIELD} field"
    if not key_matches(campaign.api_key, given):
        return "wrong API key"
    return None


def step2_key_problem(campaign: Campaign | None, given: str | None) -> str | None:
    """Why a Step 2 plan for a call of ``campaign`` is refused (the 401 message), or ``None``.

    Only a campaign with ``step2_requires_key`` checks; an unknown call (``campaign is None``)
    is not checked here, so it still gets its 404 whatever the key.
    """
    if campaign is None or not campaign.step2_requires_key:
        return None
    return key_problem(campaign, given)
