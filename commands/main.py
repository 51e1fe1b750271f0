"""The ``orchestrator`` command (docs/contract.md §10): ``serve``, ``check-config`` and friends.

Each subcommand is a pair of functions — one adds its arguments, one runs it and returns the
exit code — registered in :data:`COMMANDS`; add a subcommand by adding a row there. Heavy
imports (the service wiring) happen inside the subcommand that needs them, so
``check-config`` stays fast and works even where the service could not start.

Exit codes: 0 success (or a clean stop after SIGTERM/SIGINT), 2 bad usage or bad config,
130 stopped by a second Ctrl-C during the drain.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlsplit, urlunsplit

import structlog
import trio

from commands import calls
from commands.tail.command import add_tail_arguments, run_tail
from orchestrator.config import Settings, load_settings
from orchestrator.errors import ConfigError, InstanceInUse
from simulator import load_scenario
from simulator.errors import SimulatorConfigError

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_REFUSED = 3  # serve: the database is in use by instances this one may not run beside
EXIT_INTERRUPTED = 130
DEFAULT_CONFIG = "config.toml"


@dataclass(frozen=True, slots=True)
class Subcommand:
    """One ``orchestrator <name>`` subcommand."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# --- shared helpers --------------------------------------------------------------------------


def _add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=DEFAULT_CONFIG,
        help=f"TOML config file (default: {DEFAULT_CONFIG})",
    )


def _load(path: str) -> Settings | None:
    """Load ``path`` with the process environment (and, with the built-in simulator, its
    scenario file); print every problem to stderr on failure."""
    try:
        settings = load_settings(path, os.environ)
        if settings.carrier.kind == "simulator" and settings.simulator.scenario:
            load_scenario(settings.simulator.scenario)
        return settings
    except (ConfigError, SimulatorConfigError) as exc:
        prefix = "simulator.scenario: " if isinstance(exc, SimulatorConfigError) else ""
        count = len(exc.problems)
        print(f"{path}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        for problem in exc.problems:
            print(f"{prefix}{problem}", file=sys.stderr)
        return None


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to print)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def describe_settings(settings: Settings) -> list[str]:
    """A short human summary of a valid config, one line per item."""
    numbers = [n for c in settings.campaigns for n in c.numbers]
    carrier = settings.carrier
    signatures = "verified" if carrier.verify_signatures else "NOT verified"
    api = "built-in simulator" if carrier.kind == "simulator" else carrier.api_url
    lines = [
        f"campaigns: {len(settings.campaigns)} ({', '.join(c.name for c in settings.campaigns)})",
        f"numbers: {len(numbers)} ({', '.join(numbers)})",
        f"store: {redact_url(settings.store.url)}",
        f"carrier: {carrier.kind} (api {api}, signatures {signatures}, "
        f"{carrier.calls_per_second:g} calls/s)",
        f"server: {settings.server.bind} (public {settings.server.public_url}, "
        f"drain {settings.server.drain_s:g}s)",
    ]
    return lines


# --- check-config ----------------------------------------------------------------------------


def _check_config_arguments(parser: argparse.ArgumentParser) -> None:
    _add_config_argument(parser)


def run_check_config(args: argparse.Namespace) -> int:
    """Validate the config: every problem to stderr (exit 2), or a summary to stdout (exit 0)."""
    settings = _load(args.config)
    if settings is None:
        return EXIT_CONFIG
    print(f"{args.config}: OK")
    for line in describe_settings(settings):
        print(f"  {line}")
    return EXIT_OK


# --- serve -------------------------------------------------------------------------------------


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    _add_config_argument(parser)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="run N instances of this config as child processes: they share server.bind "
        "(SO_REUSEPORT), worker K also listens on port+1+K for its callbacks; needs [cluster]",
    )
    parser.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)


