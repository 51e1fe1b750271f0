"""Step 2 routing-plan parsing (docs/contract.md §3): both formats, "no agents", and every
400-worthy rule."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.errors import PlanRejected, Problem
from orchestrator.model import PlanAgent, RoutingPlan
from orchestrator.plan_parser import MAX_AGENTS, parse_routing_plan, plan_fields_present

GUID = "3f2b8c1e-9d4a-4c6b-8e2f-1a2b3c4d5e6f"
OTHER_GUID = "0b6c7d8e-1f2a-4b3c-9d4e-5f6a7b8c9d0e"

# The API doc's Step 2 example URL, verbatim but for a real TrackingGuid (upper case on purpose).
DOC_EXAMPLE_URL = (
    f"http://api.callerready.com/responsecollect.aspx?TrackingGuid={GUID.upper()}"
    "&AgentEmailAddresses=Anthony.Smith@xyz.com,Erin.Jones@xyz.com&AgentFiveMinApps=1,0"
    "&AgentID=328290,328999&AgentNames=Anthony Smith,ErinJones&AgentNMLS=848,352"
    "&AgentPhones=8885551111,9492651111&AgentTier=1,1&AgentRow=1,2"
)

# A valid two-agent list-format request, one string per field as a JSON body might carry it.
LIST_FIELDS: dict[str, str] = {
    "TrackingGUID": GUID,
    "ReferralID": "77",
    "AgentEmailAddresses": "Anthony.Smith@xyz.com,Erin.Jones@xyz.com",
    "AgentFiveMinApps": "1,0",
    "AgentID": "328290,328999",
    "ShowAgentRealID": "0,1",
    "AgentOverrideIVR": "1,0",
    "AgentNames": "Anthony Smith,Erin Jones",
    "AgentNMLS": "848,352",
    "AgentPhones": "8885551111,9492651111",
    "AgentTier": "1,1",
    "AgentRow": "1,2",
}

INDEXED_FIELDS: dict[str, str] = {
    "ReferralID": "0",
    "TrackingGUID": GUID,
    "Agent1ID": "501",
    "Agent1Group": "1",
    "Agent1Phone": "8885551111",
    "Agent1Press1": "1",
    "Agent2ID": "502",
    "Agent2Group": "2",
    "Agent2Phone": "(949) 265-1111",
    "Agent2Press1": "0",
}


def with_changes(base: Mapping[str, str], changes: Mapping[str, str | None]) -> dict[str, str]:
    """``base`` with fields replaced, added, or (value ``None``) removed."""
    fields = dict(base)
    for name, value in changes.items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    return fields


def rejection(fields: Mapping[str, str | Sequence[str]]) -> list[Problem]:
    with pytest.raises(PlanRejected) as info:
        parse_routing_plan(fields)
    assert info.value.problems, "PlanRejected must carry its problems"
    return info.value.problems


def where(problems: Sequence[Problem]) -> list[tuple[str, int | None]]:
    return [(p.field, p.index) for p in problems]


def query(url_or_query: str) -> dict[str, list[str]]:
    """Decode a query string exactly as the web layer does."""
    text = urlsplit(url_or_query).query if "?" in url_or_query else url_or_query
    return parse_qs(text, keep_blank_values=True)


class TestApiDocExamples:
    """The API doc's own examples parse into the plans they describe."""

    def test_list_format_example_verbatim(self) -> None:
        plan = parse_routing_plan(query(DOC_EXAMPLE_URL))
        assert plan == RoutingPlan(
            tracking_guid=GUID,
            referral_id=None,
            agents=(
                PlanAgent(
                    agent_id=328290,
                    phone="8885551111",
                    tier=1,
                    row=1,
                    press1=True,
                    show_real_caller_id=False,
                    name="Anthony Smith",
                    email="Anthony.Smith@xyz.com",
                    nmls="848",
                    five_min_apps=True,
                ),
                PlanAgent(
                    agent_id=328999,
                    phone="9492651111",
                    tier=1,
                    row=2,
                    press1=True,
                    show_real_caller_id=False,
                    name="ErinJones",
                    email="Erin.Jones@xyz.com",
                    nmls="352",
                    five_min_apps=False,
                ),
            ),
        )
        assert [t.number for t in plan.tiers] == [1]

    def test_seventeen_rows_make_tiers_1_3_4_in_order(self) -> None:
        rows = "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"
        tiers = "1,1,3,3,4,4,4,4,4,4,4,4,4,4,4,4,4"
        n = 17
        fields = {
            "TrackingGUID": GUID,
            "AgentEmailAddresses": ",".join(f"lo{i}@xyz.com" for i in range(1, n + 1)),
            "AgentFiveMinApps": ",".join("0" * n),
            "AgentID": ",".join(str(1000 + i) for i in range(1, n + 1)),
            "AgentNames": ",".join(f"Officer {i}" for i in range(1, n + 1)),
            "AgentNMLS": ",".join(str(i) for i in range(1, n + 1)),
            "AgentPhones": ",".join(f"949265{i:04d}" for i in range(1, n + 1)),
            "AgentTier": tiers,
            "AgentRow": rows,
        }
        plan = parse_routing_plan(query(urlencode(fields)))
        assert [(t.number, [a.row for a in t.agents]) for t in plan.tiers] == [
            (1, [1, 2]),
            (3, [3, 4]),
            (4, list(range(5, 18))),
        ]
        assert [a.agent_id for a in plan.agents] == [1000 + i for i in range(1, n + 1)]

    def test_indexed_example_with_two_agents(self) -> None:
        plan = parse_routing_plan(query(urlencode(INDEXED_FIELDS)))
        assert plan == RoutingPlan(
            tracking_guid=GUID,
            referral_id=0,
            agents=(
                PlanAgent(agent_id=501, phone="8885551111", tier=1, row=1, press1=True),
                PlanAgent(agent_id=502, phone="9492651111", tier=2, row=2, press1=False),
            ),
        )

    def test_indexed_agents_sorted_by_group_then_index(self) -> None:
        fields = with_changes(INDEXED_FIELDS, {"Agent1Group": "5", "Agent2Group": "3"})
        plan = parse_routing_plan(fields)
        assert [(a.agent_id, a.tier, a.row) for a in plan.agents] == [(502, 3, 2), (501, 5, 1)]

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param(
                f"ReferralID=0&TrackingGUID={GUID}&Agent1ID=0&Agent1Group=&Agent1Phone="
                "&Agent1Press1=",
                id="Agent1ID=0 with empty others",
            ),
            pytest.param(f"TrackingGUID={GUID}&Agent1ID=0", id="Agent1ID=0 alone"),
        ],
    )
    def test_indexed_no_agents(self, text: str) -> None:
        plan = parse_routing_plan(query(text))
        assert plan.no_agents
        assert plan.agents == ()
        assert plan.tracking_guid == GUID


