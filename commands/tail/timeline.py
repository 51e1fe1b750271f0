"""The ``--timeline`` view: one call's story, in order, with times relative to its first line.

::

    Call e70ec52a-2e50-421e-b215-7becca21a842 · campaign demo · 2026-11-29 16:01:08.314 UTC
       +0.000s  call started: lead 9495510000 dialled 8005550100 (plan type Purchase)
       +0.020s  Step 1 sent to the customer: HTTP 200
       +0.022s  tier 1: dialling agents 321001, 321002
       +0.045s      agent 321001: dialling 8885551001 (caller id 9495510000)
       ...
       +0.526s  OUTCOME connected: Agent1ID 321001, MessageLink http://...; 2 legs, ...

The call is chosen by a TrackingGUID prefix; the first call whose GUID starts with it is
followed (others sharing the prefix are reported in the footer). Leg events are indented under
their tier; known events read as sentences, any other event as ``event key=value``. Carrier
lines (tied to the call by :class:`~commands.tail.correlate.Correlator`) are included only
when asked. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from commands.tail.columns import format_value
from commands.tail.entry import CONTEXT_KEYS, Entry
from commands.tail.style import Palette

_Data = dict[str, object]
_HIDDEN = CONTEXT_KEYS | {"call_uuid"}
_OTHERS_SHOWN = 5


def _v(data: _Data, key: str, default: str = "?") -> str:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def _agent(data: _Data) -> str:
    return f"agent {_v(data, 'agent_id')}"


def _call_started(d: _Data) -> str:
    referral = d.get("referral_id")
    extra = f", referral {referral}" if referral not in (None, 0, "0", "") else ""
    return (
        f"call started: lead {_v(d, 'lead_phone')} dialled {_v(d, 'dialled')} "
        f"(plan type {_v(d, 'plantype')}{extra})"
    )


def _step1_sent(d: _Data) -> str:
    reduced = " (reduced fields)" if d.get("reduced") else ""
    took = f" in {_v(d, 'latency_s')}s" if d.get("latency_s") is not None else ""
    return f"Step 1 sent to the customer: HTTP {_v(d, 'status')}{took}{reduced}"


def _leg_answered(d: _Data) -> str:
    if d.get("press1") is False:
        return f"{_agent(d)}: answered (no press-1 needed)"
    return f"{_agent(d)}: answered, asked to press 1"


def _leg_declined(d: _Data) -> str:
    digits = d.get("digits")
    pressed = f", pressed {digits}" if digits else ""
    return f"{_agent(d)}: declined ({_v(d, 'result')}{pressed})"


def _call_finished(d: _Data) -> str:
    link = d.get("message_link")
    text = f"OUTCOME {_v(d, 'outcome')}: Agent1ID {_v(d, 'agent1_id')}"
    if link:
        text += f", MessageLink {link}"
    text += (
        f"; {_v(d, 'legs')} leg(s), tiers tried {_v(d, 'tiers_tried')}, "
        f"{_v(d, 'duration_s')}s in all"
    )
    if d.get("time_to_connect_s") is not None:
        text += f", connected after {_v(d, 'time_to_connect_s')}s"
    return text


_NARRATIVES: dict[str, Callable[[_Data], str]] = {
    "call.started": _call_started,
    "step1.sent": _step1_sent,
    "step1.failed": lambda d: f"Step 1 failed: {_v(d, 'reason')}",
    "step1.plan_rejected": lambda d: f"Step 1 reply held a bad plan: {_v(d, 'problems')}",
    "plan.synchronous": lambda d: "plan came back in the Step 1 reply",
    "plan.accepted": lambda d: (
        f"Step 2 plan accepted: {_v(d, 'agents')} agent(s) in tier(s) {_v(d, 'tiers')}"
    ),
    "plan.received": lambda d: (
        f"plan received: {_v(d, 'agents')} agent(s) in tier(s) {_v(d, 'tiers')}"
    ),
    "plan.rejected": lambda d: f"Step 2 plan rejected: {_v(d, 'reason', _v(d, 'fields'))}",
    "plan.conflicted": lambda d: f"Step 2 plan refused (conflict): {_v(d, 'reason')}",
    "ivr.asked": lambda d: f"IVR question asked (keys {_v(d, 'keys')})",
    "ivr.answered": lambda d: (
        f"lead pressed {_v(d, 'key')} at the IVR (plan type {_v(d, 'plantype')})"
    ),
    "ivr.timed_out": lambda d: f"IVR: no answer after {_v(d, 'after_s')}s",
    "call.redirected": lambda d: f"call redirected to {_v(d, 'to')}",
    "tier.started": lambda d: f"tier {_v(d, 'tier')}: dialling agents {_v(d, 'agents')}",
    "tier.exhausted": lambda d: f"tier {_v(d, 'tier')} exhausted: nobody accepted",
    "tier.timed_out": lambda d: f"tier {_v(d, 'tier')} timed out after {_v(d, 'after_s')}s",
    "leg.originated": lambda d: (
        f"{_agent(d)}: dialling {_v(d, 'phone')} (caller id {_v(d, 'caller_id')})"
    ),
    "leg.failed": lambda d: f"{_agent(d)}: could not be dialled: {_v(d, 'error')}",
    "leg.ringing": lambda d: f"{_agent(d)}: ringing",
    "leg.answered": _leg_answered,
    "leg.accepted": lambda d: f"{_agent(d)}: ACCEPTED",
    "leg.declined": _leg_declined,
    "leg.answered_late": lambda d: f"{_agent(d)}: answered after the call was taken",
    "leg.accepted_late": lambda d: f"{_agent(d)}: accepted after the call was taken",
    "leg.ended": lambda d: (
        f"{_agent(d)}: leg ended: {_v(d, 'result')} after {_v(d, 'duration_s')}s"
    ),
    "call.connected": lambda d: (
        f"CONNECTED: lead bridged to agent {_v(d, 'agent_id')} "
        f"(tier {_v(d, 'tier')}) after waiting {_v(d, 'wait_s')}s"
    ),
    "call.recording_ready": lambda d: f"recording ready: {_v(d, 'url')}",
    "call.voicemail": lambda d: f"lead sent to voicemail ({_v(d, 'reason')})",
    "call.voicemail_recorded": lambda d: (
        f"voicemail recorded ({_v(d, 'duration_s')}s): {_v(d, 'url')}"
    ),
    "call.voicemail_failed": lambda d: f"voicemail failed: {_v(d, 'error')}",
    "call.lead_hung_up": lambda d: "lead hung up",
    "call.ended_by_operator": lambda d: (
        f"ended by an operator ({_v(d, 'reason')}) while {_v(d, 'state')}"
    ),
    "call.aborted": lambda d: f"call aborted while {_v(d, 'state')}",
    "call.finished": _call_finished,
    "outcome.delivered": lambda d: (
        f"Step 3 outcome delivered to the customer: HTTP "
        f"{_v(d, 'status')} (attempt {_v(d, 'attempt')})"
    ),
    "outcome.attempt_failed": lambda d: (
        f"Step 3 delivery attempt {_v(d, 'attempt')} failed: {_v(d, 'error')}"
    ),
    "outcome.dead": lambda d: (
        f"Step 3 delivery given up after {_v(d, 'attempts')} attempts: {_v(d, 'error')}"
    ),
}
_MILESTONES = frozenset({"call.connected", "call.finished", "leg.accepted"})


def narrate(entry: Entry) -> str:
    """One sentence for ``entry``: its event's narrative, or ``event key=value ...``."""
    story = _NARRATIVES.get(entry.event)
    if story is not None:
        return story(entry.data)
    fields = " ".join(
        f"{k}={format_value(v)}"
        for k, v in entry.data.items()
        if v is not None and k not in _HIDDEN and not (k == "room" and v == entry.guid)
    )
    return f"{entry.event or '(no event)'} {fields}".rstrip()