def run_serve(args: argparse.Namespace) -> int:
    """Run the service until SIGTERM/SIGINT, then drain; exit 0 after a clean stop."""
    settings = _load(args.config)
    if settings is None:
        return EXIT_CONFIG
    from orchestrator.logs import configure_logging
    from orchestrator.workers import worker_problems, worker_settings

    count = args.workers if args.worker_index is None else args.worker_index + 1
    problems = worker_problems(settings, count)
    if problems:
        print(f"{args.config}: cannot run {count} workers", file=sys.stderr)
        for problem in problems:
            print(problem, file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log.level)
    if args.worker_index is None and args.workers > 1:
        from commands.workers import Workers

        try:
            return trio.run(Workers(args.config, args.workers).run)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
    if args.worker_index is not None:
        settings = worker_settings(settings, args.worker_index)
    from server.wiring import run_service  # the whole service: imported only to serve

    try:
        trio.run(run_service, settings)
    except KeyboardInterrupt:  # a second Ctrl-C while draining
        return EXIT_INTERRUPTED
    except InstanceInUse as exc:  # refused before taking anything: nothing to undo
        structlog.get_logger().error("service.refused", reason=str(exc))
        print(f"orchestrator serve: refused to start: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK


# --- simulate ------------------------------------------------------------------------------------


def _simulate_arguments(parser: argparse.ArgumentParser) -> None:
    """None here: ``main`` hands everything after ``simulate`` to the simulator's own parser."""


def run_simulate(args: argparse.Namespace) -> int:
    return simulate(())


def simulate(options: Sequence[str]) -> int:
    """Run the Plivo-compatible carrier simulator on its own until SIGINT/SIGTERM."""
    from simulator.cli import main as simulator_main

    try:
        return simulator_main(list(options))
    except SystemExit as exc:  # its argparse: --help or bad usage
        return exc.code if isinstance(exc.code, int) else EXIT_CONFIG


# --- demo --------------------------------------------------------------------------------------


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    from commands.demo.options import add_arguments  # light: argparse and a dataclass

    add_arguments(parser)


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo batch on embedded defaults; exit 0 only if every call went as expected."""
    from rich.console import Console

    from commands.demo.options import options_from_args
    from commands.demo.runner import run_demo as run_demo_batch  # the whole service

    options = options_from_args(args)
    # Piped (`orchestrator demo | orchestrator tail`): the JSON log lines go to stdout as they
    # happen, and the summary to stderr, so the reader gets the service's log.
    piped = not sys.stdout.isatty()
    run = partial(
        run_demo_batch,
        options,
        console=Console(stderr=True) if piped else None,
        log_stream=sys.stdout.buffer if piped else None,
    )
    try:
        result = trio.run(run)
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return EXIT_INTERRUPTED
    return result.exit_code


# --- migrate ------------------------------------------------------------------------------------


def _migrate_arguments(parser: argparse.ArgumentParser) -> None:
    _add_config_argument(parser)


def run_migrate(args: argparse.Namespace) -> int:
    """Bring the store's schema to this release's newest revision (``serve`` does it too)."""
    settings = _load(args.config)
    if settings is None:
        return EXIT_CONFIG
    import sqlalchemy

    from store.engine import engine_url
    from store.migrate import migrate

    engine = sqlalchemy.create_engine(engine_url(settings.store.url))
    try:
        found, now = migrate(engine)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        print(f"{redact_url(settings.store.url)}: cannot migrate: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        engine.dispose()
    was = "an empty database" if found is None else f"revision {found}"
    print(f"{redact_url(settings.store.url)}: schema at revision {now} (was {was})")
    return EXIT_OK


# --- the table -----------------------------------------------------------------------------------

COMMANDS: tuple[Subcommand, ...] = (
    Subcommand(
        "serve",
        "run the service until SIGTERM/SIGINT, then drain gracefully",
        _serve_arguments,
        run_serve,
    ),
    Subcommand(
        "demo",
        "drive a batch of calls through every path on embedded defaults (SQLite, simulator, "
        "sample customer) and summarise",
        _demo_arguments,
        run_demo,
    ),
    Subcommand(
        "check-config",
        "validate a config file and explain every problem",
        _check_config_arguments,
        run_check_config,
    ),
    Subcommand(
        "migrate",
        "bring the store's schema to this release's newest revision (serve does it at start, "
        "under a lock)",
        _migrate_arguments,
        run_migrate,
    ),
    Subcommand(
        "calls",
        "call history from the running service: list calls, show one call, or list agents "
        "(options: orchestrator calls --help)",
        calls.add_arguments,
        calls.run,
    ),
    Subcommand(
        "simulate",
        "run the built-in Plivo-compatible carrier simulator on its own "
        "(options: orchestrator simulate --help)",
        _simulate_arguments,
        run_simulate,
    ),
    Subcommand(
        "tail",
        "show the service's JSON log lines as readable columns, filtered, or one call's "
        "timeline (options: orchestrator tail --help)",
        add_tail_arguments,
        run_tail,
    ),
)


def build_parser(commands: Sequence[Subcommand] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Dynamic call distribution orchestrator (Plivo, tiered agent dialling).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in commands:
        sub_parser = sub.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub_parser)
        sub_parser.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``orchestrator`` console script and ``python -m orchestrator``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulate"]:  # the simulator parses its own options
        return simulate(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return exc.code if isinstance(exc.code, int) else EXIT_CONFIG
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except BrokenPipeError:  # `orchestrator ... | head`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
