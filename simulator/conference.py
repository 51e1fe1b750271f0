"""Conference rooms and the ``<Conference>`` element (docs/plivo.md §4.2 "Conference").

Rules simulated:

- Rooms are per account and named by the element's text. A member joining with
  ``startConferenceOnEnter=true`` starts the room; members of a room that has not started hear
  ``waitSound`` (fetched as XML, its Play/Speak/Wait looped) until it starts.
- When a member with ``endConferenceOnExit=true`` leaves a started room, the room ends and the
  other members are removed; a started room left with one member whose ``stayAlone=false`` ends
  too, and a room with nobody in it closes.
- ``record=true``: the room is recorded from its start; when it ends, every recording member's
  ``callbackUrl`` gets ``ConferenceAction=record`` with ``RecordUrl``/``RecordingID``.
- Each member's ``callbackUrl`` gets ``ConferenceAction=enter`` / ``exit``; its ``action`` is
  requested when it leaves, with ``RecordUrl``/``RecordingID`` when the room was recorded.
- A removed member whose call is still up: with ``conference_end_hangs_up`` (the default) its
  call is hung up (4000, source Plivo); otherwise it goes on like Plivo's element does (the
  ``action`` XML with ``redirect=true``, else the next element).
- Members of a started room with two or more members are "connected" (``SimCall.connected``):
  their scripts' ``talk_s`` starts counting.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import trio

from simulator.causes import HangupCause, normal_hangup
from simulator.events import EventKind
from simulator.params import (
    Recording,
    call_params,
    conference_params,
    recording_params,
)
from simulator.runtime import DocumentFailed, Runtime, new_id
from simulator.state import SimCall
from simulator.xml_program import Conference, Play, Speak, Step, Wait

__all__ = ["Member", "Room", "Rooms", "run_conference"]

StepOutcome = tuple[Step, ...] | HangupCause | None


@dataclass(eq=False, slots=True)
class Member:
    member_id: str
    call: SimCall
    step: Conference
    joined_at: float
    exited: trio.Event = field(default_factory=trio.Event)
    removed: bool = False  # taken out because the room ended (not by its own call)
    wait_sound_loops: int = 0


@dataclass(eq=False, slots=True)
class Room:
    account_id: str
    name: str
    conference_uuid: str = field(default_factory=new_id)
    members: dict[str, Member] = field(default_factory=dict)
    started: trio.Event = field(default_factory=trio.Event)
    started_at: float | None = None
    ended: bool = False
    recording_id: str = ""
    recording_format: str = "mp3"
    recording_started: float | None = None
    recording: Recording | None = None
    record_targets: dict[str, str] = field(default_factory=dict)  # callbackUrl -> method
    _next_member: int = 0

    def new_member_id(self) -> str:
        self._next_member += 1
        return str(self._next_member)

    def info(self) -> dict[str, object]:
        return {
            "name": self.name,
            "conference_uuid": self.conference_uuid,
            "started": self.started.is_set(),
            "members": [
                {"member_id": m.member_id, "call_uuid": m.call.call_uuid}
                for m in self.members.values()
            ],
            "recording_id": self.recording_id,
        }


class Rooms:
    """Live rooms keyed by (account, name)."""

    def __init__(self) -> None:
        self._rooms: dict[tuple[str, str], Room] = {}

    def get_or_create(self, account_id: str, name: str) -> Room:
        key = (account_id, name)
        room = self._rooms.get(key)
        if room is None or room.ended:
            room = Room(account_id, name)
            self._rooms[key] = room
        return room

    def close(self, room: Room) -> None:
        key = (room.account_id, room.name)
        if self._rooms.get(key) is room:
            del self._rooms[key]

    def __iter__(self) -> Iterator[Room]:
        return iter(tuple(self._rooms.values()))

    def __len__(self) -> int:
        return len(self._rooms)


# --- room state changes (no I/O) ----------------------------------------------------------


def _start(rt: Runtime, room: Room) -> None:
    if room.started.is_set():
        return
    room.started_at = rt.clock.now()
    room.started.set()
    rt.log.add(EventKind.CONFERENCE_STARTED, room=room.name, conference_uuid=room.conference_uuid)
    if any(m.step.record for m in room.members.values()):
        _start_recording(rt, room, next(m.step for m in room.members.values() if m.step.record))


def _start_recording(rt: Runtime, room: Room, step: Conference) -> None:
    if room.recording_id:
        return
    room.recording_id = new_id()
    room.recording_format = step.record_file_format
    room.recording_started = rt.clock.now()


def _mark_connected(room: Room) -> None:
    if room.started.is_set() and len(room.members) >= 2:
        for member in room.members.values():
            member.call.connected.set()


def _end(rt: Runtime, room: Room, rooms: Rooms) -> list[Member]:
    """End the room: finish the recording, remove the remaining members. Returns them."""
    room.ended = True
    rooms.close(room)
    if room.recording_id and room.recording_started is not None and room.recording is None:
        room.recording = Recording(
            recording_id=room.recording_id,
            url=rt.recording_url(room.recording_id, room.recording_format),
            started=rt.clock.epoch(room.recording_started),
            ended=rt.clock.epoch(),
        )
        rt.log.add(
            EventKind.RECORDING_FINISHED,
            what="conference",
            room=room.name,
            recording_id=room.recording_id,
            url=room.recording.url,
            duration_s=round(room.recording.duration_s, 3),
        )
    removed = list(room.members.values())
    for member in removed:
        member.removed = True
        member.exited.set()
    room.members.clear()
    rt.log.add(
        EventKind.CONFERENCE_ENDED,
        room=room.name,
        conference_uuid=room.conference_uuid,
        removed=len(removed),
    )
    return removed


def _leave(rt: Runtime, room: Room, member: Member, rooms: Rooms) -> bool:
    """Take ``member`` out of the room by its own doing; True when that ended the room."""
    room.members.pop(member.member_id, None)
    if room.ended:
        return False
    if not room.members:
        _end(rt, room, rooms)
        return True
    if room.started.is_set():
        if member.step.end_on_exit:
            _end(rt, room, rooms)
            return True
        if len(room.members) == 1 and not next(iter(room.members.values())).step.stay_alone:
            _end(rt, room, rooms)
            return True
    return False


# --- the element ----------------------------------------------------------------------------


async def _notify_member(rt: Runtime, member: Member, room: Room, action: str) -> None:
    step = member.step
    if not step.callback_url:
        return
    call = member.call
    params = call_params(call.ident, "completed" if call.cause else "in-progress")
    params.update(conference_params(room.name, room.conference_uuid, member.member_id, action))
    await rt.notify(
        call, step.callback_url, step.callback_method, params, what=f"conference.{action}"
    )


async def _deliver_recording(rt: Runtime, room: Room, via: SimCall) -> None:
    """``ConferenceAction=record`` to every callbackUrl of a member that asked for recording."""
    if room.recording is None:
        return
    for url, method in room.record_targets.items():
        params = call_params(via.ident, "completed" if via.cause else "in-progress")
        params.update(conference_params(room.name, room.conference_uuid, "", "record"))
        params.update(recording_params(room.recording))
        await rt.notify(via, url, method, params, what="conference.record")


def _prompt_s(rt: Runtime, prompt: Speak | Play | Wait) -> float:
    if isinstance(prompt, Speak):
        return rt.speak_s(prompt.text) * max(1, prompt.loop)
    if isinstance(prompt, Play):
        return rt.timings.play_s * max(1, prompt.loop)
    return prompt.length


async def _wait_sound(rt: Runtime, member: Member, room: Room) -> None:
    """Loop the room's waitSound XML (Play/Speak/Wait only) until cancelled."""
    step = member.step
    if not step.wait_sound:
        await trio.sleep_forever()
    params = call_params(member.call.ident, "in-progress")
    params.update(conference_params(room.name, room.conference_uuid, member.member_id))
    try:
        steps = await rt.fetch_document(
            member.call, step.wait_sound, "POST", params, kind="action", what="conference.waitSound"
        )
    except DocumentFailed:
        await trio.sleep_forever()
    prompts = [s for s in steps if isinstance(s, Speak | Play | Wait)]
    total = sum(_prompt_s(rt, p) for p in prompts)
    rt.log.add(
        EventKind.STEP_STARTED,
        call_uuid=member.call.call_uuid,
        number=member.call.party_number,
        step="waitSound",
        prompts=len(prompts),
        loop_s=round(total, 3),
    )
    if total <= 0:
        await trio.sleep_forever()
    while True:
        await rt.clock.sleep(total)
        member.wait_sound_loops += 1


