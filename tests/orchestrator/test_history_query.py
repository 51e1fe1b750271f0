"""The pure parts of the call history: parameters to queries (``store.history``), cursors,
and the rendering, CSV and redaction of ``web.history``. No database, no HTTP, no trio."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from orchestrator.config import Campaign, CarrierSettings, OperatorSettings, Settings
from orchestrator.config import StoreSettings as StoreConfig
from orchestrator.errors import QueryRejected
from orchestrator.history_query import (
    AGENTS_CURSOR,
    CALLS_CURSOR,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    AgentQuery,
    CallQuery,
    decode_cursor,
    encode_cursor,
    parse_agent_query,
    parse_call_query,
    parse_time,
)
from orchestrator.model import CallState, OutcomeKind
from orchestrator.read_models import CallSummary
from web.history import (
    CALL_COLUMNS,
    Redactor,
    call_row,
    csv_cell,
    hangup_reason,
    iso,
    response_format,
    secrets_of,
    to_csv,
    tracking_guid_of,
)

T_ISO = "2026-11-29T10:42:00Z"
T = datetime(2026, 11, 29, 10, 42, tzinfo=UTC).timestamp()


def rejected(params: dict[str, list[str]], *, agents: bool = False) -> dict[str, str]:
    """The problems of ``params`` as {field: message}."""
    with pytest.raises(QueryRejected) as caught:
        (parse_agent_query if agents else parse_call_query)(params)
    return {p.field: p.message for p in caught.value.problems}


class TestParseTime:
    """Times are ISO 8601 (no offset = UTC) or epoch seconds."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            (T_ISO, T),
            ("2026-11-29T10:42:00", T),
            ("2026-11-29T02:42:00-08:00", T),
            ("2026-11-29T10:42:00.500+00:00", T + 0.5),
            ("2026-11-29", T - (10 * 3600 + 42 * 60)),
            (str(int(T)), T),
            (f"{T}", T),
            (f"  {int(T)}  ", T),
        ],
    )
    def test_accepted_forms(self, text: str, expected: float) -> None:
        """Each accepted form gives the same instant."""
        assert parse_time(text) == expected

    @pytest.mark.parametrize("text", ["yesterday", "10:42", "2026-13-01", "-5", "1e9", ""])
    def test_rejected_forms(self, text: str) -> None:
        """Anything else is a ValueError naming both accepted forms."""
        with pytest.raises(ValueError, match="ISO 8601"):
            parse_time(text)


class TestParseCallQuery:
    """``GET /calls`` parameters become a CallQuery, or every problem at once."""

    def test_no_parameters_is_everything_newest_first(self) -> None:
        """Defaults: no filter, 50 rows, first page."""
        assert parse_call_query({}) == CallQuery(limit=DEFAULT_LIMIT)

    def test_every_filter(self) -> None:
        """Each filter is parsed: phone normalised, lists split on commas and repeats."""
        query = parse_call_query(
            {
                "since": [T_ISO],
                "until": [str(int(T) + 60)],
                "campaign": ["acme,beta", "acme"],
                "outcome": ["connected", "HUNG_UP,voicemail"],
                "phone": ["+1 (949) 265-1111"],
                "agent": ["328290"],
                "limit": ["500"],
            }
        )
        assert query == CallQuery(
            since=T,
            until=T + 60,
            campaigns=("acme", "beta"),
            outcomes=(OutcomeKind.CONNECTED, OutcomeKind.HUNG_UP, OutcomeKind.VOICEMAIL),
            phone="9492651111",
            agent_id=328290,
            limit=MAX_LIMIT,
        )

    def test_empty_values_count_as_absent(self) -> None:
        """``?phone=&campaign=`` (an empty form field) filters nothing."""
        assert parse_call_query({"phone": [""], "campaign": [" "], "limit": [""]}) == CallQuery()

    def test_every_problem_is_reported(self) -> None:
        """One request with many bad parameters gets one problem per parameter."""
        problems = rejected(
            {
                "since": ["last week"],
                "outcome": ["won"],
                "phone": ["12345"],
                "agent": ["-3"],
                "limit": ["501"],
                "cursor": ["garbage!"],
                "campain": ["acme"],
            }
        )
        assert set(problems) == {"since", "outcome", "phone", "agent", "limit", "cursor", "campain"}
        assert "connected, voicemail, redirected, hung_up" in problems["outcome"]
        assert "1 to 500" in problems["limit"]
        assert "unknown parameter" in problems["campain"]

    def test_limit_bounds_and_repeats(self) -> None:
        """limit 0 and 501 are refused; a single-valued parameter given twice too."""
        assert "limit" in rejected({"limit": ["0"]})
        assert "limit" in rejected({"limit": ["ten"]})
        assert rejected({"phone": ["9495550000", "9495550001"]}) == {
            "phone": "given more than once"
        }

    def test_window_must_be_ordered(self) -> None:
        """until must be later than since."""
        assert rejected({"since": [T_ISO], "until": [T_ISO]}) == {
            "until": "must be later than since"
        }

    def test_cursor_round_trip(self) -> None:
        """A cursor handed out for calls is accepted back as the key it encodes."""
        cursor = encode_cursor(CALLS_CURSOR, 1764412920.123456, "a-guid")
        assert parse_call_query({"cursor": [cursor]}).after == (1764412920.123456, "a-guid")


