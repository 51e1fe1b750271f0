"""One service log line, parsed: the JSON object plus the fields every view keys on.

The service writes one JSON object per line (:mod:`orchestrator.logs`): ``ts``, ``level``,
``event`` and the call context (``tracking_guid``, ``campaign``, ``call_uuid``, ``leg_id``,
``agent_id``, ``tier``) plus the event's own data. :func:`parse_line` turns a line into an
:class:`Entry`, or ``None`` when the line is not a JSON object (such lines pass through the
views untouched). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

# Minimum-level filtering: a line's rank against the rank of ``--level``.
LEVEL_RANKS: dict[str, int] = {
    "debug": 10,
    "info": 20,
    "warning": 30,
    "warn": 30,
    "error": 40,
    "exception": 40,
    "critical": 50,
}
LEVEL_NAMES: tuple[str, ...] = ("debug", "info", "warning", "error", "critical")

# The call context bound by the actors (docs/architecture.md "Logs"); the columns view shows
# these in their own columns rather than as key=value fields.
CONTEXT_KEYS: frozenset[str] = frozenset(
    {"ts", "level", "event", "tracking_guid", "campaign", "leg_id", "agent_id", "tier"}
)


@dataclass(slots=True)
class Entry:
    """A parsed log line. ``guid`` and ``campaign`` start as the line's own ``tracking_guid``
    and ``campaign`` ("" when absent); :class:`~commands.tail.correlate.Correlator` fills
    them in for carrier lines that belong to a call without naming it."""

    data: dict[str, object]
    event: str
    level: str
    guid: str
    campaign: str
    own_guid: bool  # the line carries ``tracking_guid`` itself (not inferred)

    @property
    def rank(self) -> int:
        """The level's rank (0 for a missing or unknown level)."""
        return LEVEL_RANKS.get(self.level, 0)


def parse_line(raw: bytes) -> Entry | None:
    """The :class:`Entry` for one line (without its newline), or ``None`` if it is not a JSON
    object (plain text, a truncated line, a JSON array or number...)."""
    if not raw.startswith(b"{") and not raw.lstrip().startswith(b"{"):  # plain text: fast
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if data.__class__ is not dict:
        return None
    # Inlined look-ups: this runs for every line (see bench/tail_bench.py).
    event = data.get("event")
    level = data.get("level")
    guid = data.get("tracking_guid")
    campaign = data.get("campaign")
    return Entry(
        data,
        event if event.__class__ is str else "",
        level if level.__class__ is str else "",
        guid if guid.__class__ is str else "",
        campaign if campaign.__class__ is str else "",
        bool(guid) and guid.__class__ is str,
    )