class TestListFormatShapes:
    """Quoted CSV, case-insensitive names, JSON lists, defaults and normalisation."""

    def test_quoted_csv_element_keeps_its_comma(self) -> None:
        fields = with_changes(LIST_FIELDS, {"AgentNames": '"Smith, Jr.",Erin Jones'})
        for decoded in (fields, query(urlencode(fields))):
            plan = parse_routing_plan(decoded)
            assert [a.name for a in plan.agents] == ["Smith, Jr.", "Erin Jones"]

    def test_quoted_element_after_space(self) -> None:
        fields = with_changes(LIST_FIELDS, {"AgentNames": 'Anthony Smith, "Jones, Erin"'})
        assert [a.name for a in parse_routing_plan(fields).agents] == [
            "Anthony Smith",
            "Jones, Erin",
        ]

    def test_field_names_match_case_insensitively(self) -> None:
        shouty = {
            (name.upper() if i % 2 else name.lower()): value
            for i, name_value in enumerate(LIST_FIELDS.items())
            for name, value in [name_value]
        }
        assert parse_routing_plan(shouty) == parse_routing_plan(LIST_FIELDS)

    def test_problem_uses_canonical_spelling(self) -> None:
        fields = {k.lower(): v for k, v in LIST_FIELDS.items()} | {"agentphones": "1,2"}
        assert where(rejection(fields)) == [("AgentPhones", 1), ("AgentPhones", 2)]

    def test_json_arrays_are_element_lists(self) -> None:
        as_json: dict[str, str | Sequence[str]] = {
            name: value if name in ("TrackingGUID", "ReferralID") else value.split(",")
            for name, value in LIST_FIELDS.items()
        }
        as_json["AgentNames"] = ["Smith, Jr.", "Erin Jones"]  # no quoting needed in an array
        plan = parse_routing_plan(as_json)
        assert [a.name for a in plan.agents] == ["Smith, Jr.", "Erin Jones"]
        assert [a.agent_id for a in plan.agents] == [328290, 328999]

    def test_json_numbers_are_taken_as_text(self) -> None:
        fields: dict[str, object] = dict(LIST_FIELDS)
        fields["AgentID"] = [328290, 328999]
        fields["ReferralID"] = 77
        plan = parse_routing_plan(fields)  # type: ignore[arg-type]  # what json.loads may give
        assert [a.agent_id for a in plan.agents] == [328290, 328999]
        assert plan.referral_id == 77

    def test_repeated_query_keys_are_elements(self) -> None:
        text = urlencode(with_changes(LIST_FIELDS, {"AgentID": None})) + (
            "&AgentID=328290&AgentID=328999"
        )
        assert parse_routing_plan(query(text)) == parse_routing_plan(LIST_FIELDS)

    def test_flags_map_to_press1_and_real_caller_id(self) -> None:
        first, second = parse_routing_plan(LIST_FIELDS).agents
        assert (first.press1, first.show_real_caller_id) == (False, False)  # override IVR
        assert (second.press1, second.show_real_caller_id) == (True, True)

    @pytest.mark.parametrize("blank", [None, ""], ids=["left out", "blank"])
    def test_optional_flags_default_to_zero(self, blank: str | None) -> None:
        fields = with_changes(LIST_FIELDS, {"ShowAgentRealID": blank, "AgentOverrideIVR": blank})
        agents = parse_routing_plan(fields).agents
        assert [(a.press1, a.show_real_caller_id) for a in agents] == [(True, False)] * 2

    def test_elements_trimmed_and_phones_normalised(self) -> None:
        fields = with_changes(
            LIST_FIELDS,
            {
                "AgentPhones": " +1 (888) 555-1111 ,  1-949-265-1111 ",
                "AgentNames": "  Anthony Smith ,Erin Jones  ",
                "AgentID": " 328290 , 328999",
                "TrackingGUID": f"  {GUID.upper()} ",
            },
        )
        plan = parse_routing_plan(fields)
        assert [a.phone for a in plan.agents] == ["8885551111", "9492651111"]
        assert [a.name for a in plan.agents] == ["Anthony Smith", "Erin Jones"]
        assert plan.tracking_guid == GUID

    def test_agents_sorted_by_tier_then_row(self) -> None:
        fields = with_changes(LIST_FIELDS, {"AgentTier": "7,2", "AgentRow": "1,9"})
        agents = parse_routing_plan(fields).agents
        assert [(a.agent_id, a.tier, a.row) for a in agents] == [(328999, 2, 9), (328290, 7, 1)]

    @pytest.mark.parametrize(
        ("referral", "expected"), [("42", 42), ("0", 0), ("", None), (None, None)]
    )
    def test_referral_id_is_optional(self, referral: str | None, expected: int | None) -> None:
        fields = with_changes(LIST_FIELDS, {"ReferralID": referral})
        assert parse_routing_plan(fields).referral_id == expected

    def test_limits_are_inclusive(self) -> None:
        name = "N" * 100
        address = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"
        assert len(address) == 254
        fields = with_changes(
            LIST_FIELDS,
            {
                "AgentNames": f"{name},Erin Jones",
                "AgentEmailAddresses": f"{address},Erin.Jones@xyz.com",
                "AgentNMLS": "N" * 20 + ",",  # an empty NMLS is allowed
                "AgentTier": "0,0",
                "AgentRow": "0,1",
            },
        )
        first, second = parse_routing_plan(fields).agents
        assert (first.name, first.email, first.nmls, first.tier, first.row) == (
            name,
            address,
            "N" * 20,
            0,
            0,
        )
        assert second.nmls == ""


