"""``orchestrator simulate`` / ``python -m simulator``: run the simulator alone.

Options override the ``[simulator]`` table of ``--config`` (TOML), which overrides defaults.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Sequence
from typing import Any

from simulator.config import simulator_config_from_mapping
from simulator.errors import SimulatorConfigError
from simulator.logs import configure_logging
from simulator.server import serve

__all__ = ["build_parser", "main"]

_OPTIONS: dict[str, tuple[str, type]] = {
    "--bind": ("bind", str),
    "--auth-id": ("auth_id", str),
    "--auth-token": ("auth_token", str),
    "--answer-url": ("answer_url", str),
    "--hangup-url": ("hangup_url", str),
    "--public-url": ("public_url", str),
    "--time-scale": ("time_scale", float),
    "--cps": ("cps", float),
    "--rate-limit": ("rate_limit_per_5s", int),
    "--scenario": ("scenario_file", str),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator simulate",
        description="Run the Plivo-compatible carrier simulator (REST + signed webhooks).",
    )
    parser.add_argument("--config", help="TOML file whose [simulator] table holds settings")
    for flag, (dest, kind) in _OPTIONS.items():
        parser.add_argument(flag, dest=dest, type=kind, default=None)
    parser.add_argument(
        "--log-level", default="info", choices=("debug", "info", "warning", "error")
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, then serve until SIGINT/SIGTERM. Returns the exit status."""
    args = build_parser().parse_args(argv)
    data: dict[str, Any] = {}
    if args.config:
        try:
            with open(args.config, "rb") as f:
                data = dict(tomllib.load(f).get("simulator", {}))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            print(f"error: cannot read {args.config}: {exc}", file=sys.stderr)
            return 2
    for dest, _ in _OPTIONS.values():
        value = getattr(args, dest)
        if value is not None:
            data[dest] = value
    try:
        config = simulator_config_from_mapping(data)
    except SimulatorConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    configure_logging(args.log_level)
    try:
        serve(config)
    except SimulatorConfigError as exc:  # a bad scenario file
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    return 0