async def _cancel_when(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def _hold(rt: Runtime, member: Member, room: Room) -> None:
    """Until the room starts (or the member is taken out), play waitSound."""
    with trio.CancelScope() as hold:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_when, room.started, hold)
            nursery.start_soon(_cancel_when, member.exited, hold)
            nursery.start_soon(_wait_sound, rt, member, room)


async def _after_exit(
    rt: Runtime, member: Member, room: Room, ended_room: bool
) -> tuple[Step, ...] | None:
    """Exit callback, the room's recording (if this exit ended it), then the ``action``.

    Returns the action's XML when the call is still up and ``redirect=true``.
    """
    call, step = member.call, member.step
    await _notify_member(rt, member, room, "exit")
    if ended_room:
        await _deliver_recording(rt, room, call)
    if not step.action:
        return None
    params = call_params(call.ident, "completed" if call.cause else "in-progress")
    params.update(conference_params(room.name, room.conference_uuid, member.member_id))
    if room.recording is not None:
        params["RecordUrl"] = room.recording.url
        params["RecordingID"] = room.recording.recording_id
    if call.cause is None and step.redirect and not rt.conference_end_hangs_up:
        return await rt.fetch_document(
            call, step.action, step.method, params, kind="action", what="conference.action"
        )
    await rt.notify(call, step.action, step.method, params, what="conference.action")
    return None


