"""Referrals, the pure part (``orchestrator.referrals``): validation, API keys, and the campaign
config keys. Plain sync tests; the pool policy is ``tests/actors/test_referral_desk.py``."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from orchestrator.config import API_KEY_MIN_CHARS, Campaign, Settings, parse_settings
from orchestrator.errors import ConfigError, ReferralRejected
from orchestrator.model import LeadDetails
from orchestrator.referrals import (
    given_api_key,
    key_matches,
    key_problem,
    parse_visitor,
    requested_campaign,
    step2_key_problem,
)

KEY = "k" * 24
POOL = ("8005550200", "8005550201", "8005550202")


def acme(**changes: Any) -> Campaign:
    values: dict[str, Any] = {
        "name": "acme",
        "numbers": ("8005550100",),
        "plantype": "Purchase",
        "initial_post_url": "http://customer.test/initial",
        "outcome_post_url": "http://customer.test/outcome",
        "tracking_numbers": POOL,
        "referral_ttl_s": 600.0,
        "api_key": KEY,
    }
    return Campaign(**{**values, **changes})


def visitor(first: str = "Ann", *, referral_id: int = 0) -> LeadDetails:
    return LeadDetails(referral_id, first, "Lee", f"{first} Lee", "Irvine", "CA", "92618")


def one(value: str) -> list[str]:
    return [value]


class TestParseVisitor:
    """POST /referrals fields: the API doc's lengths and formats, every problem at once."""

    def test_all_fields_trimmed_state_uppercased(self) -> None:
        """Names, city, state (upper-cased) and zip come back trimmed; ReferralID still 0."""
        fields = {
            "firstname": [" Ann "],
            "LASTNAME": ["Lee"],
            "FullName": ["Ann Lee"],
            "City": ["Irvine"],
            "st": ["ca"],
            "Zip": ["92618"],
            "campaign": ["acme"],
        }
        assert parse_visitor(fields) == LeadDetails(
            0, "Ann", "Lee", "Ann Lee", "Irvine", "CA", "92618"
        )

    def test_every_field_is_optional(self) -> None:
        """A visitor with no fields at all is still a referral (attribution only)."""
        assert parse_visitor({}) == LeadDetails()

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("FirstName", "A" * 51, "at most 50 characters"),
            ("LastName", "B" * 51, "at most 50 characters"),
            ("FullName", "C" * 101, "at most 100 characters"),
            ("City", "D" * 101, "at most 100 characters"),
            ("St", "California", "2-letter state code"),
            ("St", "C1", "2-letter state code"),
            ("Zip", "9261", "5 digits"),
            ("Zip", "92618-1234", "5 digits"),
            ("FirstName", "Ann\nLee", "control characters"),
        ],
    )
    def test_each_rule_names_its_field(self, field: str, value: str, message: str) -> None:
        """A value breaking a rule is reported under its field, with the rule in the message."""
        with pytest.raises(ReferralRejected) as caught:
            parse_visitor({field: [value]})
        [problem] = caught.value.problems
        assert problem.field == field
        assert message in problem.message

    def test_at_the_limits_is_fine(self) -> None:
        """Exactly 50 / 100 characters are accepted."""
        details = parse_visitor({"FirstName": one("A" * 50), "FullName": one("C" * 100)})
        assert (len(details.first_name), len(details.full_name)) == (50, 100)

    def test_every_problem_is_reported(self) -> None:
        """Several bad fields: all of them are listed."""
        with pytest.raises(ReferralRejected) as caught:
            parse_visitor({"St": one("X"), "Zip": one("abcde"), "LastName": one("L" * 60)})
        assert sorted(p.field for p in caught.value.problems) == ["LastName", "St", "Zip"]

    def test_a_field_twice_with_different_values(self) -> None:
        """FirstName=Ann&FirstName=Bob is ambiguous."""
        with pytest.raises(ReferralRejected) as caught:
            parse_visitor({"FirstName": ["Ann", "Bob"]})
        assert caught.value.problems[0].field == "FirstName"


class TestRequestedCampaign:
    """The campaign field is required and matched case-insensitively."""

    def test_found_case_insensitively(self) -> None:
        assert requested_campaign({"Campaign": [" acme "]}) == "acme"

    @pytest.mark.parametrize("fields", [{}, {"campaign": [""]}, {"campaign": ["a", "b"]}])
    def test_missing_blank_or_ambiguous(self, fields: dict[str, list[str]]) -> None:
        with pytest.raises(ReferralRejected) as caught:
            requested_campaign(fields)
        assert caught.value.problems[0].field == "campaign"


