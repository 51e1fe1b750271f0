"""``orchestrator demo``: the pure scenario/plan/summary logic, the CLI row, and whole runs.

The end-to-end runs start the real service (``run_service``), the simulator and the sample
customer on 127.0.0.1 with real sockets and real (short) timeouts; no autojump clock.
"""

from __future__ import annotations

import io
import json
import sqlite3
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest
import structlog
from rich.console import Console

from commands.demo.options import DemoOptions
from commands.demo.plans import csv_line, form_body, plan_fields
from commands.demo.progress import snapshot
from commands.demo.runner import (
    DB_FILE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Tee,
    exit_status,
    prepare_output,
    run_demo,
)
from commands.demo.scenarios import (
    SCENARIOS,
    Scenario,
    agent_scripts,
    lead_phone,
    scenario_for_phone,
    schedule,
)
from commands.demo.summary import (
    CallReport,
    FinishedLine,
    StoredCall,
    build_reports,
    outcome_stats,
    parse_finished_lines,
    scenario_stats,
)
from commands.main import main
from orchestrator.customer_client import parse_reply_body
from orchestrator.model import OutcomeKind
from orchestrator.plan_parser import parse_routing_plan

GUID = "0b9f3c1e-2a44-4d7e-9a51-3f0c2d6e8a10"
BY_NAME = {s.name: s for s in SCENARIOS}


def _recording_console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=140, color_system=None), buffer


# --- pure parts ---------------------------------------------------------------------------------


class TestScenarios:
    def test_every_path_is_covered(self) -> None:
        """The table covers connected, escalation, decline, voicemail, hang-up, no agents."""
        assert set(BY_NAME) == {
            "connected",
            "escalation",
            "decline",
            "voicemail",
            "lead-hangup",
            "no-agents",
        }
        # every outcome but an IVR redirect: the demo campaign asks no IVR question
        assert {s.expected for s in SCENARIOS} == set(OutcomeKind) - {OutcomeKind.REDIRECTED}
        assert {s.synchronous for s in SCENARIOS} == {True, False}
        assert BY_NAME["no-agents"].agents == ()
        assert [a.tier for a in BY_NAME["escalation"].agents] == [1, 1, 3]

    def test_lead_phone_round_trips_to_its_scenario(self) -> None:
        """The customer finds a call's scenario from the lead's number alone."""
        for scenario in SCENARIOS:
            phone = lead_phone(scenario, 42)
            assert len(phone) == 10
            assert phone.isdigit()
            assert scenario_for_phone(phone) is scenario

    def test_strangers_have_no_scenario(self) -> None:
        """Numbers outside the demo's block, or with an unknown code, are not placed."""
        assert scenario_for_phone("4155550100") is None
        assert scenario_for_phone("9495590001") is None
        assert scenario_for_phone("949551") is None

    def test_schedule_is_round_robin_with_distinct_leads(self) -> None:
        """Scenarios take turns; every call has its own lead number."""
        planned = schedule(14)
        assert [s.code for s, _ in planned[:7]] == [1, 2, 3, 4, 5, 6, 1]
        assert len({phone for _, phone in planned}) == 14

    def test_every_agent_phone_has_one_script(self) -> None:
        """Agent phones never collide across scenarios (the simulator keys scripts by phone)."""
        phones = [a.phone for s in SCENARIOS for a in s.agents]
        assert len(phones) == len(set(phones)) == len(agent_scripts())