class TestListFormatNoAgents:
    """No agents in the list format: AgentID=0 with blank others, or every list empty."""

    @pytest.mark.parametrize(
        "fields",
        [
            pytest.param({"TrackingGUID": GUID, "AgentID": "0"}, id="AgentID=0 alone"),
            pytest.param(
                {name: ("0" if name == "AgentID" else "") for name in LIST_FIELDS}
                | {"TrackingGUID": GUID},
                id="AgentID=0 and every other list blank",
            ),
            pytest.param(
                {name: "" for name in LIST_FIELDS} | {"TrackingGUID": GUID},
                id="every list present and empty",
            ),
            pytest.param(
                {name: [] for name in LIST_FIELDS if name != "TrackingGUID"}
                | {"TrackingGUID": GUID},
                id="every list an empty JSON array",
            ),
        ],
    )
    def test_no_agents(self, fields: Mapping[str, str | Sequence[str]]) -> None:
        plan = parse_routing_plan(fields)
        assert plan.no_agents
        assert plan.tracking_guid == GUID

    def test_empty_agent_id_alone_is_not_enough(self) -> None:
        problems = rejection({"TrackingGUID": GUID, "AgentID": ""})
        assert {p.field for p in problems} == {
            "AgentEmailAddresses",
            "AgentFiveMinApps",
            "AgentNames",
            "AgentNMLS",
            "AgentPhones",
            "AgentTier",
            "AgentRow",
        }

    def test_zero_with_an_agent_field_is_ambiguous(self) -> None:
        problems = rejection({"TrackingGUID": GUID, "AgentID": "0", "AgentPhones": "8885551111"})
        assert where(problems) == [("AgentPhones", None)]
        assert "blank" in problems[0].message