class TestApiKeys:
    """Header or field; constant-time comparison; Step 2 checks only campaigns that ask."""

    def test_header_wins_over_field(self) -> None:
        assert given_api_key("from-header", {"ApiKey": ["from-field"]}) == "from-header"

    def test_field_name_is_case_insensitive(self) -> None:
        assert given_api_key(None, {"apikey": [KEY]}) == KEY
        assert given_api_key("", {"APIKEY": [KEY]}) == KEY

    def test_none_when_absent_or_ambiguous(self) -> None:
        assert given_api_key(None, {}) is None
        assert given_api_key(None, {"ApiKey": [""]}) is None
        assert given_api_key(None, {"ApiKey": ["a", "b"]}) is None

    def test_key_matches(self) -> None:
        """Only the exact key matches; an empty configured key matches nothing."""
        assert key_matches(KEY, KEY)
        assert not key_matches(KEY, KEY[:-1])
        assert not key_matches(KEY, None)
        assert not key_matches("", "")
        assert not key_matches(KEY, "ключ")  # non-ASCII is compared, not an error

    def test_key_problem_messages(self) -> None:
        campaign = acme()
        assert key_problem(campaign, KEY) is None
        assert "missing API key" in (key_problem(campaign, None) or "")
        assert key_problem(campaign, "nope") == "wrong API key"

    def test_step2_only_when_required(self) -> None:
        """Off by default; unknown calls are never refused here (they get their 404)."""
        assert step2_key_problem(acme(), None) is None
        required = acme(step2_requires_key=True)
        assert step2_key_problem(required, None) is not None
        assert step2_key_problem(required, "nope") == "wrong API key"
        assert step2_key_problem(required, KEY) is None
        assert step2_key_problem(None, None) is None


# --- config ------------------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "carrier": {"kind": "simulator"},
    "campaigns": [
        {
            "name": "acme",
            "numbers": ["8005550100"],
            "plantype": "Purchase",
            "initial_post_url": "https://customer.example/initial",
            "outcome_post_url": "https://customer.example/outcome",
        }
    ],
}


def with_campaign(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["campaigns"][0].update(changes)
    return data


def problems_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(data)
    return {p.field: p.message for p in caught.value.problems}


class TestConfigKeys:
    """tracking_numbers, referral_ttl_s, api_key, step2_requires_key: optional and checked."""

    def test_defaults_keep_todays_behaviour(self) -> None:
        campaign = parse_settings(BASE).campaigns[0]
        assert campaign.tracking_numbers == ()
        assert campaign.referral_ttl_s == 3600.0
        assert campaign.api_key == ""
        assert campaign.step2_requires_key is False
        assert not campaign.referrals_enabled

    def test_all_keys(self) -> None:
        settings = parse_settings(
            with_campaign(
                tracking_numbers=["8005550200", "8005550201"],
                referral_ttl_s=900,
                api_key=KEY,
                step2_requires_key=True,
            )
        )
        campaign = settings.campaigns[0]
        assert campaign.tracking_numbers == ("8005550200", "8005550201")
        assert campaign.referral_ttl_s == 900.0
        assert campaign.referrals_enabled
        assert KEY not in repr(campaign)  # never in a repr (nor in log lines)

    def test_tracking_numbers_route_to_their_campaign(self) -> None:
        settings = parse_settings(with_campaign(tracking_numbers=["8005550200"]))
        assert isinstance(settings, Settings)
        found = settings.campaign_for_number("8005550200")
        assert found is not None
        assert found.name == "acme"

    @pytest.mark.parametrize(
        ("changes", "key", "message"),
        [
            ({"tracking_numbers": ["800555020"]}, "campaigns[0].tracking_numbers[0]", "10 digits"),
            (
                {"tracking_numbers": ["8005550100"]},
                "campaigns[0].tracking_numbers[0]",
                "duplicate campaign number",
            ),
            (
                {"tracking_numbers": ["8005550200", "8005550200"]},
                "campaigns[0].tracking_numbers[1]",
                "duplicate campaign number",
            ),
            ({"tracking_numbers": "8005550200"}, "campaigns[0].tracking_numbers", "a list"),
            ({"referral_ttl_s": 0}, "campaigns[0].referral_ttl_s", "greater than 0"),
            ({"api_key": "short"}, "campaigns[0].api_key", f"{API_KEY_MIN_CHARS} characters"),
            ({"api_key": "has a space in it, long"}, "campaigns[0].api_key", "without spaces"),
            ({"step2_requires_key": True}, "campaigns[0].step2_requires_key", "api_key"),
            ({"step2_requires_key": "yes"}, "campaigns[0].step2_requires_key", "true or false"),
        ],
    )
    def test_bad_values_name_their_key(
        self, changes: dict[str, Any], key: str, message: str
    ) -> None:
        problems = problems_of(with_campaign(**changes))
        assert key in problems, problems
        assert message in problems[key]

    def test_tracking_numbers_unique_across_campaigns(self) -> None:
        """Another campaign's number (main or tracking) cannot be a tracking number."""
        data = with_campaign(tracking_numbers=["8005550200"])
        second = {
            **copy.deepcopy(BASE["campaigns"][0]),
            "name": "beta",
            "numbers": ["8005550300"],
            "tracking_numbers": ["8005550200"],
        }
        data["campaigns"].append(second)
        problems = problems_of(data)
        assert "also in campaign 'acme'" in problems["campaigns[1].tracking_numbers[0]"]