class TestPlans:
    @pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.agents], ids=lambda s: s.name)
    def test_list_format_parses_to_the_scenarios_agents(self, scenario: Scenario) -> None:
        """The customer's list-format plan is what the service's Step 2 parser accepts."""
        fields = plan_fields(scenario, tracking_guid=GUID, referral_id="0")
        plan = parse_routing_plan(fields)
        assert plan.tracking_guid == GUID
        got = {(a.agent_id, a.phone, a.tier, a.row, a.press1, a.name) for a in plan.agents}
        want = {
            (a.agent_id, a.phone, a.tier, a.row, not a.override_ivr, a.name)
            for a in scenario.agents
        }
        assert got == want

    def test_quoted_csv_element_survives(self) -> None:
        """A name holding a comma is quoted and comes back whole."""
        assert csv_line(["Kim Tanaka", "Lou Park, Jr."]) == 'Kim Tanaka,"Lou Park, Jr."'
        plan = parse_routing_plan(
            plan_fields(BY_NAME["lead-hangup"], tracking_guid=GUID, referral_id="0")
        )
        assert [a.name for a in plan.agents] == ["Kim Tanaka", "Lou Park, Jr."]

    def test_no_agents_plan_in_the_api_docs_words(self) -> None:
        """ "No agents" is Agent1ID=0 with empty group/phone/press1; it parses as no agents."""
        fields = plan_fields(BY_NAME["no-agents"], tracking_guid=GUID, referral_id="0")
        assert fields["Agent1ID"] == "0"
        assert fields["Agent1Phone"] == ""
        assert parse_routing_plan(fields).no_agents

    def test_synchronous_body_reads_back_as_the_plan(self) -> None:
        """The form-encoded Step 1 body is read by the service as the same plan."""
        fields = plan_fields(BY_NAME["decline"], tracking_guid=GUID, referral_id="0")
        body = parse_reply_body("application/x-www-form-urlencoded", form_body(fields))
        assert parse_routing_plan(body) == parse_routing_plan(fields)


def _line(
    guid: str, outcome: str, agent1: int, legs: int = 2, ttc: float | None = None
) -> FinishedLine:
    return FinishedLine(guid, outcome, agent1, legs, (1,), ttc, 1.0)


def _report(
    scenario: Scenario,
    *,
    posted: dict[str, str] | None,
    line: FinishedLine | None,
    stored: StoredCall | None,
    step1_seen: bool = True,
) -> CallReport:
    return CallReport(
        0,
        scenario,
        lead_phone(scenario, 0),
        GUID,
        (posted,) if posted else (),
        (line,) if line else (),
        stored,
        step1_seen,
    )


class TestChecks:
    def test_expected_call_has_no_problem(self) -> None:
        """Post, log line and stored row agree with the scenario: nothing to report."""
        s = BY_NAME["connected"]
        agent = str(s.expected_agent1_id)
        report = _report(
            s,
            posted={"Agent1ID": agent, "MessageLink": "http://x/r.mp3", "TrackingGUID": GUID},
            line=_line(GUID, "connected", s.expected_agent1_id),
            stored=StoredCall(GUID, "x", "connected", s.expected_agent1_id),
        )
        assert report.problems() == []

    def test_wrong_winner_is_reported(self) -> None:
        """Another agent than the expected one winning is a failure, named precisely."""
        s = BY_NAME["decline"]
        wrong = s.agents[0].agent_id
        report = _report(
            s,
            posted={"Agent1ID": str(wrong), "MessageLink": "http://x/r.mp3"},
            line=_line(GUID, "connected", wrong),
            stored=StoredCall(GUID, "x", "connected", wrong),
        )
        assert report.problems() == [
            f"expected connected→{s.expected_agent1_id}, the customer got connected→{wrong}"
        ]

    def test_missing_witnesses_are_reported(self) -> None:
        """No Step 1, no Step 3 post, no log line, no stored row: each is its own problem."""
        report = _report(
            BY_NAME["voicemail"], posted=None, line=None, stored=None, step1_seen=False
        )
        assert report.problems() == [
            "no Step 1 GET reached the customer",
            "no Step 3 outcome was posted to the customer",
            "0 call.finished log lines (want 1)",
            "no row in the calls table",
        ]

    def test_voicemail_without_link_and_disagreeing_store(self) -> None:
        """A voicemail needs its MessageLink; the calls table must agree with the post."""
        report = _report(
            BY_NAME["no-agents"],
            posted={"Agent1ID": "0", "MessageLink": ""},
            line=_line(GUID, "voicemail", 0),
            stored=StoredCall(GUID, "x", "hung_up", 999999),
        )
        assert report.problems() == [
            "voicemail outcome posted without a MessageLink",
            "calls table says hung_up/999999, the customer got voicemail/0",
        ]

    def test_exit_status(self) -> None:
        """0 only without problems; 130 when interrupted."""
        assert exit_status(interrupted=False, problems=[]) == EXIT_OK
        assert exit_status(interrupted=False, problems=["x"]) == EXIT_FAILED
        assert exit_status(interrupted=True, problems=["x"]) == EXIT_INTERRUPTED


