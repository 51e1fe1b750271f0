"""The ``orchestrator tail`` subcommand: its arguments and its entry point.

Light on purpose (argparse and a dataclass): the CLI imports this module to build its parser
for every command; the tail machinery is imported when ``tail`` runs.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from commands.tail.entry import LEVEL_NAMES

DEFAULT_FOLLOW_LINES = 10
COLOR_MODES = ("auto", "always", "never")

DESCRIPTION = """\
Read the service's JSON log lines (from FILE, standard input, or --follow FILE like tail -f)
and print them as aligned columns: UTC time, level, event, call (TrackingGUID, first 8
characters), tier/agent/leg, then the event's fields. Lines that are not JSON pass through
untouched. Carrier-simulator lines (sim.*) are tied to their call where the log allows.

Filters combine with AND; a repeated filter matches any of its values.
--timeline GUID prints one call's story instead: Step 1, plan, tiers, legs, accept, connect,
recording, outcome, with times relative to the call's first line.

Examples:
  orchestrator tail demo-output/orchestrator.log --exclude 'sim.*'
  orchestrator serve | orchestrator tail --level warning
  orchestrator tail -f /var/log/orchestrator.log --call e70ec52a --event 'leg.*'
  orchestrator tail demo-output/orchestrator.log --timeline e70ec52a
"""


@dataclass(frozen=True, slots=True)
class TailOptions:
    """What to read, what to show, and how."""

    file: str | None = None  # None or "-": standard input
    follow: str | None = None
    last: int | None = None  # --follow: start with this many lines (None: the whole file)
    calls: tuple[str, ...] = ()
    campaigns: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    level: str | None = None
    timeline: str | None = None
    with_carrier: bool = False
    color: str = "auto"
    wide: bool = False
    poll_s: float = 0.25


ALL_LINES = -1  # ``-n all``


def _lines(text: str) -> int:
    if text == "all":
        return ALL_LINES
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (or 'all'), got {text}")
    return value


def add_tail_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``tail``'s options (and its long description) to ``parser``."""
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "file", nargs="?", metavar="FILE", help="a log file to read once (default: standard input)"
    )
    parser.add_argument(
        "-f",
        "--follow",
        metavar="FILE",
        help="follow FILE as it grows, through truncation and rotation",
    )
    parser.add_argument(
        "-n",
        "--lines",
        type=_lines,
        default=None,
        dest="last",
        metavar="N",
        help="with --follow: start with the last N lines, or 'all' "
        f"(default: {DEFAULT_FOLLOW_LINES}; with --timeline: all)",
    )
    parser.add_argument(
        "--call",
        action="append",
        default=[],
        metavar="GUID",
        help="only this call: a TrackingGUID or carrier CallUUID prefix",
    )
    parser.add_argument(
        "--campaign", action="append", default=[], metavar="NAME", help="only this campaign"
    )
    parser.add_argument(
        "--agent",
        action="append",
        default=[],
        metavar="ID",
        help="only lines about this agent id (legs, tier lists, winners)",
    )
    parser.add_argument(
        "--event",
        action="append",
        default=[],
        metavar="GLOB",
        help="only events matching GLOB, e.g. 'leg.*' or 'call.finished'",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="drop events matching GLOB, e.g. 'sim.*'",
    )
    parser.add_argument(
        "--level",
        choices=LEVEL_NAMES,
        metavar="LEVEL",
        help=f"minimum level: {', '.join(LEVEL_NAMES)}",
    )
    parser.add_argument(
        "--timeline", metavar="GUID", help="print one call's story (TrackingGUID or a prefix of it)"
    )
    parser.add_argument(
        "--carrier",
        action="store_true",
        dest="with_carrier",
        help="with --timeline: include the carrier's own lines for the call",
    )
    parser.add_argument(
        "--color",
        choices=COLOR_MODES,
        default="auto",
        help="colour: auto (on a terminal, unless NO_COLOR), always, never",
    )
    parser.add_argument(
        "--wide",
        action="store_true",
        help="show whole ids (GUIDs, leg ids, UUID values) instead of 8 chars",
    )


def options_from_args(args: argparse.Namespace) -> TailOptions:
    """The :class:`TailOptions` for parsed arguments."""
    last: int | None = args.last
    if last is None:  # not given: a call's story starts at its beginning
        last = None if args.timeline else DEFAULT_FOLLOW_LINES
    elif last == ALL_LINES:
        last = None
    return TailOptions(
        file=args.file,
        follow=args.follow,
        last=last,
        calls=tuple(args.call),
        campaigns=tuple(args.campaign),
        agents=tuple(args.agent),
        events=tuple(args.event),
        exclude=tuple(args.exclude),
        level=args.level,
        timeline=args.timeline,
        with_carrier=args.with_carrier,
        color=args.color,
        wide=args.wide,
    )


def run_tail(args: argparse.Namespace) -> int:
    """Run ``orchestrator tail`` on standard input/output."""
    from commands.tail.runner import tail  # the machinery: only when tailing

    return tail(options_from_args(args))
