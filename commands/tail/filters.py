"""Which lines to show: ``--call``, ``--campaign``, ``--agent``, ``--event``, ``--exclude`` and
``--level``, as one predicate over an :class:`~commands.tail.entry.Entry`.

Different options combine with AND; the values of one repeated option with OR. Event globs
are :mod:`fnmatch` patterns, matched case-sensitively against the dotted event name; the
verdict per event name is cached (a service logs a few dozen distinct names). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import translate

from commands.tail.entry import Entry

# Fields naming an agent: the leg context, the winner on call.finished / call.connected, and
# the Step 3 Agent1ID; tier.started lists its agents.
_AGENT_KEYS = ("agent_id", "winner_agent_id", "agent1_id")


def _globs(patterns: Iterable[str]) -> re.Pattern[str] | None:
    patterns = tuple(patterns)
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{translate(p)})" for p in patterns))


@dataclass(slots=True)
class LineFilter:
    """A predicate over entries; the default lets everything through.

    ``calls`` are TrackingGUID (or carrier CallUUID) prefixes, case-insensitive; ``agents``
    are agent ids as text; ``min_rank`` is a :data:`~commands.tail.entry.LEVEL_RANKS`
    value (0: any level).
    """

    calls: tuple[str, ...] = ()
    campaigns: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    exclude_events: tuple[str, ...] = ()
    min_rank: int = 0
    _include: re.Pattern[str] | None = field(init=False, repr=False, default=None)
    _exclude: re.Pattern[str] | None = field(init=False, repr=False, default=None)
    _verdicts: dict[str, bool] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.calls = tuple(c.strip().lower() for c in self.calls if c.strip())
        self._include = _globs(self.events)
        self._exclude = _globs(self.exclude_events)

    def matches(self, entry: Entry) -> bool:
        """True if ``entry`` should be shown."""
        if self.min_rank and entry.rank < self.min_rank:
            return False
        if not self._event_ok(entry.event):
            return False
        if self.calls and not self._call_ok(entry):
            return False
        if self.campaigns and entry.campaign not in self.campaigns:
            return False
        return not self.agents or self._agent_ok(entry.data)

    def _event_ok(self, event: str) -> bool:
        verdict = self._verdicts.get(event)
        if verdict is None:
            verdict = (self._include is None or self._include.fullmatch(event) is not None) and (
                self._exclude is None or self._exclude.fullmatch(event) is None
            )
            self._verdicts[event] = verdict
        return verdict

    def _call_ok(self, entry: Entry) -> bool:
        guid = entry.guid.lower()
        call_uuid = entry.data.get("call_uuid")
        carrier = call_uuid.lower() if isinstance(call_uuid, str) else ""
        return any(
            (guid and guid.startswith(prefix)) or (carrier and carrier.startswith(prefix))
            for prefix in self.calls
        )

    def _agent_ok(self, data: dict[str, object]) -> bool:
        for key in _AGENT_KEYS:
            value = data.get(key)
            if value is not None and str(value) in self.agents:
                return True
        listed = data.get("agents")
        return isinstance(listed, list) and any(str(a) in self.agents for a in listed)