class TestStatistics:
    def test_log_lines_and_means(self) -> None:
        """call.finished lines are read from JSON logs; means are per actual outcome."""
        lines = [
            json.dumps(
                {
                    "event": "call.finished",
                    "tracking_guid": g,
                    "outcome": "connected",
                    "agent1_id": 321001,
                    "legs": legs,
                    "tiers_tried": [1],
                    "time_to_connect_s": ttc,
                    "duration_s": 2.0,
                }
            ).encode()
            for g, legs, ttc in (("a", 2, 0.2), ("b", 4, 0.4))
        ] + [b'{"event": "call.started"}', b"not json"]
        finished = parse_finished_lines(lines)
        assert [f.tracking_guid for f in finished] == ["a", "b"]
        s = BY_NAME["connected"]
        planned = [(s, lead_phone(s, 0)), (s, lead_phone(s, 1))]
        posted = {"Agent1ID": "321001", "MessageLink": "http://x"}
        reports = build_reports(
            planned,
            guid_by_phone={planned[0][1]: "a", planned[1][1]: "b"},
            posts={"a": [posted], "b": [posted]},
            finished=finished,
            stored=[
                StoredCall("a", planned[0][1], "connected", 321001),
                StoredCall("b", planned[1][1], "connected", 321001),
            ],
        )
        [stat] = outcome_stats(reports)
        assert (stat.outcome, stat.calls, stat.legs_per_call) == ("connected", 2, 3.0)
        assert stat.mean_time_to_connect_s == pytest.approx(0.3)
        [per_scenario] = scenario_stats(reports, SCENARIOS)
        assert (per_scenario.calls, per_scenario.as_expected) == (2, 2)

    def test_progress_counts_stages(self) -> None:
        """The live view counts placed, routing, finished, right and wrong per scenario."""
        s = BY_NAME["lead-hangup"]
        planned = [(s, lead_phone(s, i)) for i in range(4)]
        snap = snapshot(
            planned,
            3,
            scenarios=SCENARIOS,
            guid_by_phone={planned[0][1]: "a", planned[1][1]: "b", planned[2][1]: "c"},
            outcomes={"a": {"Agent1ID": "999999"}, "b": {"Agent1ID": "0"}},
            elapsed_s=1.0,
            simulator_live=1,
            simulator_placed=3,
        )
        [row] = snap.rows
        assert (row.placed, row.routing, row.finished, row.as_expected, row.unexpected) == (
            3,
            1,
            2,
            1,
            1,
        )
        assert (snap.planned, snap.finished, snap.unexpected) == (4, 2, 1)


class TestOutputDirectory:
    def test_rerun_starts_a_fresh_database(self, tmp_path: Path) -> None:
        """A previous run's database (and WAL files) is removed; the directory is created."""
        out = tmp_path / "a" / "b"
        log, db = prepare_output(out)
        assert out.is_dir()
        assert (log.parent, db.name) == (out.resolve(), DB_FILE)
        for name in (DB_FILE, DB_FILE + "-wal", DB_FILE + "-shm"):
            (out / name).write_bytes(b"old")
        prepare_output(out)
        assert not any((out / n).exists() for n in (DB_FILE, DB_FILE + "-wal", DB_FILE + "-shm"))