async def run_conference(rt: Runtime, rooms: Rooms, call: SimCall, step: Conference) -> StepOutcome:
    """Execute ``<Conference>`` for ``call``; return what the call does next."""
    room = rooms.get_or_create(call.account.auth_id, step.room)
    if len(room.members) >= step.max_members:
        rt.log.add(
            EventKind.STEP_STARTED,
            call_uuid=call.call_uuid,
            number=call.party_number,
            step="Conference",
            room=step.room,
            skipped="room full",
        )
        return None
    member = Member(room.new_member_id(), call, step, rt.clock.now())
    room.members[member.member_id] = member
    call.room = room.name
    rt.log.add(
        EventKind.CONFERENCE_JOINED,
        call_uuid=call.call_uuid,
        number=call.party_number,
        room=room.name,
        member_id=member.member_id,
        start_on_enter=step.start_on_enter,
        end_on_exit=step.end_on_exit,
    )
    if step.start_on_enter:
        _start(rt, room)
    if step.record:
        if step.callback_url:
            room.record_targets[step.callback_url] = step.callback_method
        if room.started.is_set():
            _start_recording(rt, room, step)
    _mark_connected(room)

    ended_room = False
    finished = False
    try:
        await _notify_member(rt, member, room, "enter")
        if not room.started.is_set():
            await _hold(rt, member, room)
        await member.exited.wait()
        finished = True
    finally:
        call.room = ""
        if not member.removed:
            ended_room = _leave(rt, room, member, rooms)
        rt.log.add(
            EventKind.CONFERENCE_LEFT,
            call_uuid=call.call_uuid,
            number=call.party_number,
            room=room.name,
            member_id=member.member_id,
            removed=member.removed,
            wait_sound_loops=member.wait_sound_loops,
        )
        # our call ended or was transferred: the exit webhooks still go out (unless the
        # simulator itself is shutting down: then nobody set a cause)
        if not finished and (call.cause is not None or call.pending_transfer is not None):
            await rt.shielded(lambda: _after_exit(rt, member, room, ended_room))
    next_steps = await _after_exit(rt, member, room, ended_room)
    if member.removed and rt.conference_end_hangs_up:
        return normal_hangup("Plivo")
    return next_steps


def room_snapshot(rooms: Rooms) -> list[dict[str, object]]:
    return [room.info() for room in rooms]
