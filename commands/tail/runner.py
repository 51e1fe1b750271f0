"""``orchestrator tail``: wire the options to a source, a view and the output, and run.

Exit status: 0 when the input ended (or Ctrl-C stopped a follow, or the reader of our output
went away), 1 when ``--timeline`` found no line of the call, 2 for bad usage or an unreadable
file.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import BinaryIO, TextIO

from commands.tail.columns import ColumnFormatter
from commands.tail.command import TailOptions
from commands.tail.entry import LEVEL_RANKS
from commands.tail.filters import LineFilter
from commands.tail.sources import follow, read_lines
from commands.tail.style import choose_palette
from commands.tail.timeline import Timeline
from commands.tail.views import ColumnsView, TimelineView, View, pump

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
PROG = "orchestrator tail"


def _isatty(stream: BinaryIO) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError):
        return False


def build_view(options: TailOptions, *, is_tty: bool, no_color: bool) -> View:
    """The view the options ask for, with its filter, palette and formatter."""
    palette = choose_palette(options.color, is_tty=is_tty, no_color=no_color)
    line_filter = LineFilter(
        calls=() if options.timeline else options.calls,
        campaigns=options.campaigns,
        agents=options.agents,
        events=options.events,
        exclude_events=options.exclude,
        min_rank=LEVEL_RANKS[options.level] if options.level else 0,
    )
    if options.timeline:
        timeline = Timeline(options.timeline, palette, with_carrier=options.with_carrier)
        return TimelineView(timeline, line_filter)
    return ColumnsView(line_filter, ColumnFormatter(palette, wide=options.wide))


def _source(
    options: TailOptions, stdin: BinaryIO, stop: Callable[[], bool] | None
) -> Iterator[bytes | None]:
    if options.follow:
        return follow(options.follow, last=options.last, poll_s=options.poll_s, stop=stop)
    if options.file and options.file != "-":
        return _file_lines(options.file)
    return read_lines(stdin)


def _file_lines(path: str) -> Iterator[bytes | None]:
    with open(path, "rb") as fh:
        yield from read_lines(fh)


def tail(
    options: TailOptions,
    *,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    stderr: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    stop: Callable[[], bool] | None = None,
) -> int:
    """Run ``orchestrator tail`` with ``options`` (standard streams by default); ``stop`` ends
    a ``--follow`` when it returns true (checked whenever the file is idle)."""
    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout.buffer
    stderr = stderr if stderr is not None else sys.stderr
    environ = environ if environ is not None else os.environ
    if options.file and options.follow:
        print(f"{PROG}: give FILE or --follow FILE, not both", file=stderr)
        return EXIT_USAGE
    if not options.follow and options.file in (None, "-") and _isatty(stdin):
        print(
            f"{PROG}: reading log lines from a terminal; pipe them in, or give FILE or "
            "--follow FILE",
            file=stderr,
        )
        return EXIT_USAGE
    view = build_view(options, is_tty=_isatty(stdout), no_color=bool(environ.get("NO_COLOR")))
    try:
        pump(_source(options, stdin, stop), view, stdout)
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            return _reader_gone(stdout)
        print(f"{PROG}: {exc.filename or ''}: {exc.strerror or exc}", file=stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # the usual way to end a follow
        try:
            for line in view.footer():
                stdout.write(line.encode() + b"\n")
            stdout.flush()
        except BrokenPipeError:
            return _reader_gone(stdout)
    if isinstance(view, TimelineView) and view.timeline.lines == 0:
        print(
            f"{PROG}: no line of a call whose TrackingGUID starts with {options.timeline!r}",
            file=stderr,
        )
        return EXIT_NOT_FOUND
    return EXIT_OK


def _reader_gone(stdout: BinaryIO) -> int:
    """Our reader closed the pipe (``| head``): stop quietly, and keep the interpreter's own
    flush at exit from complaining about the same pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_OK