def parse_ts(value: object) -> datetime | None:
    """The ``ts`` of a line (ISO 8601, UTC), or None."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


class Timeline:
    """Renders the lines of the one call chosen by ``prefix``; see the module docstring."""

    def __init__(self, prefix: str, palette: Palette, *, with_carrier: bool = False) -> None:
        self.prefix = prefix.strip().lower()
        self.guid = ""
        self.lines = 0
        self.finished = False
        self.others: list[str] = []
        self._palette = palette
        self.with_carrier = with_carrier
        self._start: datetime | None = None
        self._last_rel = 0.0

    def wants(self, entry: Entry) -> bool:
        """Is ``entry`` a line of the chosen call (choosing it on the first match)?"""
        guid = entry.guid
        if not guid or not guid.lower().startswith(self.prefix):
            return False
        if not self.guid:
            self.guid = guid
        elif guid != self.guid:
            if guid not in self.others:
                self.others.append(guid)
            return False
        if entry.event == "call.finished":
            self.finished = True  # even if a filter hides the line
        return entry.own_guid or self.with_carrier

    def render(self, entry: Entry) -> str:
        """The narrative line for ``entry`` (with the heading before the call's first line)."""
        p = self._palette
        at = parse_ts(entry.data.get("ts"))
        heading = ""
        if self._start is None and at is not None:
            self._start = at
        if self.lines == 0:
            campaign = f" · campaign {entry.campaign}" if entry.campaign else ""
            when = f" · {at:%Y-%m-%d %H:%M:%S}.{at.microsecond // 1000:03d} UTC" if at else ""
            heading = p.paint(f"Call {self.guid}{campaign}{when}", p.bold) + "\n"
        self.lines += 1
        if at is not None and self._start is not None:
            self._last_rel = (at - self._start).total_seconds()
        indent = ""
        if not entry.own_guid:
            indent = "      "
        elif entry.event.startswith("leg."):
            indent = "    "
        text = narrate(entry)
        level = {"warn": "warning", "exception": "error"}.get(entry.level, entry.level)
        if entry.event in _MILESTONES:
            colour = p.bold
        elif level in ("warning", "error", "critical"):
            colour = p.level(level)
        elif not entry.own_guid:
            colour = p.dim
        else:
            colour = ""
        clock = p.paint(f"{self._last_rel:+9.3f}s", p.dim)
        return f"{heading}{clock}  {indent}{p.paint(text, colour)}"

    def footer(self) -> list[str]:
        """Closing remarks: a call without its ``call.finished`` yet, an ambiguous prefix."""
        notes = []
        if self.lines and not self.finished:
            notes.append(
                "(no call.finished line yet: the call is still live, or the log ends early)"
            )
        if self.others:
            shown = ", ".join(self.others[:_OTHERS_SHOWN])
            more = (
                f" and {len(self.others) - _OTHERS_SHOWN} more"
                if (len(self.others) > _OTHERS_SHOWN)
                else ""
            )
            notes.append(
                f"(the prefix {self.prefix!r} also matches {shown}{more}: "
                "give more of the TrackingGUID)"
            )
        return notes
