"""The simulator's pure pieces: scripts, signing, limits, REST params, webhook fields, config."""

from __future__ import annotations

import pytest
from plivo.utils import validate_v3_signature

from simulator.causes import (
    BUSY,
    CANCELED,
    END_OF_XML,
    NO_ANSWER,
    fetch_error,
    invalid_xml,
    normal_hangup,
)
from simulator.config import (
    ScheduledInbound,
    parse_scenario,
    simulator_config_from_mapping,
)
from simulator.errors import SimulatorConfigError
from simulator.executor import collect_digits
from simulator.limits import CpsGate, RateWindow
from simulator.params import CallIdentity, CallTimes, call_params, hangup_params
from simulator.rest_params import (
    ParamError,
    parse_make_call,
    parse_record,
    parse_transfer,
    wire_number,
)
from simulator.scripts import (
    AgentScript,
    LeadScript,
    ScriptBook,
    ScriptError,
    agent_script_from_dict,
    lead_script_from_dict,
    number_key,
)
from simulator.signing import build_webhook, sign_v3
from simulator.webhooks import RetryPolicy, retry_policy

TOKEN = "SimAuthToken0123456789abcdefABCDEF"


class TestScripts:
    """Scripts parse from plain dicts and report every problem."""

    def test_agent_from_dict(self) -> None:
        """Known keys are typed; TOML integers are accepted for keys and seconds."""
        script = agent_script_from_dict({"answer_after_s": 3, "press": 1, "talk_s": None})
        assert script == AgentScript(answer_after_s=3.0, press="1", talk_s=None)

    def test_silence_is_none(self) -> None:
        """press null/"" means the agent stays silent."""
        assert agent_script_from_dict({"press": None}).press is None
        assert lead_script_from_dict({"press": ""}).press is None

    def test_every_problem_reported(self) -> None:
        """Unknown keys, bad types, negative times and conflicting outcomes are all listed."""
        with pytest.raises(ScriptError) as info:
            agent_script_from_dict(
                {
                    "busy": True,
                    "fail": True,
                    "answer_after_s": -1,
                    "press": "x",
                    "colour": 1,
                    "no_answer": "yes",
                }
            )
        text = "; ".join(info.value.problems)
        for fragment in (
            "colour: unknown key",
            "answer_after_s: must be >= 0",
            "press: must be keys",
            "no_answer: must be true or false",
            "at most one of busy, fail",
        ):
            assert fragment in text

    def test_lead_from_dict(self) -> None:
        """LeadScript fields parse; a non-dict is refused."""
        assert lead_script_from_dict({"message_s": 3, "hangup_after_message": True}) == LeadScript(
            message_s=3.0, hangup_after_message=True
        )
        with pytest.raises(ScriptError):
            lead_script_from_dict(["not", "a", "dict"])

    def test_number_keys(self) -> None:
        """Agent numbers match whatever form the carrier adapter dials."""
        book = ScriptBook(default=AgentScript(answer_after_s=9))
        book.set("+1 (415) 555-0111", AgentScript(busy=True))
        assert book.for_number("14155550111").busy
        assert book.for_number("4155550111").busy
        assert book.for_number("4155550112").answer_after_s == 9
        assert number_key("SIP:Bob@x") == "sip:bob@x"


class TestSigning:
    """Webhook signatures validate with the Plivo SDK's own validator."""

    def test_post_roundtrip(self) -> None:
        """A signed POST validates with the form dict; a tampered form does not."""
        form = {"CallUUID": "c-1", "From": "+14155550100", "Digits": "1", "Name": "café"}
        signed = build_webhook(
            "POST",
            "https://app.example.com/plivo/answer/?leg=a",
            form,
            auth_token=TOKEN,
            nonce="12345",
        )
        sig = signed.headers["X-Plivo-Signature-V3"]
        assert signed.headers["X-Plivo-Signature-V3-Nonce"] == "12345"
        assert validate_v3_signature("POST", signed.url, "12345", TOKEN, sig, dict(form))
        assert not validate_v3_signature(
            "POST", signed.url, "12345", TOKEN, sig, dict(form, Digits="9")
        )

    def test_get_moves_params_into_query(self) -> None:
        """With GET the params go into the query string, which is what gets signed."""
        signed = build_webhook(
            "GET",
            "https://app.example.com/a?x=1#rc=0",
            {"From": "+1415"},
            auth_token=TOKEN,
            nonce="n1",
        )
        assert signed.form == {}
        assert signed.url == "https://app.example.com/a?x=1&From=%2B1415"
        assert validate_v3_signature(
            "GET", signed.url, "n1", TOKEN, signed.headers["X-Plivo-Signature-V3"], None
        )

    def test_ma_signature_uses_main_token(self) -> None:
        """X-Plivo-Signature-Ma-V3 is signed with the main account's token."""
        signed = build_webhook(
            "POST",
            "http://h:8080/p",
            {"a": "b"},
            auth_token=TOKEN,
            main_auth_token="main-token",
            nonce="n",
        )
        assert signed.headers["X-Plivo-Signature-Ma-V3"] == sign_v3(
            "POST", "http://h:8080/p", {"a": "b"}, "main-token", "n"
        )


