"""Which call a carrier line belongs to, learned from the lines seen so far.

The service's own lines name their call (``tracking_guid``); the carrier simulator's lines
(``sim.*``) do not. They are tied back to a call by what the service's lines taught us:

- the lead's carrier call: ``call_uuid`` on every line of the call;
- an agent's carrier call: ``leg.originated`` names the ``request_id`` that the carrier's
  ``sim.call.placed`` reports as ``request_uuid`` next to the agent call's ``call_uuid``
  (either line may come first);
- conference lines: the room is named after the TrackingGUID.

A carrier line that comes before anything tied it to a call (the lead's ``sim.call.placed``,
logged before ``call.started``) stays unattributed. Memory is bounded: each map forgets its
oldest entries beyond ``limit``. Pure: no I/O.
"""

from __future__ import annotations

from typing import TypeVar

from commands.tail.entry import Entry

DEFAULT_LIMIT = 50_000

_Owner = tuple[str, str]  # (tracking_guid, campaign)
_V = TypeVar("_V")


def _put(table: dict[str, _V], key: str, value: _V, limit: int) -> None:
    """``table[key] = value``, first forgetting the oldest entry if ``table`` is full."""
    if key not in table and len(table) >= limit:
        del table[next(iter(table))]
    table[key] = value


class Correlator:
    """Fills in ``guid``/``campaign`` on entries that do not carry them; learns from the rest."""

    __slots__ = ("_calls", "_campaigns", "_limit", "_placed", "_requests")

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._limit = limit
        self._calls: dict[str, _Owner] = {}  # carrier call_uuid -> owner
        self._campaigns: dict[str, str] = {}  # tracking_guid -> campaign
        self._requests: dict[str, _Owner] = {}  # originate request id -> owner (not yet placed)
        self._placed: dict[str, str] = {}  # request_uuid -> call_uuid (not yet originated)

    def resolve(self, entry: Entry) -> None:
        """Attribute ``entry`` to its call if it can be, and learn from it."""
        data = entry.data
        if entry.own_guid:
            self._learn(entry, data)
            return
        call_uuid = data.get("call_uuid")
        owner = self._calls.get(call_uuid) if isinstance(call_uuid, str) else None
        if owner is None:
            room = data.get("room")
            if isinstance(room, str) and room:
                owner = (room, self._campaigns.get(room, ""))
        if entry.event == "sim.call.placed":
            request = data.get("request_uuid")
            if isinstance(request, str) and isinstance(call_uuid, str):
                pending = self._requests.pop(request, None)
                if pending is not None:
                    owner = pending
                    _put(self._calls, call_uuid, owner, self._limit)
                else:
                    _put(self._placed, request, call_uuid, self._limit)
        if owner is not None:
            entry.guid, entry.campaign = owner

    def _learn(self, entry: Entry, data: dict[str, object]) -> None:
        guid = entry.guid
        if entry.campaign:
            if guid not in self._campaigns:
                _put(self._campaigns, guid, entry.campaign, self._limit)
        else:
            entry.campaign = self._campaigns.get(guid, "")
        call_uuid = data.get("call_uuid")
        if isinstance(call_uuid, str) and call_uuid not in self._calls:
            _put(self._calls, call_uuid, (guid, entry.campaign), self._limit)
        if entry.event == "leg.originated":
            request = data.get("request_id")
            if isinstance(request, str):
                placed = self._placed.pop(request, None)
                owner = (guid, entry.campaign)
                if placed is not None:
                    _put(self._calls, placed, owner, self._limit)
                else:
                    _put(self._requests, request, owner, self._limit)
