"""``orchestrator tail`` (README "Operating it"): columns, filters, ``--timeline``, pass-through of
plain text, colour, and reading stdin / files / ``--follow`` (truncation, rotation).

The log lines are real. Two sources:

- the in-memory call harness under MockClock, with the service's logging configuration
  rendering JSON into a buffer (two interleaved calls: the API doc's connected call, and a
  call whose agents fail or are busy so the lead leaves a voicemail);
- one ``orchestrator demo`` run (real service, simulator and sample customer on 127.0.0.1)
  into a temporary directory, shared by the tests that need the carrier's lines too.
"""

from __future__ import annotations

import io
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fnmatch import fnmatchcase
from pathlib import Path
from typing import ClassVar

import orjson
import pytest
import structlog
import trio
import trio.testing
from rich.console import Console

from commands.demo.options import DemoOptions
from commands.demo.runner import run_demo
from commands.main import build_parser, main
from commands.tail.columns import ColumnFormatter, format_value
from commands.tail.command import TailOptions, options_from_args
from commands.tail.entry import LEVEL_RANKS, parse_line
from commands.tail.filters import LineFilter
from commands.tail.runner import EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, build_view, tail
from commands.tail.sources import IDLE, follow, read_lines, start_offset
from commands.tail.style import ANSI, PLAIN, choose_palette
from commands.tail.timeline import Timeline
from commands.tail.views import ColumnsView, TimelineView, pump
from orchestrator.carriers.fake import AgentScript, LeadScript
from orchestrator.logs import configure_logging
from tests.support.call_harness import CAMPAIGN_NUMBER, LEAD_PHONE, agent, harness
from tests.support.paths import REPO

REPO_ROOT = REPO
ANTHONY, ERIN = "8885551111", "9492651111"  # the API doc's example agents
BUSY, BROKEN = "1000000001", "1000000002"
ACCEPTS = AgentScript(answer_after_s=2.0, press="1", press_after_s=1.0)
SILENT = AgentScript(answer_after_s=None)
ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")
# Column offsets of the plain view: time (12) level (5) event (23) call (8) leg (18).
EVENT_AT, CALL_AT, LEG_AT, FIELDS_AT = 19, 43, 52, 71
MILESTONES = (  # --timeline of a connected call, in this order
    "call started",
    "Step 1 sent",
    "plan received",
    "tier 1: dialling",
    "dialling 8885551",
    "ACCEPTED",
    "CONNECTED",
    "recording ready",
    "OUTCOME connected",
)


# --- real lines ----------------------------------------------------------------------------------


@contextmanager
def json_logs() -> Iterator[io.BytesIO]:
    """The service's JSON logging into a buffer, restored afterwards."""
    saved = structlog.get_config()
    stream = io.BytesIO()
    configure_logging("debug", stream)
    structlog.configure(cache_logger_on_first_use=False)
    try:
        yield stream
    finally:
        structlog.configure(**saved)


class HarnessLog:
    """Lines of two interleaved calls: ``connected`` (API doc) and ``voicemail``."""

    def __init__(self, lines: list[bytes], connected: str, voicemail: str) -> None:
        self.lines = lines
        self.records = [orjson.loads(line) for line in lines]
        self.connected = connected
        self.voicemail = voicemail


async def harness_log() -> HarnessLog:
    scripts = {
        ANTHONY: ACCEPTS,
        ERIN: SILENT,
        BUSY: AgentScript(busy=True),
        BROKEN: AgentScript(fail=True),
    }
    with json_logs() as stream:
        async with harness(scripts) as h:
            first = await h.call(
                LeadScript(), agent(328290, ANTHONY, 1, 1), agent(328999, ERIN, 1, 2)
            )
            second = await h.call(
                LeadScript(message_s=4.0), agent(1, BUSY, 1, 1), agent(2, BROKEN, 2, 2)
            )
            await h.settle(first)
            await h.settle(second)
    lines = stream.getvalue().splitlines()
    return HarnessLog(lines, first.tracking_guid, second.tracking_guid)


