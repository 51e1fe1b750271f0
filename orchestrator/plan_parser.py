"""Step 2: turn the customer's routing-plan fields into a :class:`RoutingPlan`
(docs/contract.md §3).

A pure function, no I/O, no trio, no logging: :func:`parse_routing_plan` either returns a
plan or raises :class:`PlanRejected` listing *every* problem found, each as
``Problem(field, message, index)`` with the API doc's spelling of the field and ``index`` the
1-based element of a list field (``None`` for a whole field).

Formats (mixing them in one request is a problem):

- **List format**: ``AgentEmailAddresses, AgentFiveMinApps, AgentID, AgentNames, AgentNMLS,
  AgentPhones, AgentTier, AgentRow`` (required) and ``ShowAgentRealID, AgentOverrideIVR``
  (optional; left out or blank means 0 for every agent), one element per agent, every list the
  same length as ``AgentID``. How values become elements: :mod:`orchestrator.plan_fields`.
- **Indexed format**: ``Agent{n}ID, Agent{n}Group, Agent{n}Phone, Agent{n}Press1`` for
  n = 1, 2, ... without gaps; all four required per agent. ``Group`` is the tier and ``n`` the
  row; ``Press1=0`` means answering is accepting. These plans carry no names or e-mails.

"No agents" (the call goes straight to voicemail, docs/contract.md §5) is a plan with empty
``agents``:

- indexed: ``Agent1ID=0`` and no other agent number; ``Agent1Group/Phone/Press1`` blank or
  left out;
- list: ``AgentID`` is the single element ``0`` and every other list field is blank or left
  out; or every required list field is present and empty (zero elements). An empty
  ``AgentID`` alone is not enough: the other required lists must then be sent, empty.
  A non-blank field next to the ``0`` is a problem (the plan is ambiguous).

Rules besides the formats: ``TrackingGUID`` required, a 36-character UUID, lowercased;
``ReferralID`` optional integer ≥ 0 (blank = not given); phones 10 digits once punctuation
is removed (a leading 1 on 11 digits dropped); ids, tiers and rows integers (tier, row ≥ 0,
AgentID > 0); flags 0 or 1; names 1-100 characters; e-mails valid and ≤ 254 characters; NMLS
≤ 20 characters and may be empty; no control characters in names or NMLS; at most
``MAX_AGENTS`` agents; no AgentID twice; no (tier, row) pair twice. Names, e-mails and NMLS
are kept as given, trimmed. Agents come back sorted by (tier, row).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import TypeVar

from orchestrator import plan_values as rules
from orchestrator.errors import PlanRejected
from orchestrator.model import PlanAgent, RoutingPlan
from orchestrator.plan_fields import (
    AGENT_EMAILS,
    AGENT_FIVE_MIN_APPS,
    AGENT_ID,
    AGENT_NAMES,
    AGENT_NMLS,
    AGENT_OVERRIDE_IVR,
    AGENT_PHONES,
    AGENT_ROW,
    AGENT_TIER,
    INDEXED_PARTS,
    LIST_FIELDS,
    OPTIONAL_LIST_FIELDS,
    REFERRAL_ID,
    REQUIRED_LIST_FIELDS,
    SHOW_AGENT_REAL_ID,
    TRACKING_GUID,
    PlanFields,
    RequestFields,
    indexed_name,
    plan_fields_present,
    single_value,
    split_elements,
)
from orchestrator.plan_values import Invalid, ProblemList

__all__ = ["MAX_AGENTS", "PlanFields", "parse_routing_plan", "plan_fields_present"]

#: The most agents one plan may name; more is a customer bug, not a call to make.
MAX_AGENTS = 1000

_T = TypeVar("_T")

_NO_AGENTS = "0"
_BLANK_WITH_NO_AGENTS = 'must be blank when {} is 0 ("no agents")'
_INDEXED_CHECKS: dict[str, Callable[[str], object]] = {
    "ID": rules.agent_id,
    "Group": rules.integer,
    "Phone": rules.phone,
    "Press1": rules.flag,
}


def parse_routing_plan(fields: PlanFields) -> RoutingPlan:
    """Validate a Step 2 request and build its routing plan.

    Args:
        fields: the request fields as decoded by the web layer; a value is one string or a
            sequence of strings (``parse_qs`` output, a JSON array).

    Returns:
        The plan, agents sorted by (tier, row); empty ``agents`` means "no agents".

    Error handling:
        Raises :class:`PlanRejected` carrying every problem found, never just the first.
    """
    request = RequestFields.collect(fields)
    problems = ProblemList()
    guid = _scalar(problems, request, TRACKING_GUID, rules.tracking_guid)
    referral_id = _scalar(problems, request, REFERRAL_ID, rules.integer, blank_ok=True)
    if request.lists and request.indexed:
        agents = _mixed_formats(problems, request)
    elif request.indexed:
        agents = _indexed_agents(problems, request.indexed)
    else:
        agents = _list_agents(problems, request.lists)
    if problems or guid is None:
        raise PlanRejected(problems.items)
    return RoutingPlan(
        tracking_guid=guid,
        agents=tuple(sorted(agents, key=lambda a: (a.tier, a.row))),
        referral_id=referral_id,
    )


def _scalar(
    problems: ProblemList,
    request: RequestFields,
    name: str,
    convert: Callable[[str], _T],
    *,
    blank_ok: bool = False,
) -> _T | None:
    try:
        text = single_value(request.scalars.get(name, []))
    except Invalid as exc:
        problems.add(name, str(exc))
        return None
    if blank_ok and not text:
        return None
    return problems.check(name, None, convert, text)


def _mixed_formats(problems: ProblemList, request: RequestFields) -> list[PlanAgent]:
    listed = [name for name in LIST_FIELDS if name in request.lists]
    indexed = request.indexed_names()
    problems.add(
        indexed[0],
        f"the indexed format ({_some(indexed)}) cannot be mixed with the list format "
        f"({_some(listed)}) in one request; send one format",
    )
    return []


# -- list format ---------------------------------------------------------------------------


def _list_agents(problems: ProblemList, lists: Mapping[str, Sequence[str]]) -> list[PlanAgent]:
    elements: dict[str, list[str]] = {}
    for name in LIST_FIELDS:
        if name not in lists:
            continue
        try:
            values = split_elements(lists[name])
        except Invalid as exc:
            problems.add(name, str(exc))
            continue
        if values or name not in OPTIONAL_LIST_FIELDS:  # a blank optional list = left out
            elements[name] = values
    if elements.get(AGENT_ID) == [_NO_AGENTS]:
        for name, values in elements.items():
            if name != AGENT_ID and any(values):
                problems.add(name, _BLANK_WITH_NO_AGENTS.format(AGENT_ID))
        return []
    for name in REQUIRED_LIST_FIELDS:
        if name not in lists:
            problems.add(name, "required: a comma-separated list, one element per agent")
    count = _common_count(problems, elements)

    ids = _column(problems, elements, AGENT_ID, rules.agent_id)
    emails = _column(problems, elements, AGENT_EMAILS, rules.email)
    five_min_apps = _column(problems, elements, AGENT_FIVE_MIN_APPS, rules.flag)
    show_real_ids = _column(problems, elements, SHOW_AGENT_REAL_ID, rules.flag, count, False)
    overrides = _column(problems, elements, AGENT_OVERRIDE_IVR, rules.flag, count, False)
    names = _column(problems, elements, AGENT_NAMES, rules.name)
    nmls = _column(problems, elements, AGENT_NMLS, rules.nmls)
    phones = _column(problems, elements, AGENT_PHONES, rules.phone)
    tiers = _column(problems, elements, AGENT_TIER, rules.integer)
    rows = _column(problems, elements, AGENT_ROW, rules.integer)

    for at, first in _repeats(ids):
        problems.add(AGENT_ID, f"duplicate: {ids[at]} is also element {first + 1}", at + 1)
    slots = [None if t is None or r is None else (t, r) for t, r in zip(tiers, rows, strict=False)]
    for at, first in _repeats(slots):
        problems.add(
            AGENT_ROW,
            f"duplicate: tier {tiers[at]} row {rows[at]} is also element {first + 1}",
            at + 1,
        )
    if problems:
        return []
    return [
        PlanAgent(
            agent_id=_known(ids[i]),
            phone=_known(phones[i]),
            tier=_known(tiers[i]),
            row=_known(rows[i]),
            press1=not _known(overrides[i]),
            show_real_caller_id=_known(show_real_ids[i]),
            name=_known(names[i]),
            email=_known(emails[i]),
            nmls=_known(nmls[i]),
            five_min_apps=_known(five_min_apps[i]),
        )
        for i in range(count)
    ]


def _common_count(problems: ProblemList, elements: Mapping[str, Sequence[str]]) -> int:
    """The number of agents: AgentID's element count, which every other list must match."""
    reference = AGENT_ID if AGENT_ID in elements else next(iter(elements), None)
    if reference is None:
        return 0
    count = len(elements[reference])
    for name, values in elements.items():
        if len(values) != count:
            problems.add(
                name,
                f"has {len(values)} elements but {reference} has {count}: "
                "every list needs one element per agent",
            )
    if count > MAX_AGENTS:
        problems.add(reference, f"names {count} agents; at most {MAX_AGENTS} are allowed")
    return count