LONG = "x" * 101

LIST_REJECTIONS = [
    pytest.param(
        {"AgentPhones": "8885551111"}, [("AgentPhones", None)], "1 elements", id="short list"
    ),
    pytest.param({"AgentTier": "1,1,1"}, [("AgentTier", None)], "AgentID has 2", id="long list"),
    pytest.param(
        {"AgentPhones": "8885551111,949265111"},
        [("AgentPhones", 2)],
        "10-digit",
        id="9-digit phone",
    ),
    pytest.param(
        {"AgentPhones": "28885551111,9492651111"},
        [("AgentPhones", 1)],
        "10-digit",
        id="11 digits without 1",
    ),
    pytest.param(
        {"AgentPhones": "888555111x,9492651111"},
        [("AgentPhones", 1)],
        "10-digit",
        id="letter in phone",
    ),
    pytest.param(
        {"AgentPhones": ",9492651111"}, [("AgentPhones", 1)], "required", id="empty phone"
    ),
    pytest.param({"AgentID": "328290,abc"}, [("AgentID", 2)], "integer", id="non-integer id"),
    pytest.param({"AgentID": "328290,3.5"}, [("AgentID", 2)], "integer", id="decimal id"),
    pytest.param(
        {"AgentID": "0,328999"}, [("AgentID", 1)], "more than 0", id="zero id among agents"
    ),
    pytest.param({"AgentID": "-5,328999"}, [("AgentID", 1)], "0 or more", id="negative id"),
    pytest.param(
        {"AgentID": "9223372036854775808,1"}, [("AgentID", 1)], "at most", id="id beyond 64 bits"
    ),
    pytest.param({"AgentTier": "1,one"}, [("AgentTier", 2)], "integer", id="non-integer tier"),
    pytest.param({"AgentTier": "-1,1"}, [("AgentTier", 1)], "0 or more", id="negative tier"),
    pytest.param({"AgentRow": "1,2.0"}, [("AgentRow", 2)], "integer", id="non-integer row"),
    pytest.param({"AgentRow": "-1,2"}, [("AgentRow", 1)], "0 or more", id="negative row"),
    pytest.param(
        {"AgentFiveMinApps": "1,2"}, [("AgentFiveMinApps", 2)], "0 or 1", id="five-min-apps 2"
    ),
    pytest.param(
        {"ShowAgentRealID": "2,0"}, [("ShowAgentRealID", 1)], "0 or 1", id="show-real-id 2"
    ),
    pytest.param(
        {"AgentOverrideIVR": "0,yes"}, [("AgentOverrideIVR", 2)], "0 or 1", id="override yes"
    ),
    pytest.param({"AgentNames": f"{LONG},Erin"}, [("AgentNames", 1)], "100", id="long name"),
    pytest.param({"AgentNames": "Anthony,"}, [("AgentNames", 2)], "required", id="empty name"),
    pytest.param(
        {"AgentNames": "Anthony\x07,Erin"},
        [("AgentNames", 1)],
        "control",
        id="control char in name",
    ),
    pytest.param(
        {"AgentNames": "Anthony\nSmith,Erin"},
        [("AgentNames", None)],
        "comma-separated",
        id="broken csv",
    ),
    pytest.param(
        {"AgentEmailAddresses": "Anthony.Smith@xyz.com,erin"},
        [("AgentEmailAddresses", 2)],
        "e-mail",
        id="bad e-mail",
    ),
    pytest.param(
        {"AgentEmailAddresses": "a@" + "b" * 250 + ".com,e@xyz.com"},
        [("AgentEmailAddresses", 1)],
        "254",
        id="long e-mail",
    ),
    pytest.param(
        {"AgentNMLS": "123456789012345678901,352"}, [("AgentNMLS", 1)], "20", id="long NMLS"
    ),
    pytest.param(
        {"AgentID": "328290,328290"}, [("AgentID", 2)], "element 1", id="duplicate AgentID"
    ),
    pytest.param(
        {"AgentRow": "1,1"}, [("AgentRow", 2)], "tier 1 row 1", id="duplicate tier and row"
    ),
    pytest.param(
        {"TrackingGUID": None}, [("TrackingGUID", None)], "required", id="missing TrackingGUID"
    ),
    pytest.param(
        {"TrackingGUID": ""}, [("TrackingGUID", None)], "required", id="blank TrackingGUID"
    ),
    pytest.param({"TrackingGUID": "1234"}, [("TrackingGUID", None)], "UUID", id="bad TrackingGUID"),
    pytest.param(
        {"TrackingGUID": GUID.replace("-", "")},
        [("TrackingGUID", None)],
        "36",
        id="TrackingGUID without dashes",
    ),
    pytest.param({"ReferralID": "abc"}, [("ReferralID", None)], "integer", id="bad ReferralID"),
    pytest.param(
        {"ReferralID": "-1"}, [("ReferralID", None)], "0 or more", id="negative ReferralID"
    ),
    pytest.param(
        {"trackingguid": OTHER_GUID},
        [("TrackingGUID", None)],
        "more than once",
        id="two TrackingGUIDs",
    ),
    pytest.param({"Agent1ID": "5"}, [("Agent1ID", None)], "mixed", id="mixed formats"),
]