class TestLimits:
    """CPS queues instead of rejecting; the REST window counts 5-second spans."""

    def test_cps_burst_then_queue(self) -> None:
        """15 requests at 10 CPS: 10 at once, the rest spread over the next second."""
        gate = CpsGate(10)
        starts = [gate.reserve(100.0) for _ in range(15)]
        assert starts[:10] == [100.0] * 10
        assert starts[10:] == pytest.approx([100.1, 100.2, 100.3, 100.4, 100.5])

    def test_cps_refills(self) -> None:
        """Tokens come back at the CPS rate; 0 means unlimited."""
        gate = CpsGate(2)
        assert [gate.reserve(0.0) for _ in range(3)] == [0.0, 0.0, 0.5]
        assert gate.reserve(5.0) == 5.0
        assert CpsGate(0).reserve(1.0) == 1.0

    def test_rate_window(self) -> None:
        """At most N requests per window; the window slides."""
        window = RateWindow(2, window_s=5.0)
        assert [window.allow(t) for t in (0.0, 1.0, 2.0, 5.5)] == [True, True, False, True]
        assert RateWindow(0).allow(0.0)


class TestRestParams:
    """Make Call, transfer and record bodies are validated like Plivo's API."""

    def test_make_call_sdk_body(self) -> None:
        """The JSON the SDK sends parses; numbers lose '+'; ints stay ints."""
        req = parse_make_call(
            {
                "from": "+14155550100",
                "to": "+14155550111",
                "answer_url": "https://a/answer",
                "answer_method": "POST",
                "ring_timeout": 30,
                "time_limit": 600,
                "machine_detection_time": 5000,
                "error_if_parent_not_found": False,
            }
        )
        assert (req.from_number, req.to, req.ring_timeout_s, req.time_limit_s) == (
            "14155550100",
            ("14155550111",),
            30,
            600,
        )
        assert req.hangup_url == "https://a/answer"  # older docs: defaults to answer_url

    def test_bulk_destinations(self) -> None:
        """'<' separates bulk destinations (duplicates collapse)."""
        req = parse_make_call({"from": "1", "to": "2<3<2", "answer_url": "http://a/x"})
        assert req.to == ("2", "3")
        assert req.bulk

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"to": "2", "answer_url": "http://a/x"}, "from is required"),
            ({"from": "1", "answer_url": "http://a/x"}, "to is required"),
            ({"from": "1", "to": "2"}, "answer_url is required"),
            ({"from": "1", "to": "2", "answer_url": "ftp://a"}, "must be an http"),
            ({"from": "1", "to": "1", "answer_url": "http://a/x"}, "cannot overlap"),
            (
                {"from": "1", "to": "2", "answer_url": "http://a/x", "ring_timeout": "x"},
                "ring_timeout must be an integer",
            ),
            (
                {"from": "1", "to": "2", "answer_url": "http://a/x", "answer_method": "PUT"},
                "answer_method must be GET or POST",
            ),
        ],
    )
    def test_make_call_errors(self, body: dict[str, object], message: str) -> None:
        """Missing or invalid parameters raise ParamError (HTTP 400)."""
        with pytest.raises(ParamError, match=message):
            parse_make_call(body)

    def test_transfer_and_record(self) -> None:
        """Transfer needs aleg_url (call_uuid ignored); Record reads its options."""
        xfer = parse_transfer({"call_uuid": "u", "legs": "aleg", "aleg_url": "http://a/x"})
        assert (xfer.aleg_url, xfer.aleg_method) == ("http://a/x", "POST")
        with pytest.raises(ParamError, match="aleg_url is required"):
            parse_transfer({"legs": "aleg"})
        with pytest.raises(ParamError, match="only the A leg"):
            parse_transfer({"legs": "bleg", "bleg_url": "http://a/x"})
        rec = parse_record({"time_limit": 300, "file_format": "wav", "callback_url": "http://a/r"})
        assert (rec.time_limit_s, rec.file_format, rec.callback_url) == (300, "wav", "http://a/r")

    def test_wire_number(self) -> None:
        """Webhook numbers are E.164 without '+'; SIP URIs are untouched."""
        assert wire_number("+1 (415) 555-0100") == "14155550100"
        assert wire_number("sip:a@b") == "sip:a@b"