class TestParseAgentQuery:
    """``GET /agents`` parameters."""

    def test_filters(self) -> None:
        query = parse_agent_query(
            {
                "since": [T_ISO],
                "phone": ["888-555-1111"],
                "name": ["smith"],
                "agent": ["7"],
                "limit": ["2"],
            }
        )
        assert query == AgentQuery(since=T, phone="8885551111", name="smith", agent_id=7, limit=2)

    def test_call_filters_are_unknown_here(self) -> None:
        """outcome/campaign belong to /calls: 400 for /agents."""
        problems = rejected({"outcome": ["connected"], "campaign": ["acme"]}, agents=True)
        assert set(problems) == {"outcome", "campaign"}

    def test_name_length(self) -> None:
        assert "name" in rejected({"name": ["x" * 101]}, agents=True)


class TestCursor:
    """The cursor is opaque, exact, and tied to its list."""

    def test_exact_float_round_trip(self) -> None:
        """The float key survives exactly (keyset paging compares it for equality)."""
        at = 1764412920.1234567
        assert decode_cursor(AGENTS_CURSOR, encode_cursor(AGENTS_CURSOR, at, 42)) == (at, 42)

    def test_url_safe(self) -> None:
        cursor = encode_cursor(CALLS_CURSOR, 1.5, "?&=/+" * 10)
        assert cursor.replace("-", "").replace("_", "").isalnum()

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "!!!",
            "e30",
            encode_cursor(AGENTS_CURSOR, 1.0, 5),
            encode_cursor(CALLS_CURSOR, 1.0, 5),
            encode_cursor(CALLS_CURSOR, "x", "g"),  # type: ignore[arg-type]
        ],
    )
    def test_foreign_or_garbled_cursors_are_refused(self, text: str) -> None:
        """Garbage, another list's cursor, or wrong key types: ValueError."""
        with pytest.raises(ValueError, match="cursor"):
            decode_cursor(CALLS_CURSOR, text)