@pytest.mark.parametrize(("changes", "expected", "fragment"), LIST_REJECTIONS)
def test_list_format_rejections(
    changes: Mapping[str, str | None], expected: list[tuple[str, int | None]], fragment: str
) -> None:
    problems = rejection(with_changes(LIST_FIELDS, changes))
    assert where(problems) == expected
    assert fragment in problems[0].message


@pytest.mark.parametrize(
    "name",
    [
        "AgentEmailAddresses",
        "AgentFiveMinApps",
        "AgentID",
        "AgentNames",
        "AgentNMLS",
        "AgentPhones",
        "AgentTier",
        "AgentRow",
    ],
)
def test_every_required_list_is_required(name: str) -> None:
    problems = rejection(with_changes(LIST_FIELDS, {name: None}))
    assert where(problems) == [(name, None)]
    assert "required" in problems[0].message


def test_mixed_formats_name_both_sides() -> None:
    fields = LIST_FIELDS | {"Agent1ID": "5", "Agent1Phone": "8885551111"}
    (problem,) = rejection(fields)
    assert "AgentID" in problem.message
    assert "Agent1ID, Agent1Phone" in problem.message


def test_too_many_agents() -> None:
    n = MAX_AGENTS + 1
    fields = {
        "TrackingGUID": GUID,
        "AgentEmailAddresses": ",".join(f"a{i}@xyz.com" for i in range(n)),
        "AgentFiveMinApps": ",".join("0" * n),
        "AgentID": ",".join(str(i + 1) for i in range(n)),
        "AgentNames": ",".join(f"A{i}" for i in range(n)),
        "AgentNMLS": ",".join("1" * n),
        "AgentPhones": ",".join(f"{9492650000 + i}" for i in range(n)),
        "AgentTier": ",".join("1" * n),
        "AgentRow": ",".join(str(i) for i in range(n)),
    }
    assert where(rejection(fields)) == [("AgentID", None)]