@pytest.fixture(name="demo_log", scope="session")
def _demo_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small ``orchestrator demo`` run (every scenario once); its JSON log file."""
    output = tmp_path_factory.mktemp("tail-demo")
    quiet = Console(file=io.StringIO(), width=140)

    async def run() -> int:
        result = await run_demo(
            DemoOptions(calls=6, rate=20.0, output=output), console=quiet, progress_console=quiet
        )
        return result.exit_code

    assert trio.run(run) == 0
    return output / "orchestrator.log"


def demo_records(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def connected_guid(records: list[dict[str, object]]) -> str:
    return next(str(r["tracking_guid"]) for r in records if r.get("event") == "call.connected")


def render(lines: list[bytes], options: TailOptions) -> list[str]:
    """Run the view the options ask for over ``lines``; the output lines."""
    out = io.BytesIO()
    pump(lines, build_view(options, is_tty=False, no_color=False), out)
    return out.getvalue().decode().splitlines()


def columns(line: str) -> tuple[str, str, str]:
    """(event, call, leg) columns of a plain columns-view line."""
    return (
        line[EVENT_AT:CALL_AT].strip(),
        line[CALL_AT:LEG_AT].strip(),
        line[LEG_AT:FIELDS_AT].strip(),
    )


# --- the columns view ----------------------------------------------------------------------------


class TestColumns:
    """Every line becomes aligned columns; the call context moves out of the fields."""

    async def test_every_line_is_aligned(self, autojump_clock: trio.testing.MockClock) -> None:
        """Time, level, event, call and leg start at fixed offsets on every line."""
        log = await harness_log()
        shown = render(log.lines, TailOptions(color="never"))
        assert len(shown) == len(log.records)
        for line, record in zip(shown, log.records, strict=True):
            assert line[:12] == str(record["ts"])[11:23]
            assert line[13:18].strip() == {"warning": "warn"}.get(
                str(record["level"]), str(record["level"])
            )
            event, call, _ = columns(line)
            assert event == record["event"]
            assert call == str(record.get("tracking_guid", "-"))[:8]

    @pytest.mark.parametrize(
        ("event", "leg", "present", "absent"),
        [
            (
                "call.started",
                "-",
                [f"lead_phone={LEAD_PHONE}", f"dialled={CAMPAIGN_NUMBER}", "plantype=Purchase"],
                ["call_uuid=", "campaign="],
            ),
            ("tier.started", "t1", ["agents=328290,328999"], ["tier="]),
            (
                "leg.originated",
                "t1 328290 {leg}",
                [f"phone={ANTHONY}", "request_id=req-"],
                ["agent_id=", "leg_id="],
            ),
            ("leg.answered", "t1 328290 {leg}", ["press1=true"], []),
            ("call.connected", "t1 328290 {leg}", ["wait_s=3.5"], []),
            ("call.recording_ready", "-", ["url=https://"], []),
            (
                "call.finished",
                "-",
                [
                    "outcome=connected",
                    "agent1_id=328290",
                    "winner_agent_id=328290",
                    "tiers_tried=1",
                    "legs=2",
                    "message_link=https://",
                ],
                [],
            ),
        ],
    )
    async def test_fields_of_the_connected_call(
        self,
        autojump_clock: trio.testing.MockClock,
        event: str,
        leg: str,
        present: list[str],
        absent: list[str],
    ) -> None:
        """The event's own fields follow as key=value; the context sits in its columns."""
        log = await harness_log()
        view = ColumnsView(LineFilter(calls=(log.connected,)), ColumnFormatter(PLAIN))
        shown = [view.render(raw) for raw in log.lines]
        record_of = dict(zip(shown, log.records, strict=True))
        line = next(
            s
            for s in shown
            if isinstance(s, str)
            and columns(s)[0] == event
            and ("328290" not in leg or "328290" in columns(s)[2])
        )
        record = record_of[line]
        assert columns(line)[2] == leg.format(leg=str(record.get("leg_id", ""))[:8])
        fields = line[FIELDS_AT:]
        for text in present:
            assert text in fields
        for text in absent:
            assert text not in fields

    @pytest.mark.parametrize(
        ("value", "shown"),
        [
            ("plain", "plain"),
            ("two words", '"two words"'),
            ("", '""'),
            ("e70ec52a-2e50-421e-b215-7becca21a842", "e70ec52a"),
            (True, "true"),
            (0.235, "0.235"),
            ([1, 3], "1,3"),
            ([], "[]"),
            (["a b", "c"], '["a b","c"]'),
            ({"demo": ["8005550100"]}, '{"demo":["8005550100"]}'),
        ],
    )
    def test_values(self, value: object, shown: str) -> None:
        """Bare words bare, spaces quoted, UUIDs short, plain lists comma-joined, else JSON."""
        assert format_value(value) == shown

    def test_wide_keeps_whole_ids(self) -> None:
        """--wide: the whole TrackingGUID, leg id and UUID values."""
        guid, leg = "e70ec52a-2e50-421e-b215-7becca21a842", "9f24da77-786a-4353-8511-272517154b01"
        raw = orjson.dumps(
            {
                "request_id": "c447dfc6-f670-4bc0-99a7-a65c00844d92",
                "event": "leg.originated",
                "tracking_guid": guid,
                "tier": 1,
                "agent_id": 7,
                "leg_id": leg,
                "level": "info",
                "ts": "2026-11-29T16:01:08.359568Z",
            }
        )
        entry = parse_line(raw)
        assert entry is not None
        line = ColumnFormatter(PLAIN, wide=True).format(entry)
        assert guid in line
        assert f"t1 7 {leg}" in line
        assert "request_id=c447dfc6-f670-4bc0-99a7-a65c00844d92" in line

    async def test_colour_is_only_escape_codes(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """With colour on, removing the escape codes gives exactly the plain output."""
        log = await harness_log()
        plain = render(log.lines, TailOptions(color="never"))
        coloured = render(log.lines, TailOptions(color="always"))
        assert all("\x1b[" in line for line in coloured)
        assert [ANSI_CODE.sub("", line) for line in coloured] == plain

    @pytest.mark.parametrize(
        ("mode", "is_tty", "no_color", "expected"),
        [
            ("auto", True, False, ANSI),
            ("auto", False, False, PLAIN),
            ("auto", True, True, PLAIN),
            ("always", False, True, ANSI),
            ("never", True, False, PLAIN),
        ],
    )
    def test_colour_choice(self, mode: str, is_tty: bool, no_color: bool, expected: object) -> None:
        """--color auto colours a terminal unless NO_COLOR; always/never are absolute."""
        assert choose_palette(mode, is_tty=is_tty, no_color=no_color) is expected


# --- filters -------------------------------------------------------------------------------------


def _agent_named(record: dict[str, object], agent_id: str) -> bool:
    keys = ("agent_id", "winner_agent_id", "agent1_id")
    listed = record.get("agents")
    return any(str(record.get(k)) == agent_id for k in keys if record.get(k) is not None) or (
        isinstance(listed, list) and agent_id in [str(a) for a in listed]
    )


FILTER_CASES = [
    # (name, options builder, predicate builder) - guids: (connected, voicemail)
    ("everything", lambda g: TailOptions(), lambda g: lambda r: True),
    (
        "--call prefix",
        lambda g: TailOptions(calls=(g[0][:8],)),
        lambda g: lambda r: r.get("tracking_guid") == g[0],
    ),
    (
        "--call upper case",
        lambda g: TailOptions(calls=(g[1][:6].upper(),)),
        lambda g: lambda r: r.get("tracking_guid") == g[1],
    ),
    (
        "--call both",
        lambda g: TailOptions(calls=(g[0], g[1][:4])),
        lambda g: lambda r: r.get("tracking_guid") in g,
    ),
    (
        "--campaign acme",
        lambda g: TailOptions(campaigns=("acme",)),
        lambda g: lambda r: r.get("campaign") == "acme",
    ),
    ("--campaign other", lambda g: TailOptions(campaigns=("other",)), lambda g: lambda r: False),
    (
        "--agent 328290",
        lambda g: TailOptions(agents=("328290",)),
        lambda g: lambda r: _agent_named(r, "328290"),
    ),
    (
        "--event leg.*",
        lambda g: TailOptions(events=("leg.*",)),
        lambda g: lambda r: str(r["event"]).startswith("leg."),
    ),
    (
        "--event two names",
        lambda g: TailOptions(events=("call.connected", "call.finished")),
        lambda g: lambda r: r["event"] in ("call.connected", "call.finished"),
    ),
    (
        "--event *.ended",
        lambda g: TailOptions(events=("*.ended",)),
        lambda g: lambda r: fnmatchcase(str(r["event"]), "*.ended"),
    ),
    (
        "--exclude leg.*",
        lambda g: TailOptions(exclude=("leg.*",)),
        lambda g: lambda r: not str(r["event"]).startswith("leg."),
    ),
    (
        "--level info",
        lambda g: TailOptions(level="info"),
        lambda g: lambda r: r["level"] != "debug",
    ),
    (
        "--level warning",
        lambda g: TailOptions(level="warning"),
        lambda g: lambda r: LEVEL_RANKS[str(r["level"])] >= LEVEL_RANKS["warning"],
    ),
    (
        "--call + --event",
        lambda g: TailOptions(calls=(g[1][:8],), events=("tier.*",)),
        lambda g: lambda r: r.get("tracking_guid") == g[1] and str(r["event"]).startswith("tier."),
    ),
]


class TestFilters:
    """Each filter keeps exactly the lines an independent reading of the JSON says it should."""

    @pytest.mark.parametrize(
        ("name", "options", "predicate"), FILTER_CASES, ids=[case[0] for case in FILTER_CASES]
    )
    async def test_filter(
        self,
        autojump_clock: trio.testing.MockClock,
        name: str,
        options: Callable[[tuple[str, str]], TailOptions],
        predicate: Callable[[tuple[str, str]], Callable[[dict[str, object]], bool]],
    ) -> None:
        """The lines shown, in order, are those the predicate picks from the JSON."""
        log = await harness_log()
        guids = (log.connected, log.voicemail)
        expected = [
            (r["event"], str(r.get("tracking_guid", "-"))[:8])
            for r in log.records
            if predicate(guids)(r)
        ]
        shown = render(log.lines, options(guids))
        assert [columns(line)[:2] for line in shown] == expected
        if name == "--level warning":
            assert expected, "the harness calls log warnings (a failed originate)"
        if name == "--level info":
            assert len(expected) < len(log.records), "the harness logs debug lines"

    def test_carrier_lines_follow_their_call(self, demo_log: Path) -> None:
        """--call keeps the simulator's lines for the call: legs, conference, recording."""
        records = demo_records(demo_log)
        guid = connected_guid(records)
        shown = render(demo_log.read_bytes().splitlines(), TailOptions(calls=(guid[:8],)))
        assert {columns(line)[1] for line in shown} == {guid[:8]}
        events = [columns(line)[0] for line in shown]
        # An agent call's first lines may come before leg.originated names it (so they stay
        # unattributed); the conference, the recording and the ends always follow.
        for carrier_event in (
            "sim.conference.joined",
            "sim.conference.started",
            "sim.recording.finished",
            "sim.conference.ended",
            "sim.call.ended",
        ):
            assert carrier_event in events
        own = [r for r in records if r.get("tracking_guid") == guid]
        assert len(shown) > len(own)

    def test_call_matches_a_carrier_call_uuid_too(self, demo_log: Path) -> None:
        """A carrier CallUUID prefix finds the lead's call lines."""
        records = demo_records(demo_log)
        guid = connected_guid(records)
        call_uuid = next(
            str(r["call_uuid"])
            for r in records
            if r.get("event") == "call.started" and r["tracking_guid"] == guid
        )
        shown = render(demo_log.read_bytes().splitlines(), TailOptions(calls=(call_uuid[:8],)))
        assert "call.finished" in [columns(line)[0] for line in shown]
        assert "sim.call.placed" in [columns(line)[0] for line in shown]  # before call.started


# --- plain text ----------------------------------------------------------------------------------


class TestPassThrough:
    """Lines that are not JSON objects come out byte for byte, in place."""

    WEIRD: ClassVar[list[bytes]] = [
        b"Traceback (most recent call last):",
        b"",
        b"   \t",
        b'{"event": "call.started", "truncat',
        b"[1, 2, 3]",
        b"42",
        b"\xff\xfe not UTF-8 \x80",
        b"plain text with a { brace",
    ]

    async def test_plain_lines_pass_through(self, autojump_clock: trio.testing.MockClock) -> None:
        """Text, blanks, broken or non-object JSON, bad UTF-8: as they were, filters or not."""
        log = await harness_log()
        mixed: list[bytes] = []
        for index, line in enumerate(log.lines[: len(self.WEIRD)]):
            mixed += [line, self.WEIRD[index]]
        for options in (TailOptions(), TailOptions(calls=("nothing-matches",), color="always")):
            out = io.BytesIO()
            pump(mixed, build_view(options, is_tty=False, no_color=False), out)
            shown = out.getvalue().split(b"\n")
            assert shown[-1] == b""  # every line ends with a newline
            passed = [line for line in shown[:-1] if line in self.WEIRD]
            assert passed == self.WEIRD
        # With no filter, the JSON lines sit between them in order.
        out = io.BytesIO()
        pump(mixed, build_view(TailOptions(), is_tty=False, no_color=False), out)
        shown = out.getvalue().split(b"\n")[:-1]
        assert shown[1::2] == self.WEIRD
        assert [columns(line.decode())[0] for line in shown[0::2]] == [
            r["event"] for r in log.records[: len(self.WEIRD)]
        ]

    def test_an_object_without_event_is_still_columns(self) -> None:
        """A JSON object that is not ours is shown, with ``(no event)``."""
        (line,) = render([b'{"ts":"2026-11-29T16:01:08.359568Z","x":1}'], TailOptions())
        assert line.startswith("16:01:08.359 -     (no event)")
        assert line.endswith("x=1")

    def test_the_timeline_drops_plain_text(self, demo_log: Path) -> None:
        """A call's story has no room for other text."""
        guid = connected_guid(demo_records(demo_log))
        lines = [b"some text", *demo_log.read_bytes().splitlines(), b"[1]"]
        shown = render(lines, TailOptions(timeline=guid))
        assert "some text" not in shown
        assert "[1]" not in shown


# --- the timeline --------------------------------------------------------------------------------


def milestone_positions(story: list[str]) -> list[int]:
    return [
        next(i for i, line in enumerate(story) if milestone in line) for milestone in MILESTONES
    ]


class TestTimeline:
    """--timeline tells one call's story in order, with relative times."""

    def test_connected_demo_call(self, demo_log: Path) -> None:
        """Step 1, plan, tiers, legs, accept, connect, recording, outcome, in order."""
        records = demo_records(demo_log)
        guid = connected_guid(records)
        story = render(demo_log.read_bytes().splitlines(), TailOptions(timeline=guid[:8]))
        assert story[0].startswith(f"Call {guid} · campaign demo · ")
        assert story[1].startswith("   +0.000s  call started: lead ")
        positions = milestone_positions(story)
        assert positions == sorted(positions)
        times = [float(line.split("s", 1)[0]) for line in story[1:]]
        assert times == sorted(times)
        own = [r for r in records if r.get("tracking_guid") == guid]
        assert len(story) == 1 + len(own)  # a heading, then one sentence per line
        assert "Step 3 outcome delivered to the customer: HTTP 200" in story[-1]

    def test_with_carrier_lines(self, demo_log: Path) -> None:
        """--carrier adds the call's simulator lines, indented, the early ones included."""
        records = demo_records(demo_log)
        guid = connected_guid(records)
        plain = render(demo_log.read_bytes().splitlines(), TailOptions(timeline=guid))
        story = render(
            demo_log.read_bytes().splitlines(), TailOptions(timeline=guid, with_carrier=True)
        )
        carrier = [line for line in story if "sim." in line]
        assert len(story) == len(plain) + len(carrier)
        assert all(line[12:18] == "      " for line in carrier)
        placed = [line for line in carrier if "sim.call.placed" in line]
        assert len(placed) >= 2  # the lead's, before call.started, and the agents'
        assert "direction=inbound" in story[1]
        positions = milestone_positions(story)
        assert positions == sorted(positions)

    async def test_harness_calls(self, autojump_clock: trio.testing.MockClock) -> None:
        """Legs are indented under their tier; a voicemail call tells its failures."""
        log = await harness_log()
        story = render(log.lines, TailOptions(timeline=log.connected))
        positions = milestone_positions(story)
        assert positions == sorted(positions)
        assert "    agent 328999: leg ended: cancelled" in "\n".join(story)
        story = render(log.lines, TailOptions(timeline=log.voicemail))
        text = "\n".join(story)
        for sentence in (
            "agent 1: leg ended: busy",
            "agent 2: could not be dialled",
            "tier 1 exhausted",
            "lead sent to voicemail",
            "voicemail recorded",
            "OUTCOME voicemail: Agent1ID 0",
        ):
            assert sentence in text
        assert "(no call.finished line yet" not in text

    async def test_filters_and_footers(self, autojump_clock: trio.testing.MockClock) -> None:
        """Level/event filters apply; a cut-off call and an ambiguous prefix are reported."""
        log = await harness_log()
        story = render(log.lines, TailOptions(timeline=log.connected, events=("leg.*",)))
        assert all(line.startswith("    ", 12) for line in story[1:])
        cut = [
            line
            for line, r in zip(log.lines, log.records, strict=True)
            if r["event"] != "call.finished"
        ]
        story = render(cut, TailOptions(timeline=log.connected))
        assert story[-1].startswith("(no call.finished line yet")
        timeline = Timeline("", PLAIN)  # "" matches every call: the first one wins
        view = TimelineView(timeline, LineFilter())
        shown = [view.render(raw) for raw in log.lines]
        assert timeline.guid == log.records[0]["tracking_guid"]
        assert sum(s is not None for s in shown) == sum(
            r.get("tracking_guid") == timeline.guid for r in log.records
        )
        assert "also matches" in view.footer()[-1]


# --- sources -------------------------------------------------------------------------------------


def take(source: Iterator[bytes | None], count: int) -> list[bytes]:
    """The next ``count`` lines (idle marks skipped); fails rather than spin forever."""
    lines: list[bytes] = []
    for _ in range(1000):
        if len(lines) == count:
            return lines
        line = next(source)
        if line is not IDLE:
            lines.append(line)
    raise AssertionError(f"only {lines!r} after 1000 reads")


def no_sleep(seconds: float) -> None:
    """Polling without waiting: the tests change the file between reads."""


class TestSources:
    """Standard input, files, and --follow through growth, truncation and rotation."""

    def test_in_memory_stream(self) -> None:
        """Blank lines are lines; a last line without newline is kept."""
        stream = io.BytesIO(b"a\n\nb\r\nc")
        assert list(read_lines(stream)) == [b"a", b"", b"b\r", b"c"]

    def test_pipe_reports_idle_before_waiting(self) -> None:
        """From a pipe, IDLE comes when no more input is ready (the output is flushed)."""
        read_end, write_end = os.pipe()
        with os.fdopen(read_end, "rb", buffering=0) as reader:
            os.write(write_end, b"one\ntw")
            source = read_lines(reader)
            assert next(source) == b"one"
            assert next(source) is IDLE
            os.write(write_end, b"o\nthree")
            os.close(write_end)
            assert list(source) == [b"two", b"three"]

    @pytest.mark.parametrize(
        ("content", "lines", "offset"),
        [
            (b"a\nb\nc\n", 2, 2),
            (b"a\nb\nc\n", 3, 0),
            (b"a\nb\nc\n", 9, 0),
            (b"a\nb\nc", 1, 4),
            (b"a\nb\nc\n", 0, 6),
            (b"", 5, 0),
            (b"x" * 70_000 + b"\nlast\n", 1, 70_001),
        ],
    )
    def test_start_offset(self, tmp_path: Path, content: bytes, lines: int, offset: int) -> None:
        """Where the last N lines begin, final newline or not, across read blocks."""
        path = tmp_path / "log"
        path.write_bytes(content)
        with path.open("rb") as fh:
            assert start_offset(fh, len(content), lines) == offset

    def test_follow_growth_truncation_rotation(self, tmp_path: Path) -> None:
        """Appended lines (a partial one held back), copytruncate, then a rename + new file."""
        path = tmp_path / "orchestrator.log"
        path.write_bytes(b"1\n2\n3\n")
        source = follow(path, last=2, sleep=no_sleep)
        assert take(source, 2) == [b"2", b"3"]
        with path.open("ab") as fh:  # growth, and a line written in two pieces
            fh.write(b"4\n5")
        assert take(source, 1) == [b"4"]
        with path.open("ab") as fh:
            fh.write(b"5\n")
        assert take(source, 1) == [b"55"]
        path.write_bytes(b"short\n")  # copytruncate: smaller than what was read
        assert take(source, 1) == [b"short"]
        with path.open("ab") as fh:
            fh.write(b"old tail\n")
        path.rename(tmp_path / "orchestrator.log.1")  # rotation
        path.write_bytes(b"new file\n")
        assert take(source, 2) == [b"old tail", b"new file"]
        with path.open("ab") as fh:
            fh.write(b"more\n")
        assert take(source, 1) == [b"more"]

    def test_follow_rotation_reads_the_old_file_to_its_end(self, tmp_path: Path) -> None:
        """Lines written to the old file just before the rename are not lost."""
        path = tmp_path / "orchestrator.log"
        path.write_bytes(b"")
        source = follow(path, last=None, sleep=no_sleep)
        assert next(source) is IDLE
        with path.open("ab") as fh:
            fh.write(b"late line of the old file\n")
        path.rename(tmp_path / "orchestrator.log.1")
        path.write_bytes(b"first line of the new file\n")
        assert take(source, 2) == [b"late line of the old file", b"first line of the new file"]

    def test_follow_stops_when_asked(self, tmp_path: Path) -> None:
        """stop() is asked whenever the file is idle."""
        path = tmp_path / "orchestrator.log"
        path.write_bytes(b"only\n")
        assert [
            line
            for line in follow(path, last=None, stop=lambda: True, sleep=no_sleep)
            if line is not IDLE
        ] == [b"only"]

    def test_follow_through_the_runner(self, tmp_path: Path) -> None:
        """tail(follow=...) renders appended lines until stopped; output is flushed."""
        path = tmp_path / "orchestrator.log"
        line = b'{"event":"call.started","level":"info","ts":"2026-11-29T16:01:08.359568Z"}\n'
        path.write_bytes(line * 3)
        polls = iter(range(3))

        def stop() -> bool:  # append once, then stop at the next idle moment
            if next(polls, None) == 0:
                with path.open("ab") as fh:
                    fh.write(line.replace(b"started", b"finished"))
                return False
            return True

        out = io.BytesIO()
        options = TailOptions(follow=str(path), last=1, color="never", poll_s=0.0)
        assert tail(options, stdout=out, stderr=io.StringIO(), stop=stop) == EXIT_OK
        shown = out.getvalue().decode().splitlines()
        assert [columns(s)[0] for s in shown] == ["call.started", "call.finished"]


# --- the command ---------------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "tail", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def read_output_lines(proc: subprocess.Popen[bytes], count: int, timeout_s: float) -> list[str]:
    """``count`` lines of ``proc``'s stdout, waiting at most ``timeout_s`` in all."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout_s
    data = b""
    while data.count(b"\n") < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"only {data!r} before the deadline"
        readable, _, _ = select.select([fd], [], [], remaining)
        if readable:
            chunk = os.read(fd, 65536)
            assert chunk, f"output ended after {data!r}"
            data += chunk
    return data.decode().splitlines()


class TestCommand:
    """``orchestrator tail`` as operators run it."""

    def test_demo_log_reads_well(
        self, demo_log: Path, capsysbinary: pytest.CaptureFixture[bytes]
    ) -> None:
        """Every line of a demo log becomes aligned columns; nothing stays raw JSON."""
        assert main(["tail", str(demo_log), "--color", "never"]) == EXIT_OK
        shown = capsysbinary.readouterr().out.decode().splitlines()
        records = demo_records(demo_log)
        assert len(shown) == len(records)
        assert not [line for line in shown if line.startswith("{")]
        assert [columns(line)[0] for line in shown] == [r["event"] for r in records]

    def test_timeline_through_the_cli(
        self, demo_log: Path, capsysbinary: pytest.CaptureFixture[bytes]
    ) -> None:
        """``orchestrator tail LOG --timeline PREFIX``: the milestones in order."""
        guid = connected_guid(demo_records(demo_log))
        assert main(["tail", str(demo_log), "--timeline", guid[:8], "--color", "never"]) == 0
        story = capsysbinary.readouterr().out.decode().splitlines()
        positions = milestone_positions(story)
        assert positions == sorted(positions)

    def test_stdin_pipe(self, demo_log: Path) -> None:
        """``... | orchestrator tail --event call.finished`` over a real pipe."""
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "orchestrator",
                "tail",
                "--event",
                "call.finished",
                "--color",
                "auto",
            ],
            cwd=REPO_ROOT,
            input=b"hello\n" + demo_log.read_bytes(),
            capture_output=True,
            check=True,
            timeout=60,
        )
        shown = proc.stdout.decode().splitlines()
        assert shown[0] == "hello"
        assert len(shown) == 1 + 6  # six demo calls
        assert "\x1b[" not in proc.stdout.decode()  # auto: a pipe gets no colour

    @pytest.mark.parametrize(
        ("args", "status", "message"),
        [
            (["--timeline", "ffffffff"], EXIT_NOT_FOUND, "no line of a call"),
            (["--follow", "{log}"], EXIT_USAGE, "not both"),
        ],
    )
    def test_failures(self, demo_log: Path, args: list[str], status: int, message: str) -> None:
        """An unknown call exits 1; FILE and --follow together exit 2; both explain."""
        parsed = build_parser().parse_args(
            ["tail", str(demo_log), *[a.format(log=demo_log) for a in args]]
        )
        err = io.StringIO()
        assert tail(options_from_args(parsed), stdout=io.BytesIO(), stderr=err) == status
        assert message in err.getvalue()

    def test_missing_file(self, tmp_path: Path) -> None:
        """A file that is not there: exit 2, named on stderr."""
        for options in (
            TailOptions(file=str(tmp_path / "nope.log")),
            TailOptions(follow=str(tmp_path / "nope.log")),
        ):
            err = io.StringIO()
            assert tail(options, stdout=io.BytesIO(), stderr=err) == EXIT_USAGE
            assert "nope.log" in err.getvalue()

    @pytest.mark.parametrize(
        ("args", "last"),
        [
            (["-f", "x"], 10),
            (["-f", "x", "-n", "3"], 3),
            (["-f", "x", "-n", "all"], None),
            (["-f", "x", "--timeline", "abc"], None),
            (["-f", "x", "--timeline", "abc", "-n", "0"], 0),
        ],
    )
    def test_where_a_follow_starts(self, args: list[str], last: int | None) -> None:
        """--follow starts with the last 10 lines (or -n); a --timeline from the top."""
        assert options_from_args(build_parser().parse_args(["tail", *args])).last == last

    def test_follow_a_growing_file(self, tmp_path: Path) -> None:
        """A real process following a real file prints appended lines; Ctrl-C ends it (0)."""
        path = tmp_path / "orchestrator.log"
        path.write_bytes(b"already there\n")
        proc = run_cli("--follow", str(path), "-n", "all", "--color", "never")
        try:
            # Once the existing line is out, the follower is at the end of the file.
            assert read_output_lines(proc, 1, timeout_s=20.0) == ["already there"]
            with path.open("ab") as fh:
                fh.write(
                    b'{"event":"leg.ringing","level":"debug","tracking_guid":"abcdef12-0",'
                    b'"ts":"2026-11-29T16:01:08.359568Z"}\nplain line\n'
                )
            shown = read_output_lines(proc, 2, timeout_s=20.0)
            assert columns(shown[0])[:2] == ("leg.ringing", "abcdef12")
            assert shown[1] == "plain line"
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=10) == 0
            assert proc.stderr is not None
            assert b"Traceback" not in proc.stderr.read()
        finally:
            proc.kill()
            proc.wait()

    def test_reader_going_away_is_quiet(self, tmp_path: Path) -> None:
        """``orchestrator tail big.log | head -1``: exit 0, nothing on stderr."""
        path = tmp_path / "big.log"
        line = b'{"event":"leg.ringing","level":"info","ts":"2026-11-29T16:01:08.359568Z"}\n'
        path.write_bytes(line * 50_000)
        proc = run_cli(str(path), "--color", "never")
        try:
            read_output_lines(proc, 1, timeout_s=20.0)
            assert proc.stdout is not None
            proc.stdout.close()
            assert proc.wait(timeout=20) == 0
            assert proc.stderr is not None
            assert proc.stderr.read() == b""
        finally:
            proc.kill()
            proc.wait()