def summary(**changes: object) -> CallSummary:
    base = CallSummary(
        tracking_guid="00000000-0000-4000-8000-000000000001",
        campaign="acme",
        lead_phone="9495550001",
        dialled_number="8005550100",
        referral_id=0,
        plantype="Purchase",
        state=CallState.FINISHED,
        started_at=T,
        finished_at=T + 61.25,
        outcome=OutcomeKind.CONNECTED,
        agent1_id=101,
        agent_name="Ann Smith",
        message_link="https://rec.example/r.mp3",
        legs=2,
        tiers=1,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


class TestRendering:
    """Rows, CSV and formats of web.history."""

    def test_iso_times(self) -> None:
        assert iso(T + 0.125) == "2026-11-29T10:42:00.125Z"
        assert iso(None) is None

    def test_call_row(self) -> None:
        """A row has exactly the CSV columns, times ISO, duration in seconds."""
        row = call_row(summary())
        assert tuple(row) == CALL_COLUMNS
        assert (row["started_at"], row["finished_at"], row["duration_s"]) == (
            "2026-11-29T10:42:00.000Z",
            "2026-11-29T10:43:01.250Z",
            61.25,
        )
        assert (row["state"], row["outcome"], row["agent_name"]) == (
            "finished",
            "connected",
            "Ann Smith",
        )
        live = call_row(summary(finished_at=None, outcome=None, state=CallState.DIALLING))
        assert (live["finished_at"], live["duration_s"], live["outcome"]) == (None, None, None)

    def test_csv_parses_back(self) -> None:
        """CSV has a header of the columns and one line per row; parsed back it gives the
        same values (None as empty, quoting of commas and quotes intact)."""
        rows = [
            call_row(summary(agent_name='Smith, "Jr."')),
            call_row(summary(outcome=None, finished_at=None, agent1_id=None)),
        ]
        parsed = list(csv.DictReader(io.StringIO(to_csv(CALL_COLUMNS, rows))))
        assert [r["agent_name"] for r in parsed] == ['Smith, "Jr."', "Ann Smith"]
        assert parsed[0]["duration_s"] == "61.25"
        assert (parsed[1]["outcome"], parsed[1]["agent1_id"], parsed[1]["finished_at"]) == (
            "",
            "",
            "",
        )
        assert list(parsed[0]) == list(CALL_COLUMNS)

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("=HYPERLINK(1)", "'=HYPERLINK(1)"),
            ("+1", "'+1"),
            ("-x", "'-x"),
            ("@a", "'@a"),
            ("Ann", "Ann"),
            (None, ""),
            (True, "1"),
            (False, "0"),
            (3, "3"),
            (2.5, "2.5"),
        ],
    )
    def test_csv_cells(self, value: object, expected: str) -> None:
        """Spreadsheet formulas are defused; None is empty; booleans are 1/0."""
        assert csv_cell(value) == expected

    @pytest.mark.parametrize(
        ("values", "accepted", "expected"),
        [
            ([], None, "json"),
            ([], "application/json", "json"),
            ([], "text/csv", "csv"),
            (["csv"], "application/json", "csv"),
            (["JSON"], "text/csv", "json"),
        ],
    )
    def test_format_negotiation(
        self, values: list[str], accepted: str | None, expected: str
    ) -> None:
        """format= wins over Accept; JSON by default."""
        assert response_format(values, accepted) == expected

    def test_bad_format(self) -> None:
        with pytest.raises(QueryRejected):
            response_format(["xml"], None)
        with pytest.raises(QueryRejected):
            response_format(["csv", "json"], None)

    def test_tracking_guid_of(self) -> None:
        """Any case in, lowercase out; not a UUID is a 400 problem."""
        assert tracking_guid_of("1B4E28BA-2FA1-41D2-883F-0016D3CCA427") == (
            "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
        )
        with pytest.raises(QueryRejected) as caught:
            tracking_guid_of("../agents")
        assert caught.value.problems[0].field == "TrackingGUID"

    def test_hangup_reason(self) -> None:
        assert hangup_reason([]) == "operator"
        assert hangup_reason(["  lead asked  "]) == "lead asked"
        with pytest.raises(QueryRejected):
            hangup_reason(["x" * 201])
        with pytest.raises(QueryRejected):
            hangup_reason(["two\nlines"])


class TestRedaction:
    """No credential in settings ever reaches an answer."""

    def settings(self) -> Settings:
        campaign = Campaign(
            "acme",
            ("8005550100",),
            "Purchase",
            "http://c.test/i",
            "http://c.test/o",
            api_key="campaign-api-key-123",
            outcome_secret="step3-hmac-secret",
        )
        return Settings(
            store=StoreConfig(url="postgresql+psycopg://orch:db-password-9@db/orch"),
            carrier=CarrierSettings(auth_id="MAACCOUNTID000000000", auth_token="plivo-token-xyz"),
            operator=OperatorSettings(token="operator-token-0123456789"),
            campaigns=(campaign,),
        )

    def test_secrets_of_settings(self) -> None:
        """Auth token, operator token, API key, Step 3 secret and DB password; not the
        account's Auth ID (it is in every Plivo recording URL)."""
        assert set(secrets_of(self.settings())) == {
            "plivo-token-xyz",
            "operator-token-0123456789",
            "campaign-api-key-123",
            "step3-hmac-secret",
            "db-password-9",
        }

    def test_scrubs_nested_strings(self) -> None:
        redact = Redactor(secrets_of(self.settings()))
        body = {
            "events": [{"detail": {"error": "401 for token plivo-token-xyz at x"}}],
            "n": 3,
            "ok": True,
            "live": None,
            "keys": ("campaign-api-key-123",),
        }
        assert redact(body) == {
            "events": [{"detail": {"error": "401 for token *** at x"}}],
            "n": 3,
            "ok": True,
            "live": None,
            "keys": ["***"],
        }

    def test_short_secrets_are_ignored(self) -> None:
        """A secret too short to be real would mangle ordinary text: not replaced."""
        assert Redactor(["abc", ""])("abcdef") == "abcdef"