INDEXED_REJECTIONS = [
    pytest.param(
        {
            "Agent2ID": None,
            "Agent2Group": None,
            "Agent2Phone": None,
            "Agent2Press1": None,
            "Agent3ID": "503",
            "Agent3Group": "1",
            "Agent3Phone": "8885552222",
            "Agent3Press1": "1",
        },
        [("Agent2ID", None)],
        "without gaps",
        id="gap at 2",
    ),
    pytest.param({"Agent2Press1": None}, [("Agent2Press1", None)], "required", id="missing Press1"),
    pytest.param({"Agent1Group": None}, [("Agent1Group", None)], "required", id="missing Group"),
    pytest.param({"Agent1Press1": "2"}, [("Agent1Press1", None)], "0 or 1", id="Press1 2"),
    pytest.param({"Agent2Phone": "555-1111"}, [("Agent2Phone", None)], "10-digit", id="bad phone"),
    pytest.param({"Agent2Group": "-2"}, [("Agent2Group", None)], "0 or more", id="negative group"),
    pytest.param({"Agent2ID": "x"}, [("Agent2ID", None)], "integer", id="non-integer id"),
    pytest.param({"Agent2ID": "501"}, [("Agent2ID", None)], "Agent1ID", id="duplicate id"),
    pytest.param({"Agent1ID": "0"}, [("Agent1ID", None)], "more than 0", id="zero beside agent 2"),
    pytest.param({"Agent0ID": "7"}, [("Agent0ID", None)], "from 1", id="agent number 0"),
    pytest.param(
        {"TrackingGUID": "not-a-guid"}, [("TrackingGUID", None)], "UUID", id="bad TrackingGUID"
    ),
]


@pytest.mark.parametrize(("changes", "expected", "fragment"), INDEXED_REJECTIONS)
def test_indexed_format_rejections(
    changes: Mapping[str, str | None], expected: list[tuple[str, int | None]], fragment: str
) -> None:
    problems = rejection(with_changes(INDEXED_FIELDS, changes))
    assert where(problems) == expected
    assert fragment in problems[0].message


def test_indexed_no_agents_with_a_phone_is_ambiguous() -> None:
    fields = {"TrackingGUID": GUID, "Agent1ID": "0", "Agent1Phone": "8885551111"}
    assert where(rejection(fields)) == [("Agent1Phone", None)]


def test_indexed_gaps_each_reported() -> None:
    fields = {
        "TrackingGUID": GUID,
        "Agent4ID": "4",
        "Agent4Group": "1",
        "Agent4Phone": "8885551111",
        "Agent4Press1": "1",
    }
    assert where(rejection(fields)) == [("Agent1ID", None), ("Agent2ID", None), ("Agent3ID", None)]


def test_every_problem_reported_at_once() -> None:
    fields = with_changes(
        LIST_FIELDS,
        {
            "TrackingGUID": "nope",
            "ReferralID": "x",
            "AgentPhones": "123,9492651111",
            "AgentFiveMinApps": "2,0",
            "AgentNames": f"Anthony,{LONG}",
            "AgentEmailAddresses": "bad,worse",
            "AgentRow": None,
            "AgentID": "328290,328290",
        },
    )
    assert sorted(where(rejection(fields)), key=str) == sorted(
        [
            ("TrackingGUID", None),
            ("ReferralID", None),
            ("AgentEmailAddresses", 1),
            ("AgentEmailAddresses", 2),
            ("AgentFiveMinApps", 1),
            ("AgentID", 2),
            ("AgentNames", 2),
            ("AgentPhones", 1),
            ("AgentRow", None),
        ],
        key=str,
    )


def test_unequal_lists_still_report_element_problems() -> None:
    fields = with_changes(LIST_FIELDS, {"AgentPhones": "123", "AgentTier": "1,x,3"})
    assert where(rejection(fields)) == [
        ("AgentPhones", None),
        ("AgentTier", None),
        ("AgentPhones", 1),
        ("AgentTier", 2),
    ]