def _column(
    problems: ProblemList,
    elements: Mapping[str, Sequence[str]],
    name: str,
    convert: Callable[[str], _T],
    count: int = 0,
    default: _T | None = None,
) -> list[_T | None]:
    """Each element of list ``name`` converted (``None`` where invalid); a left-out list
    gives ``count`` times ``default``."""
    if name not in elements:
        return [default] * count
    return [
        problems.check(name, i, convert, text) for i, text in enumerate(elements[name], start=1)
    ]


# -- indexed format ------------------------------------------------------------------------


def _indexed_agents(
    problems: ProblemList, indexed: Mapping[int, Mapping[str, Sequence[str]]]
) -> list[PlanAgent]:
    texts: dict[int, dict[str, str | None]] = {}
    for n in sorted(indexed):
        if not 1 <= n <= MAX_AGENTS:
            for part in indexed[n]:
                problems.add(
                    indexed_name(n, part), f"agents are numbered from 1 to at most {MAX_AGENTS}"
                )
            continue
        texts[n] = {part: _indexed_text(problems, n, part, v) for part, v in indexed[n].items()}

    if list(indexed) == [1] and texts[1].get("ID") == _NO_AGENTS:
        for part in INDEXED_PARTS[1:]:
            if texts[1].get(part):
                problems.add(indexed_name(1, part), _BLANK_WITH_NO_AGENTS.format("Agent1ID"))
        return []

    top = max(texts, default=0)
    for n in range(1, top + 1):
        if n not in texts:
            problems.add(
                indexed_name(n, "ID"),
                f"missing: agents must be numbered 1 to {top} without gaps, Agent{n} is absent",
            )
    values = {n: _indexed_values(problems, n, parts) for n, parts in texts.items()}
    numbers = list(values)
    ids = [values[n].get("ID") for n in numbers]
    for at, first in _repeats(ids):
        problems.add(
            indexed_name(numbers[at], "ID"),
            f"duplicate: {ids[at]} is also {indexed_name(numbers[first], 'ID')}",
        )
    if problems:
        return []
    return [
        PlanAgent(
            agent_id=_typed(agent["ID"], int),
            phone=_typed(agent["Phone"], str),
            tier=_typed(agent["Group"], int),
            row=n,
            press1=_typed(agent["Press1"], bool),
        )
        for n, agent in values.items()
    ]


