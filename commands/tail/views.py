"""The two views over a stream of raw lines, and the loop that feeds one to an output.

- :class:`ColumnsView`: every line as aligned columns, filtered; lines that are not JSON
  objects pass through untouched.
- :class:`TimelineView`: the lines of one call as a narrative (other lines are dropped).

:func:`pump` reads lines, writes what the view renders and flushes whenever the source goes
idle (see :mod:`commands.tail.sources`). The views are pure; ``pump`` does the writing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import BinaryIO, Protocol

from commands.tail.columns import ColumnFormatter
from commands.tail.correlate import Correlator
from commands.tail.entry import Entry, parse_line
from commands.tail.filters import LineFilter
from commands.tail.timeline import Timeline

NEWLINE = b"\n"
BATCH = 256  # rendered lines per write
HELD_LIMIT = 10_000  # carrier calls whose early lines a timeline holds back


class View(Protocol):
    def render(self, raw: bytes) -> str | bytes | None:
        """Text to print for ``raw`` (``bytes``: pass it through as is), or None to drop it."""

    def footer(self) -> list[str]:
        """Lines to print once the input has ended."""


class ColumnsView:
    """Filtered columns; plain-text lines pass through untouched."""

    __slots__ = ("_correlator", "_filter", "_formatter", "shown")

    def __init__(self, line_filter: LineFilter, formatter: ColumnFormatter) -> None:
        self._filter = line_filter
        self._formatter = formatter
        self._correlator = Correlator()
        self.shown = 0

    def render(self, raw: bytes) -> str | bytes | None:
        entry = parse_line(raw)
        if entry is None:
            return raw
        self._correlator.resolve(entry)
        if not self._filter.matches(entry):
            return None
        self.shown += 1
        return self._formatter.format(entry)

    def footer(self) -> list[str]:
        return []


class TimelineView:
    """One call's narrative; ``line_filter`` (level, event globs) still applies.

    With carrier lines on, a carrier line logged before anything tied it to a call (the
    lead's ``sim.call.placed``, an agent call placed before ``leg.originated`` was logged) is
    held back by its carrier ``call_uuid`` and told just before the line that claims it."""

    __slots__ = ("_correlator", "_filter", "_held", "_held_requests", "timeline")

    def __init__(self, timeline: Timeline, line_filter: LineFilter) -> None:
        self.timeline = timeline
        self._filter = line_filter
        self._correlator = Correlator()
        self._held: dict[str, list[Entry]] = {}  # carrier call_uuid -> unattributed lines
        self._held_requests: dict[str, str] = {}  # request_uuid -> carrier call_uuid

    def render(self, raw: bytes) -> str | bytes | None:
        entry = parse_line(raw)
        if entry is None:
            return None
        self._correlator.resolve(entry)
        carrier = self.timeline.with_carrier
        if carrier and not entry.guid:
            self._hold(entry)
            return None
        if not self.timeline.wants(entry) or not self._filter.matches(entry):
            return None
        told = self._claimed(entry) if carrier and entry.own_guid else []
        told.append(self.timeline.render(entry))
        return "\n".join(told)

    def footer(self) -> list[str]:
        return self.timeline.footer()

    def _hold(self, entry: Entry) -> None:
        call_uuid = entry.data.get("call_uuid")
        if not isinstance(call_uuid, str):
            return
        if call_uuid not in self._held and len(self._held) >= HELD_LIMIT:
            del self._held[next(iter(self._held))]
        self._held.setdefault(call_uuid, []).append(entry)
        request = entry.data.get("request_uuid")
        if isinstance(request, str):
            if len(self._held_requests) >= HELD_LIMIT:
                del self._held_requests[next(iter(self._held_requests))]
            self._held_requests[request] = call_uuid

    def _claimed(self, entry: Entry) -> list[str]:
        """The held carrier lines that ``entry`` (a line of our call) ties to it, rendered."""
        keys = [entry.data.get("call_uuid")]
        if entry.event == "leg.originated":
            request = entry.data.get("request_id")
            if isinstance(request, str):
                keys.append(self._held_requests.pop(request, None))
        told = []
        for key in keys:
            if not isinstance(key, str):
                continue
            for held in self._held.pop(key, ()):
                held.guid, held.campaign = entry.guid, entry.campaign
                if self._filter.matches(held):
                    told.append(self.timeline.render(held))
        return told


def pump(lines: Iterable[bytes | None], view: View, out: BinaryIO) -> None:
    """Render every line of ``lines`` through ``view`` into ``out``, flushing whenever the
    source says it is idle (``None``). Plain-text lines keep their bytes; rendered text is
    written as UTF-8, a batch of lines per write."""
    write = out.write
    render = view.render
    batch: list[str] = []
    for raw in lines:
        if raw is None:
            if batch:
                write(_encoded(batch))
                batch = []
            out.flush()
            continue
        shown = render(raw)
        if shown is None:
            continue
        if isinstance(shown, str):
            batch.append(shown)
            if len(batch) >= BATCH:
                write(_encoded(batch))
                batch = []
        else:
            if batch:
                write(_encoded(batch))
                batch = []
            write(shown + NEWLINE)
    batch.extend(view.footer())
    if batch:
        write(_encoded(batch))
    out.flush()


def _encoded(batch: list[str]) -> bytes:
    return ("\n".join(batch) + "\n").encode("utf-8", "replace")