@pytest.mark.parametrize(
    ("fields", "present"),
    [
        ({}, False),
        ({"TrackingGUID": GUID}, False),
        ({"TrackingGUID": GUID, "ReferralID": "0", "status": "ok"}, False),
        ({"agentid": "1"}, True),
        ({"AgentPhones": ""}, True),
        ({"Agent1ID": "0"}, True),
        ({"agent12press1": "1"}, True),
        ({"Agent1Name": "Erin", "AgentIDs": "1"}, False),
        (query(DOC_EXAMPLE_URL), True),
    ],
)
def test_plan_fields_present(fields: Mapping[str, str | Sequence[str]], present: bool) -> None:
    assert plan_fields_present(fields) is present


# -- property: any plan rendered to list-format fields parses back to itself ---------------

_characters = st.characters(blacklist_categories=("Cc", "Cs"))
_text = st.text(_characters, max_size=100).map(str.strip)
_EMAIL = r"[a-z0-9]{1,10}(\.[a-z0-9+_-]{1,10})?@[a-z]{1,12}\.(com|net|org)"
_agents = st.builds(
    PlanAgent,
    agent_id=st.integers(1, 2**63 - 1),
    phone=st.from_regex(r"[2-9][0-9]{9}", fullmatch=True),
    tier=st.integers(0, 50),
    row=st.integers(0, 50),
    press1=st.booleans(),
    show_real_caller_id=st.booleans(),
    name=_text.filter(bool),
    email=st.from_regex(_EMAIL, fullmatch=True),
    nmls=_text.map(lambda s: s[:20].strip()),
    five_min_apps=st.booleans(),
)


def _csv_line(values: Sequence[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()


def _render(guid: str, referral_id: int | None, agents: Sequence[PlanAgent]) -> dict[str, str]:
    fields = {
        "TrackingGUID": guid,
        "AgentEmailAddresses": _csv_line([a.email for a in agents]),
        "AgentFiveMinApps": _csv_line([int(a.five_min_apps) for a in agents]),
        "AgentID": _csv_line([a.agent_id for a in agents]),
        "ShowAgentRealID": _csv_line([int(a.show_real_caller_id) for a in agents]),
        "AgentOverrideIVR": _csv_line([int(not a.press1) for a in agents]),
        "AgentNames": _csv_line([a.name for a in agents]),
        "AgentNMLS": _csv_line([a.nmls for a in agents]),
        "AgentPhones": _csv_line([a.phone for a in agents]),
        "AgentTier": _csv_line([a.tier for a in agents]),
        "AgentRow": _csv_line([a.row for a in agents]),
    }
    if referral_id is not None:
        fields["ReferralID"] = str(referral_id)
    return fields


@settings(deadline=None)
@given(
    guid=st.uuids(version=4).map(str),
    referral_id=st.none() | st.integers(0, 10**9),
    agents=st.lists(
        _agents, max_size=6, unique_by=(lambda a: a.agent_id, lambda a: (a.tier, a.row))
    ),
    via_query=st.booleans(),
)
def test_rendered_plan_parses_to_itself(
    guid: str, referral_id: int | None, agents: list[PlanAgent], via_query: bool
) -> None:
    fields: Mapping[str, str | Sequence[str]] = _render(guid, referral_id, agents)
    if via_query:
        fields = query(urlencode(fields))
    expected = RoutingPlan(
        tracking_guid=guid,
        referral_id=referral_id,
        agents=tuple(sorted(agents, key=lambda a: (a.tier, a.row))),
    )
    assert parse_routing_plan(fields) == expected


_NAMES = st.sampled_from(
    [
        *LIST_FIELDS,
        *("trackingguid", "AGENTID", "Agent1ID", "Agent1Group", "Agent1Phone", "Agent1Press1"),
        *("Agent2ID", "agent3phone", "Agent0ID", "Agent999999999ID", "Other"),
    ]
)
_VALUES = st.text(max_size=30) | st.lists(st.text(max_size=12), max_size=3)


@settings(deadline=None)
@given(fields=st.dictionaries(_NAMES, _VALUES, max_size=12))
def test_any_input_gives_a_plan_or_problems(fields: dict[str, str | list[str]]) -> None:
    problems: list[Problem] = []
    try:
        plan = parse_routing_plan(fields)
    except PlanRejected as exc:
        problems = exc.problems
    if problems:
        assert all(p.field and p.message for p in problems)
    else:
        assert plan.tracking_guid == plan.tracking_guid.lower()
        assert list(plan.agents) == sorted(plan.agents, key=lambda a: (a.tier, a.row))
