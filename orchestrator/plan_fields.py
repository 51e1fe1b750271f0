"""Step 2 field names, and the shape of request values: case-insensitive keys, CSV elements.

Pure, no I/O. The web layer decodes a GET query, a POST form or a JSON object into a mapping
of field name to one value (``str``) or several (a sequence: a repeated query key, a JSON
array, or the one-element list ``urllib.parse.parse_qs`` makes of every key). This module
sorts that mapping by canonical field name (docs/contract.md §3.1: names match case-insensitively)
and turns the raw values of a list-format field into its elements:

- one value (a ``str``, or a sequence holding one string) is a comma-separated line, read with
  the ``csv`` module, so ``"Smith, Jr.",Erin Jones`` is two elements; a blank line is zero
  elements;
- two or more values (a JSON array, a repeated key) are the elements themselves, not split
  again. A one-element JSON array is therefore read as a CSV line like a plain string: quote an
  element that contains a comma.

Every element is trimmed of surrounding whitespace.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from orchestrator.plan_values import Invalid

#: What the web layer hands over: field name to one value or a list of values.
PlanFields = Mapping[str, str | Sequence[str]]

TRACKING_GUID = "TrackingGUID"
REFERRAL_ID = "ReferralID"

# The list format, in the API doc's order.
AGENT_EMAILS = "AgentEmailAddresses"
AGENT_FIVE_MIN_APPS = "AgentFiveMinApps"
AGENT_ID = "AgentID"
SHOW_AGENT_REAL_ID = "ShowAgentRealID"
AGENT_OVERRIDE_IVR = "AgentOverrideIVR"
AGENT_NAMES = "AgentNames"
AGENT_NMLS = "AgentNMLS"
AGENT_PHONES = "AgentPhones"
AGENT_TIER = "AgentTier"
AGENT_ROW = "AgentRow"

LIST_FIELDS = (
    AGENT_EMAILS,
    AGENT_FIVE_MIN_APPS,
    AGENT_ID,
    SHOW_AGENT_REAL_ID,
    AGENT_OVERRIDE_IVR,
    AGENT_NAMES,
    AGENT_NMLS,
    AGENT_PHONES,
    AGENT_TIER,
    AGENT_ROW,
)
#: List fields that may be left out; each element then defaults to 0.
OPTIONAL_LIST_FIELDS = (SHOW_AGENT_REAL_ID, AGENT_OVERRIDE_IVR)
REQUIRED_LIST_FIELDS = tuple(f for f in LIST_FIELDS if f not in OPTIONAL_LIST_FIELDS)

# The indexed format: Agent{n}ID, Agent{n}Group, Agent{n}Phone, Agent{n}Press1.
INDEXED_PARTS = ("ID", "Group", "Phone", "Press1")

_CANONICAL = {name.casefold(): name for name in (TRACKING_GUID, REFERRAL_ID, *LIST_FIELDS)}
_INDEXED_PART = {part.casefold(): part for part in INDEXED_PARTS}
_INDEXED_KEY = re.compile(r"agent([0-9]{1,9})(id|group|phone|press1)")


def indexed_name(n: int, part: str) -> str:
    """The canonical name of an indexed field: ``indexed_name(2, "Phone") == "Agent2Phone"``."""
    return f"Agent{n}{part}"


@dataclass(slots=True)
class RequestFields:
    """A request's Step 2 fields under canonical names; every value a list of raw strings.

    Keys that differ only in case are merged, values in mapping order. Unknown keys are
    ignored (customers may echo Step 1 fields back).
    """

    scalars: dict[str, list[str]] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    indexed: dict[int, dict[str, list[str]]] = field(default_factory=dict)

    @classmethod
    def collect(cls, fields: PlanFields) -> RequestFields:
        request = cls()
        for key, value in fields.items():
            folded = key.strip().casefold()
            values = _raw_values(value)
            if (name := _CANONICAL.get(folded)) is not None:
                target = request.lists if name in LIST_FIELDS else request.scalars
                target.setdefault(name, []).extend(values)
            elif match := _INDEXED_KEY.fullmatch(folded):
                part = _INDEXED_PART[match.group(2)]
                parts = request.indexed.setdefault(int(match.group(1)), {})
                parts.setdefault(part, []).extend(values)
        return request

    def indexed_names(self) -> list[str]:
        """Canonical names of the indexed fields present, by agent number then part."""
        return [
            indexed_name(n, part)
            for n in sorted(self.indexed)
            for part in INDEXED_PARTS
            if part in self.indexed[n]
        ]


def plan_fields_present(fields: PlanFields) -> bool:
    """Whether ``fields`` carries a routing plan at all: any list-format or indexed agent field.

    ``TrackingGUID`` and ``ReferralID`` alone do not count: a Step 1 response may echo them
    without a plan (docs/contract.md §2.5, synchronous mode).
    """
    request = RequestFields.collect(fields)
    return bool(request.lists or request.indexed)


def single_value(values: Sequence[str]) -> str:
    """The one trimmed value of a scalar field; ``""`` if none.

    Raises:
        Invalid: the field was given more than once with different values.
    """
    distinct = {v.strip() for v in values}
    if len(distinct) > 1:
        raise Invalid("given more than once with different values")
    return distinct.pop() if distinct else ""


def split_elements(values: Sequence[str]) -> list[str]:
    """The trimmed elements of a list-format field (see the module docstring).

    Raises:
        Invalid: the single value is not one line of CSV.
    """
    if len(values) != 1:
        return [v.strip() for v in values]
    line = values[0].strip()
    if not line:
        return []
    try:
        rows = list(csv.reader([line], skipinitialspace=True))
    except csv.Error as exc:
        raise Invalid(f"not a valid comma-separated list: {exc}") from None
    return [element.strip() for row in rows for element in row]


def _raw_values(value: object) -> list[str]:
    # Declared as str | Sequence[str], but a JSON body may still carry numbers or null:
    # every element is made text rather than trusted.
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [_as_text(v) for v in value]
    return [_as_text(value)]


def _as_text(value: object) -> str:
    return "" if value is None else str(value)
