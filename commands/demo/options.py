"""The ``orchestrator demo`` command-line options.

Light on purpose (argparse and a dataclass): the CLI imports this module to build its parser
for every command, while the demo's heavy imports (the service, rich) wait in
:mod:`commands.demo.runner` until the demo runs.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CALLS = 24
DEFAULT_RATE = 4.0
DEFAULT_TIME_SCALE = 0.05
DEFAULT_OUTPUT = "demo-output"
MAX_CALLS = 1000

DESCRIPTION = """\
Run the product's main job end to end on the embedded defaults: SQLite, the built-in
Plivo-compatible carrier simulator (the real Plivo adapter talks to it over HTTP) and a sample
customer endpoint serving Step 1 / Step 2 / Step 3, all in this process on 127.0.0.1.

It places a batch of inbound calls, the scenarios round-robin: connected on the first tier,
tier escalation, press-1 decline, voicemail, lead hang-up, and a "no agents" plan. Progress is
shown live; at the end a summary gives, per outcome, the calls, the mean time to connect and
the legs per call, and per scenario the expected against the actual outcome.

OUTPUT/orchestrator.log receives every JSON log line of the service and the simulator;
OUTPUT/orchestrator.db is the SQLite store (a rerun starts both afresh).

Exit status: 0 when every call got the outcome its scenario expects and the simulator holds no
live call at the end; 1 otherwise (what went wrong is printed); 130 when interrupted.
"""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What to run: how many calls, how fast, at what simulated speed, and where to write."""

    calls: int = DEFAULT_CALLS
    rate: float = DEFAULT_RATE  # inbound calls placed per real second
    time_scale: float = DEFAULT_TIME_SCALE  # real seconds per simulated second
    output: Path = Path(DEFAULT_OUTPUT)
    log_level: str = "info"


def _calls(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_CALLS:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_CALLS}, got {value}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _time_scale(text: str) -> float:
    value = _positive(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be at most 1 (real time), got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the demo's options to ``parser`` (and its long description)."""
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--calls",
        type=_calls,
        default=DEFAULT_CALLS,
        metavar="N",
        help=f"calls to place, scenarios round-robin (default: {DEFAULT_CALLS})",
    )
    parser.add_argument(
        "--rate",
        type=_positive,
        default=DEFAULT_RATE,
        metavar="PER_S",
        help=f"calls placed per second (default: {DEFAULT_RATE:g})",
    )
    parser.add_argument(
        "--time-scale",
        type=_time_scale,
        default=DEFAULT_TIME_SCALE,
        metavar="X",
        help="real seconds per simulated second in the carrier simulator; 0.05 runs the "
        f"phones 20x faster, 1 is real time (default: {DEFAULT_TIME_SCALE:g})",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(DEFAULT_OUTPUT),
        metavar="DIR",
        help="directory for orchestrator.log and orchestrator.db, created if "
        f"missing (default: {DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="level of the JSON log file (default: info)",
    )


def options_from_args(args: argparse.Namespace) -> DemoOptions:
    return DemoOptions(
        calls=args.calls,
        rate=args.rate,
        time_scale=args.time_scale,
        output=args.output,
        log_level=args.log_level,
    )