def _indexed_text(problems: ProblemList, n: int, part: str, values: Sequence[str]) -> str | None:
    try:
        return single_value(values)
    except Invalid as exc:
        problems.add(indexed_name(n, part), str(exc))
        return None


def _indexed_values(
    problems: ProblemList, n: int, texts: Mapping[str, str | None]
) -> dict[str, object]:
    """The converted fields of agent ``n``; a missing or invalid one is left out."""
    values: dict[str, object] = {}
    for part, convert in _INDEXED_CHECKS.items():
        name = indexed_name(n, part)
        if part not in texts:
            problems.add(
                name,
                f"required: every agent needs Agent{n}ID, Agent{n}Group, Agent{n}Phone "
                f"and Agent{n}Press1",
            )
        elif (text := texts[part]) is not None:
            value = problems.check(name, None, convert, text)
            if value is not None:
                values[part] = value
    return values


# -- helpers -------------------------------------------------------------------------------


def _repeats(keys: Sequence[Hashable | None]) -> Iterator[tuple[int, int]]:
    """``(position, first position)`` of every key seen before; ``None`` keys are skipped."""
    first: dict[Hashable, int] = {}
    for at, key in enumerate(keys):
        if key is None:
            continue
        if key in first:
            yield at, first[key]
        else:
            first[key] = at


def _known(value: _T | None) -> _T:
    # Called only once validation found no problem, so every element converted.
    if value is None:
        raise RuntimeError("plan element missing after validation")
    return value


def _typed(value: object, kind: type[_T]) -> _T:
    # As _known, for the indexed format's mixed-type fields.
    if not isinstance(value, kind):
        raise RuntimeError(f"plan field is {type(value).__name__}, expected {kind.__name__}")
    return value


def _some(names: Sequence[str], shown: int = 4) -> str:
    return ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")