class TestCommandLine:
    def test_help_explains_the_demo(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``orchestrator demo --help`` exits 0 and names the defaults and the outputs."""
        assert main(["demo", "--help"]) == 0
        out = capsys.readouterr().out
        for text in (
            "--calls",
            "default: 24",
            "--rate",
            "default: 4",
            "--time-scale",
            "default: 0.05",
            "--output",
            "default: demo-output",
            "orchestrator.log",
            "orchestrator.db",
            "voicemail",
        ):
            assert text in out

    def test_bad_options_are_usage_errors(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Zero calls, a negative rate, a time scale above real time: exit 2."""
        for argv in (["--calls", "0"], ["--rate", "-1"], ["--time-scale", "2"]):
            assert main(["demo", *argv]) == 2
        assert "must be" in capsys.readouterr().err


# --- whole runs ----------------------------------------------------------------------------------


def _stored_calls(db_path: Path) -> dict[str, tuple[str, int, str]]:
    with closing(sqlite3.connect(db_path)) as db:
        rows = db.execute(
            "SELECT lead_phone, outcome, agent1_id, message_link FROM calls"
        ).fetchall()
    return {phone: (outcome, agent1, link or "") for phone, outcome, agent1, link in rows}


@pytest.mark.e2e
class TestDemoRun:
    async def test_every_scenario_gets_its_outcome(self, tmp_path: Path) -> None:
        """12 calls: exit 0; Step 3 posts, the calls table and the log all agree with each
        scenario; the simulator is idle; logging is restored."""
        console, out = _recording_console()
        progress, _ = _recording_console()
        logging_before = structlog.get_config()
        piped = io.BytesIO()  # `orchestrator demo | orchestrator tail`: the log on stdout too
        result = await run_demo(
            DemoOptions(calls=12, rate=10.0, output=tmp_path / "demo"),
            console=console,
            progress_console=progress,
            log_stream=piped,
        )
        assert result.problems == ()
        assert result.exit_code == EXIT_OK
        assert structlog.get_config() == logging_before

        # the sample customer's Step 3 posts: one outcome per call, the expected Agent1ID
        posts = {seen.tracking_guid: seen for seen in result.step3}
        assert len(posts) == 12
        assert {r.scenario.name for r in result.reports} == set(BY_NAME)
        for report in result.reports:
            assert report.tracking_guid is not None
            seen = posts[report.tracking_guid]
            assert seen.idempotency_key == report.tracking_guid
            assert seen.fields["Agent1ID"] == str(report.scenario.expected_agent1_id)
            if report.scenario.expected is not OutcomeKind.HUNG_UP:
                assert seen.fields["MessageLink"].startswith("http://127.0.0.1:")

        # the SQLite calls table, read independently
        stored = _stored_calls(result.db_path)
        assert len(stored) == 12
        for report in result.reports:
            outcome, agent1, link = stored[report.lead_phone]
            assert (outcome, agent1) == (
                report.scenario.expected.value,
                report.scenario.expected_agent1_id,
            )
            assert link == posts[str(report.tracking_guid)].fields["MessageLink"]

        # one canonical call.finished line per call in the log file
        lines = result.log_path.read_bytes().splitlines()
        finished = [json.loads(x) for x in lines if b'"call.finished"' in x]
        assert sorted(f["tracking_guid"] for f in finished) == sorted(posts)
        assert any(b'"sim.call.placed"' in x for x in lines)  # the simulator logs there too
        assert piped.getvalue().splitlines() == lines  # the pipe got every line as well

        assert result.live_calls == ()
        text = out.getvalue()
        assert "OK: 12/12 calls as expected" in text
        assert str(result.db_path) in text
        assert str(result.log_path) in text

    async def test_an_unexpected_outcome_fails_the_run(self, tmp_path: Path) -> None:
        """A scenario expecting the wrong winner: exit 1, and the summary says what went wrong."""
        decline = BY_NAME["decline"]
        wrong = replace(decline, expected_agent1_id=decline.agents[0].agent_id)
        console, out = _recording_console()
        progress, _ = _recording_console()
        result = await run_demo(
            DemoOptions(calls=1, rate=20.0, output=tmp_path / "demo"),
            console=console,
            progress_console=progress,
            scenarios=(wrong,),
        )
        assert result.exit_code == EXIT_FAILED
        expected = (
            f"expected connected→{wrong.expected_agent1_id}, "
            f"the customer got connected→{decline.expected_agent1_id}"
        )
        assert len(result.problems) == 1
        assert expected in result.problems[0]
        text = out.getvalue()
        assert "What went wrong" in text
        assert expected in text
        assert "FAILED: 0/1 calls as expected" in text


class TestTee:
    def test_a_reader_leaving_the_pipe_keeps_the_file_complete(self) -> None:
        """`orchestrator demo | head`: once the pipe breaks it is dropped; the file has all."""

        class Broken(io.BytesIO):
            def write(self, data: bytes) -> int:  # type: ignore[override]
                raise BrokenPipeError

        file = io.BytesIO()
        tee = Tee(file, Broken())
        tee.write(b"one\n")
        tee.flush()
        tee.write(b"two\n")
        assert file.getvalue() == b"one\ntwo\n"
