"""The columns view: one aligned, optionally coloured line per log line.

::

    16:01:08.359 info  leg.originated          e70ec52a t1 321001 9f24da77 request_id=c447dfc6 ...

Columns: UTC time of day (``ts``, to the millisecond), level, event, call (TrackingGUID, short),
tier / agent / leg, then the event's own fields as ``key=value`` in the order logged. The call
context shown in columns is not repeated as fields; ``null`` fields are left out; UUID values
are shortened to their first 8 characters unless ``wide`` (the 8 characters are enough for
``--call``). Pure: no I/O. Heavy paths are cached per event name and per call.
"""

from __future__ import annotations

import orjson

from commands.tail.entry import CONTEXT_KEYS, Entry
from commands.tail.style import Palette

EVENT_WIDTH = 23
SHORT_ID = 8
_LEVEL_LABELS = {
    "debug": "debug",
    "info": "info",
    "warning": "warn",
    "warn": "warn",
    "error": "error",
    "exception": "error",
    "critical": "crit",
}
_CALL_COLOURS = tuple(f"\x1b[{c}m" for c in (36, 33, 35, 32, 94, 96, 93, 95))
_CACHE_LIMIT = 10_000
LEG_WIDTH = 18
_NO_LEG = "-".ljust(LEG_WIDTH)
_HIDDEN_WITH_GUID = CONTEXT_KEYS | {"call_uuid"}


def is_uuid(text: str) -> bool:
    """Shaped like a UUID (``8-4-4-4-12``)? Cheap: length and dash positions only."""
    return len(text) == 36 and text[8] == "-" and text[13] == "-" and text[23] == "-"


def format_value(value: object, *, wide: bool = False) -> str:
    """A field value as shown after ``key=``: bare words bare, text with spaces quoted, lists
    of plain words comma-joined, anything else as compact JSON."""
    if isinstance(value, str):
        if not value or " " in value or '"' in value:
            return orjson.dumps(value).decode()
        if not wide and is_uuid(value):
            return value[:SHORT_ID]
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if (
        isinstance(value, list)
        and value
        and all(
            isinstance(v, int) or (isinstance(v, str) and v and " " not in v and "," not in v)
            for v in value
        )
    ):
        return ",".join(str(v) for v in value)
    return orjson.dumps(value, default=str).decode()


class ColumnFormatter:
    """Formats entries as aligned columns with ``palette`` colours."""

    __slots__ = ("_calls", "_heads", "_palette", "_wide")

    def __init__(self, palette: Palette, *, wide: bool = False) -> None:
        self._palette = palette
        self._wide = wide
        self._heads: dict[tuple[str, str], str] = {}  # (event, level) -> painted level+event
        self._calls: dict[str, str] = {}  # guid -> painted call column

    def format(self, entry: Entry) -> str:
        """One output line (no newline)."""
        # The hot path of the whole tool (bench/tail_bench.py): look-ups are inlined.
        data = entry.data
        p = self._palette
        ts = data.get("ts")
        clock = ts[11:23] if ts.__class__ is str and len(ts) >= 23 else "-           "
        head = self._heads.get((entry.event, entry.level)) or self._head(entry.event, entry.level)
        call = self._calls.get(entry.guid) or self._call(entry.guid)
        tier = data.get("tier")
        agent = data.get("agent_id")
        leg = data.get("leg_id")
        if tier is None and agent is None and leg is None:
            line = f"{p.dim}{clock}{p.reset} {head} {call} {_NO_LEG}"
        else:
            line = f"{p.dim}{clock}{p.reset} {head} {call} {self._leg(tier, agent, leg)}"
        hidden = _HIDDEN_WITH_GUID if entry.own_guid else CONTEXT_KEYS
        wide = self._wide
        key = p.key
        reset = p.reset
        fields = []
        for name, value in data.items():
            if name in hidden:
                continue
            if value.__class__ is str:
                if name == "room" and value == entry.guid:
                    continue  # conference rooms are named after the call: already shown
                if not value or " " in value or '"' in value:
                    shown = orjson.dumps(value).decode()
                elif not wide and len(value) == 36 and value[8] == "-" and value[23] == "-":
                    shown = value[:SHORT_ID]
                else:
                    shown = value
            elif value is None:
                continue
            elif value.__class__ is int or value.__class__ is float:
                shown = str(value)
            else:
                shown = format_value(value, wide=wide)
            fields.append(f"{key}{name}={reset}{shown}")
        if fields:
            return f"{line} {' '.join(fields)}"
        return line.rstrip()

    def _head(self, event: str, level: str) -> str:
        head = self._heads.get((event, level))
        if head is None:
            p = self._palette
            label = _LEVEL_LABELS.get(level, level or "-")
            shown = event or "(no event)"
            head = (
                p.paint(label.ljust(5), p.level(_normal_level(level)))
                + " "
                + p.paint(shown, p.event(shown, _normal_level(level)))
                + " " * max(EVENT_WIDTH - len(shown), 0)
            )
            self._heads[(event, level)] = head
        return head

    def _call(self, guid: str) -> str:
        if not guid:
            return "-".ljust(36 if self._wide else SHORT_ID)
        cell = self._calls.get(guid)
        if cell is None:
            text = guid.ljust(36) if self._wide else guid[:SHORT_ID].ljust(SHORT_ID)
            colour = _CALL_COLOURS[sum(map(ord, guid[:SHORT_ID])) % len(_CALL_COLOURS)]
            cell = self._palette.paint(text, colour if self._palette.enabled else "")
            if len(self._calls) >= _CACHE_LIMIT:
                self._calls.clear()
            self._calls[guid] = cell
        return cell

    def _leg(self, tier: object, agent: object, leg: object) -> str:
        pieces = []
        if tier is not None:
            pieces.append(f"t{tier}")
        if agent is not None:
            pieces.append(str(agent))
        if isinstance(leg, str):
            pieces.append(leg if self._wide else leg[:SHORT_ID])
        return " ".join(pieces).ljust(LEG_WIDTH)


def _normal_level(level: str) -> str:
    return {"warn": "warning", "exception": "error"}.get(level, level)