class TestWebhookFields:
    """Standard, hangup and cause fields (docs/plivo.md §2.2-2.4)."""

    IDENT = CallIdentity("call-1", "outbound", "14155550100", "14155550111", "req-1", "Acme")

    def test_outbound_standard_fields(self) -> None:
        """Outbound requests carry RequestUUID, ALegUUID and ALegRequestUUID."""
        params = call_params(self.IDENT, "in-progress")
        assert params["ALegUUID"] == "call-1"
        assert params["ALegRequestUUID"] == params["RequestUUID"] == "req-1"
        assert params["Direction"] == "outbound"
        assert params["CallerName"] == "Acme"

    def test_hangup_fields(self) -> None:
        """Duration counts from answer; times are Plivo-formatted; cause fields present."""
        times = CallTimes(started=1_700_000_000.0, answered=1_700_000_002.0, ended=1_700_000_012.4)
        params = hangup_params(self.IDENT, normal_hangup("Call recipient"), times)
        assert params["Duration"] == params["BillDuration"] == "11"
        assert params["HangupCauseCode"] == "4000"
        assert params["HangupSource"] == "Call recipient"
        assert params["CallStatus"] == "completed"
        assert params["StartTime"] == "2023-11-14 22:13:20"
        unanswered = hangup_params(
            self.IDENT, NO_ANSWER, CallTimes(1_700_000_000.0, ended=1_700_000_020.0)
        )
        assert unanswered["Duration"] == "0"
        assert unanswered["AnswerTime"] == ""

    def test_causes(self) -> None:
        """The causes the simulator reports."""
        assert (CANCELED.code, CANCELED.status, CANCELED.source) == (1000, "cancel", "API Request")
        assert (BUSY.status, END_OF_XML.code) == ("busy", 4010)
        assert (fetch_error("answer").code, invalid_xml("answer").code) == (7011, 8011)
        assert fetch_error("transfer").name == "Error Reaching Transfer URL"


class TestDigitsAndRetries:
    """Pure rules of GetDigits and of webhook retries."""

    def test_collect_digits(self) -> None:
        """The finish key ends input and is excluded; numDigits caps it."""
        assert collect_digits("12#9", "#", 99) == ("12", True)
        assert collect_digits("123", "", 2) == ("12", True)
        assert collect_digits("1", "#", 3) == ("1", False)
        assert collect_digits("1#", "none", 3) == ("1#", False)

    def test_retry_policy_defaults_and_fragment(self) -> None:
        """One retry on connect/read failures by default; the URL fragment overrides."""
        assert retry_policy("http://a/x") == RetryPolicy()
        policy = retry_policy("http://a/x#ct=500&rt=3000&rc=3&rp=5xx,ct", read_timeout_cap_s=2)
        assert (policy.connect_timeout_s, policy.read_timeout_s, policy.retries) == (0.5, 2, 3)
        assert policy.retry_on == frozenset({"5xx", "ct"})


class TestConfig:
    """Simulator config and scenario files report every problem with its key."""

    def test_scenario(self) -> None:
        """Agents, defaults and inbound calls parse."""
        scenario = parse_scenario(
            {
                "default_agent": {"answer_after_s": 1},
                "agents": {"4155550111": {"busy": True}},
                "inbound": [
                    {"from": "4155550199", "to": "8005550100", "at_s": 2, "lead": {"message_s": 3}}
                ],
            }
        )
        assert scenario.agents["4155550111"].busy
        assert scenario.default_agent == AgentScript(answer_after_s=1.0)
        assert scenario.inbound == (
            ScheduledInbound("4155550199", "8005550100", 2.0, LeadScript(message_s=3.0)),
        )

    def test_config_problems(self) -> None:
        """Bad values and unknown keys are all reported, each naming its key."""
        with pytest.raises(SimulatorConfigError) as info:
            simulator_config_from_mapping(
                {
                    "auth_id": "XX",
                    "time_scale": 0,
                    "answer_url": "nope",
                    "colour": "red",
                    "agents": {"1": {"busy": "yes"}},
                }
            )
        fields = {p.field for p in info.value.problems}
        assert {"auth_id", "time_scale", "answer_url", "colour", "agents.1.busy"} <= fields

    def test_config_values(self) -> None:
        """Valid settings land in SimulatorConfig; scripts merge in."""
        config = simulator_config_from_mapping(
            {
                "bind": "127.0.0.1:0",
                "time_scale": 0.05,
                "cps": 10,
                "default_lead": {"hangup_after_s": 30},
            }
        )
        assert (config.bind, config.time_scale, config.cps) == ("127.0.0.1:0", 0.05, 10.0)
        assert config.default_lead == LeadScript(hangup_after_s=30.0)
