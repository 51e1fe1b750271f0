"""The Plivo-compatible carrier simulator's engine: accounts, calls, rooms, and their tasks.

A :class:`Simulator` runs inside a trio nursery (``await nursery.start(sim.run)``). Each call
is one task in it:

1. outbound: wait for its CPS slot (``call queued``), ring (``ring_url``), then answer, stay
   busy, fail or ring out, as the callee's :class:`AgentScript` says; inbound: arrives answered
   and requests the application's answer URL;
2. execute XML (:mod:`~simulator.executor`) while the simulated person's timers
   run (hang up after N s, talk N s once connected, the call's ``time_limit``);
3. end with the first cause set by anyone (``SimCall.end``), then request ``hangup_url``.

The REST app and the control API call the synchronous methods here (``make_call``,
``cancel_request``, ``hangup_call``, ``transfer_call``, ``place_inbound`` ...), which only
change state and start tasks. Tests read :attr:`Simulator.log` and the query methods.

Cancellation: ``close()`` (or cancelling the task running :meth:`Simulator.run`) ends every
call without sending webhooks.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial

import structlog
import trio

from simulator.causes import (
    BUSY,
    CANCELED,
    FAILED,
    NO_ANSWER,
    SIMULATOR_ERROR,
    HangupCause,
    normal_hangup,
    rejected_by_callee,
    time_limit,
)
from simulator.conference import Rooms, room_snapshot
from simulator.events import EventKind, EventLog, SimEvent
from simulator.executor import run_documents
from simulator.limits import CpsGate
from simulator.params import (
    CallIdentity,
    Recording,
    call_params,
    hangup_params,
    record_api_params,
)
from simulator.rest_params import CallRequest, RecordRequest, wire_number
from simulator.runtime import Runtime, Timings, new_id
from simulator.scripts import AgentScript, LeadScript, ScriptBook
from simulator.state import (
    Account,
    ApiRecording,
    CallState,
    CallUrls,
    SimCall,
    SimClock,
)
from simulator.webhooks import WebhookSender

__all__ = ["MakeCallResult", "Simulator"]

logger = structlog.get_logger()

_KEEP_ENDED = 50_000  # ended calls kept for queries (oldest dropped first)


@dataclass(frozen=True, slots=True)
class MakeCallResult:
    request_uuids: tuple[str, ...]
    queued: bool

    @property
    def message(self) -> str:
        if len(self.request_uuids) > 1:
            return "calls fired"
        return "call queued" if self.queued else "call fired"


class Simulator:
    """A simulated Plivo account holder's world. See the module docstring.

    Args:
        accounts: the accounts REST requests may authenticate as (the first is the default).
        application: answer/hangup URLs (and methods) of the Plivo application inbound calls
            reach (the service's ``/plivo/answer`` and ``/plivo/hangup``).
        time_scale: real seconds per simulated second (1.0 = real time; tests use ~0.05).
        cps: outbound calls per second before Make Call queues (0 = unlimited).
        scripts: agent scripts by phone number (with a default).
        default_lead: the lead script of inbound calls placed without one.
        public_url: how the application reaches the simulator (recording URLs).
        conference_end_hangs_up: a conference ended by an ``endConferenceOnExit`` member hangs
            the others up (True), or lets them go on to ``action``/the next element (False).
    """

    def __init__(
        self,
        *,
        accounts: Iterable[Account],
        application: CallUrls | None = None,
        time_scale: float = 1.0,
        cps: float = 2.0,
        scripts: ScriptBook | None = None,
        default_lead: LeadScript | None = None,
        public_url: str = "http://127.0.0.1",
        timings: Timings | None = None,
        conference_end_hangs_up: bool = True,
        webhook_pools: int = 4,
        webhook_connections: int = 8,
        webhook_timeout_s: float = 10.0,
    ) -> None:
        self.accounts: dict[str, Account] = {a.auth_id: a for a in accounts}
        if not self.accounts:
            raise ValueError("the simulator needs at least one account")
        self.application = application
        self.time_scale = time_scale
        self.scripts = scripts or ScriptBook()
        self.default_lead = default_lead or LeadScript()
        self.public_url = public_url.rstrip("/")
        self.timings = timings or Timings(webhook_wait_s=webhook_timeout_s)
        self.conference_end_hangs_up = conference_end_hangs_up
        self._cps = CpsGate(cps)
        self._webhook_pools = webhook_pools
        self._webhook_connections = webhook_connections
        self._webhook_timeout_s = webhook_timeout_s
        self._clock: SimClock | None = None
        self.log = EventLog(self._now)
        self.rooms = Rooms()
        self._live: dict[str, SimCall] = {}
        self._by_request: dict[str, SimCall] = {}
        self._ended: OrderedDict[str, SimCall] = OrderedDict()
        self._counts: Counter[str] = Counter()
        self._nursery: trio.Nursery | None = None
        self._rt: Runtime | None = None
        self._scope: trio.CancelScope | None = None
        self._closing = False

    # --- lifecycle ------------------------------------------------------------------------

    def _now(self) -> float:
        return self._clock.now() if self._clock is not None else 0.0

    @property
    def clock(self) -> SimClock:
        if self._clock is None:
            raise RuntimeError("the simulator is not running (await nursery.start(sim.run))")
        return self._clock

    @property
    def main_account(self) -> Account:
        return next(iter(self.accounts.values()))

    async def run(
        self, *, task_status: trio.TaskStatus[Simulator] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the simulator until cancelled or :meth:`close` d; ``started(self)`` when ready.

        Resource handling: owns the webhook HTTP clients and the calls nursery.
        """
        self._clock = SimClock(self.time_scale)
        sender = WebhookSender(
            pools=self._webhook_pools,
            connections_per_pool=self._webhook_connections,
            timeout_cap_s=self._webhook_timeout_s,
        )
        async with sender:
            with trio.CancelScope() as scope:
                self._scope = scope
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    self._rt = Runtime(
                        clock=self._clock,
                        log=self.log,
                        sender=sender,
                        scripts=self.scripts,
                        timings=self.timings,
                        spawn=self._spawn,
                        recording_url=self.recording_url,
                        conference_end_hangs_up=self.conference_end_hangs_up,
                    )
                    logger.info(
                        "sim.started", time_scale=self.time_scale, accounts=list(self.accounts)
                    )
                    task_status.started(self)
                    await trio.sleep_forever()
        self._nursery = None
        logger.info("sim.stopped", calls=self._counts["placed"])

    def close(self) -> None:
        """End every call at once (no webhooks) and stop :meth:`run`."""
        self._closing = True
        if self._rt is not None:
            self._rt.abort()
        if self._scope is not None:
            self._scope.cancel()

    def _spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        if self._nursery is None or self._closing:
            logger.debug("sim.task.dropped", reason="simulator not running")
            return
        self._nursery.start_soon(fn)

    def _require_running(self) -> None:
        if self._rt is None or self._nursery is None:
            raise RuntimeError("the simulator is not running (await nursery.start(sim.run))")

    @property
    def _runtime(self) -> Runtime:
        if self._rt is None:
            raise RuntimeError("the simulator is not running (await nursery.start(sim.run))")
        return self._rt

    def recording_url(self, recording_id: str, file_format: str = "mp3") -> str:
        return f"{self.public_url}/sim/recordings/{recording_id}.{file_format}"

    # --- placing calls --------------------------------------------------------------------

    def account(self, auth_id: str) -> Account | None:
        return self.accounts.get(auth_id)

    def make_call(self, account: Account, request: CallRequest) -> MakeCallResult:
        """Originate one call per destination (REST ``POST /Call/``)."""
        self._require_running()
        urls = CallUrls(
            answer_url=request.answer_url,
            answer_method=request.answer_method,
            hangup_url=request.hangup_url,
            hangup_method=request.hangup_method,
            ring_url=request.ring_url,
            ring_method=request.ring_method,
            fallback_url=request.fallback_url,
            fallback_method=request.fallback_method,
        )
        request_uuids: list[str] = []
        queued = False
        now = trio.current_time()
        for destination in request.to:
            ident = CallIdentity(
                call_uuid=new_id(),
                direction="outbound",
                from_number=request.from_number,
                to_number=destination,
                request_uuid=new_id(),
                caller_name=request.caller_name,
            )
            not_before = self._cps.reserve(now)
            call = SimCall(
                ident=ident,
                clock=self.clock,
                account=account,
                urls=urls,
                script=self.scripts.for_number(destination),
                party_number=destination,
                created_at=self.clock.now(),
                ring_timeout_s=float(request.ring_timeout_s),
                time_limit_s=float(request.time_limit_s),
                not_before=not_before,
            )
            if not_before > now:
                queued = True
                self.log.add(
                    EventKind.CALL_QUEUED,
                    call_uuid=call.call_uuid,
                    number=destination,
                    request_uuid=ident.request_uuid,
                    delay_s=round(not_before - now, 3),
                )
            self._register(call)
            request_uuids.append(ident.request_uuid)
        return MakeCallResult(tuple(request_uuids), queued)

    def place_inbound(
        self,
        from_number: str,
        to_number: str,
        lead: LeadScript | None = None,
        *,
        account: Account | None = None,
        application: CallUrls | None = None,
    ) -> str:
        """A lead calls ``to_number`` from ``from_number``; return the new CallUUID.

        The call requests the application's answer URL (``application`` or the simulator's).
        """
        self._require_running()
        urls = application or self.application
        if urls is None:
            raise ValueError("no application answer_url configured for inbound calls")
        ident = CallIdentity(
            call_uuid=new_id(),
            direction="inbound",
            from_number=wire_number(from_number),
            to_number=wire_number(to_number),
        )
        call = SimCall(
            ident=ident,
            clock=self.clock,
            account=account or self.main_account,
            urls=urls,
            script=lead or self.default_lead,
            party_number=ident.from_number,
            created_at=self.clock.now(),
        )
        self._register(call)
        return call.call_uuid

    def _register(self, call: SimCall) -> None:
        self._live[call.call_uuid] = call
        if call.request_uuid:
            self._by_request[call.request_uuid] = call
        self._counts["placed"] += 1
        self._spawn(partial(self._run_call, call))

    # --- acting on calls ------------------------------------------------------------------

    def _find_live(self, account: Account | None, uuid: str) -> SimCall | None:
        call = self._live.get(uuid) or self._by_request.get(uuid)
        if call is None or not call.live:
            return None
        if account is not None and call.account.auth_id != account.auth_id:
            return None
        return call

    def cancel_request(self, account: Account | None, request_uuid: str) -> bool:
        """Cancel a queued or ringing request (cause 1000); False if none such."""
        call = self._by_request.get(request_uuid)
        if call is None or (account is not None and call.account.auth_id != account.auth_id):
            return False
        if call.state not in (CallState.QUEUED, CallState.RINGING):
            return False
        return call.end(CANCELED)

    def hangup_call(self, account: Account | None, uuid: str) -> bool:
        """Hang up a live call by CallUUID (or RequestUUID); before answer it is a cancel."""
        call = self._find_live(account, uuid)
        if call is None:
            return False
        if call.state in (CallState.QUEUED, CallState.RINGING):
            return call.end(CANCELED)
        return call.end(normal_hangup("API Request"))

    def transfer_call(self, account: Account | None, uuid: str, url: str, method: str) -> bool:
        """Replace an answered call's running XML with the document at ``url``."""
        call = self._find_live(account, uuid)
        if call is None or call.state is not CallState.IN_PROGRESS or call.cause is not None:
            return False
        call.pending_transfer = (url, method)
        if call.doc_scope is not None:
            call.doc_scope.cancel()
        return True

    def party_hangup(self, uuid: str) -> bool:
        """The simulated person hangs up now (control API, tests); ringing = they decline."""
        call = self._find_live(None, uuid)
        if call is None:
            return False
        if call.state in (CallState.QUEUED, CallState.RINGING):
            return call.end(rejected_by_callee())
        return call.end(normal_hangup(call.party_source))

    def start_recording(
        self, account: Account | None, uuid: str, request: RecordRequest
    ) -> ApiRecording | None:
        """Record API: start recording an answered call."""
        call = self._find_live(account, uuid)
        if call is None or call.state is not CallState.IN_PROGRESS:
            return None
        recording_id = new_id()
        recording = ApiRecording(
            recording_id=recording_id,
            url=self.recording_url(recording_id, request.file_format),
            started=self.clock.now(),
            time_limit_s=float(request.time_limit_s),
            callback_url=request.callback_url,
            callback_method=request.callback_method,
            api_id=new_id(),
        )
        call.recordings.append(recording)

        async def limit() -> None:
            await self.clock.sleep(recording.time_limit_s)
            await self._deliver_api_recording(call, recording)

        self._spawn(limit)
        return recording

    def stop_recording(self, account: Account | None, uuid: str) -> bool:
        call = self._find_live(account, uuid)
        if call is None:
            return False
        for recording in call.recordings:
            if not recording.stopped:
                self._spawn(partial(self._deliver_api_recording, call, recording))
        return True

    async def _deliver_api_recording(self, call: SimCall, recording: ApiRecording) -> None:
        if recording.stopped:
            return
        recording.stopped = True
        ended = call.ended_at if call.ended_at is not None else self.clock.now()
        done = Recording(
            recording.recording_id,
            recording.url,
            self.clock.epoch(recording.started),
            self.clock.epoch(ended),
        )
        self.log.add(
            EventKind.RECORDING_FINISHED,
            call_uuid=call.call_uuid,
            number=call.party_number,
            what="record_api",
            recording_id=recording.recording_id,
            url=recording.url,
            duration_s=round(done.duration_s, 3),
        )
        if recording.callback_url and not self._closing:
            await self._runtime.notify(
                call,
                recording.callback_url,
                recording.callback_method,
                record_api_params(call.call_uuid, done, recording.api_id),
                what="record_api",
            )

    # --- the call task --------------------------------------------------------------------

    async def _run_call(self, call: SimCall) -> None:
        try:
            with call.scope:
                if call.ident.direction == "outbound":
                    await self._ring(call)
                else:
                    call.ring_at = call.created_at
                    call.ring_sent.set()
                    self.log.add(
                        EventKind.CALL_PLACED,
                        call_uuid=call.call_uuid,
                        number=call.party_number,
                        direction="inbound",
                        to=call.ident.to_number,
                    )
                    self._answer(call)
                if call.cause is None:
                    await self._talk(call)
        except Exception:
            # a simulator bug must cost one call, not the whole simulated carrier
            logger.exception("sim.call.crashed", call_uuid=call.call_uuid)
            call.end(SIMULATOR_ERROR)
        finally:
            with trio.CancelScope(shield=True):
                await self._finish(call)

    async def _ring(self, call: SimCall) -> None:
        """Outbound: queue, set up, ring; answer or end as the callee's script says."""
        clock = self.clock
        if call.not_before > trio.current_time():
            await trio.sleep_until(call.not_before)
        self.log.add(
            EventKind.CALL_PLACED,
            call_uuid=call.call_uuid,
            number=call.party_number,
            direction="outbound",
            request_uuid=call.request_uuid,
            caller_id=call.ident.from_number,
        )
        await clock.sleep(self.timings.setup_s)
        script = call.script
        assert isinstance(script, AgentScript)
        if script.busy or script.fail:
            call.end(BUSY if script.busy else FAILED)
            return
        call.state = CallState.RINGING
        call.ring_at = clock.now()
        self.log.add(
            EventKind.CALL_RINGING,
            call_uuid=call.call_uuid,
            number=call.party_number,
            request_uuid=call.request_uuid,
        )
        if call.urls.ring_url:
            self._spawn(partial(self._send_ring, call))
        else:
            call.ring_sent.set()
        if script.no_answer or script.answer_after_s >= call.ring_timeout_s:
            await clock.sleep(call.ring_timeout_s)
            call.end(NO_ANSWER)
            return
        await clock.sleep(script.answer_after_s)
        self._answer(call)

    async def _send_ring(self, call: SimCall) -> None:
        try:
            await self._runtime.notify(
                call,
                call.urls.ring_url,
                call.urls.ring_method,
                call_params(call.ident, "ringing"),
                what="ring",
            )
        finally:
            call.ring_sent.set()

    def _answer(self, call: SimCall) -> None:
        call.state = CallState.IN_PROGRESS
        call.answered_at = self.clock.now()
        self._counts["answered"] += 1
        self.log.add(
            EventKind.CALL_ANSWERED,
            call_uuid=call.call_uuid,
            number=call.party_number,
            direction=call.ident.direction,
        )

    async def _talk(self, call: SimCall) -> None:
        """Answered: the person's timers run beside the XML until something ends the call."""
        with trio.move_on_after(self.timings.webhook_wait_s):
            await call.ring_sent.wait()  # keep ring -> answer order on the wire
        async with trio.open_nursery() as party:
            script = call.script
            if script.hangup_after_s is not None:
                party.start_soon(
                    self._end_after, call, script.hangup_after_s, normal_hangup(call.party_source)
                )
            if call.time_limit_s > 0:
                party.start_soon(self._end_after, call, call.time_limit_s, time_limit())
            if script.talk_s is not None:
                party.start_soon(self._end_after_connected, call, script.talk_s)
            cause = await run_documents(self._runtime, self.rooms, call)
            call.end(cause)

    async def _end_after(self, call: SimCall, delay_s: float, cause: HangupCause) -> None:
        """End the call ``delay_s`` after it was answered."""
        answered = call.answered_at if call.answered_at is not None else self.clock.now()
        await self.clock.sleep(answered + delay_s - self.clock.now())
        call.end(cause)

    async def _end_after_connected(self, call: SimCall, talk_s: float) -> None:
        await call.connected.wait()
        await self.clock.sleep(talk_s)
        call.end(normal_hangup(call.party_source))

    async def _finish(self, call: SimCall) -> None:
        """Record the end and send ``hangup_url`` (runs shielded)."""
        shutting_down = call.cause is None or self._closing
        if call.cause is None:
            call.cause = normal_hangup("Plivo")
        cause = call.cause
        call.state = CallState.ENDED
        if call.ended_at is None:
            call.ended_at = self.clock.now()
        self._live.pop(call.call_uuid, None)
        self._ended[call.call_uuid] = call
        while len(self._ended) > _KEEP_ENDED:
            _, old = self._ended.popitem(last=False)
            self._by_request.pop(old.request_uuid, None)
        self._counts["ended"] += 1
        self._counts[f"status:{cause.status}"] += 1
        self._counts[f"cause:{cause.code}"] += 1
        duration = 0.0 if call.answered_at is None else call.ended_at - call.answered_at
        self.log.add(
            EventKind.CALL_ENDED,
            call_uuid=call.call_uuid,
            number=call.party_number,
            direction=call.ident.direction,
            status=cause.status,
            cause_code=cause.code,
            cause_name=cause.name,
            source=cause.source,
            duration_s=round(duration, 3),
        )
        call.finished.set()
        if shutting_down or self._rt is None:
            return
        with trio.move_on_after(self.timings.webhook_wait_s * 2):
            for recording in call.recordings:
                await self._deliver_api_recording(call, recording)
            if call.ring_at is not None and not call.ring_sent.is_set():
                with trio.move_on_after(self.timings.webhook_wait_s):
                    await call.ring_sent.wait()
            await self._rt.notify(
                call,
                call.urls.hangup_url,
                call.urls.hangup_method,
                hangup_params(call.ident, cause, call.times(self.clock)),
                what="hangup",
            )

    # --- queries --------------------------------------------------------------------------

    def get_call(self, uuid: str) -> SimCall | None:
        """A live or recently ended call, by CallUUID or RequestUUID."""
        return self._live.get(uuid) or self._ended.get(uuid) or self._by_request.get(uuid)

    def live_calls(self) -> list[dict[str, object]]:
        """Every call not yet ended (queued, ringing, in progress)."""
        return [call.info(self.clock) for call in self._live.values()]

    def live_call_uuids(self, account: Account | None = None) -> list[str]:
        """CallUUIDs of ringing and answered calls (REST ``GET /Call/?status=live``)."""
        return [
            c.call_uuid
            for c in self._live.values()
            if c.state in (CallState.RINGING, CallState.IN_PROGRESS)
            and (account is None or c.account.auth_id == account.auth_id)
        ]

    def queued_request_uuids(self, account: Account | None = None) -> list[str]:
        now = trio.current_time()
        return [
            c.request_uuid
            for c in self._live.values()
            if c.state is CallState.QUEUED
            and c.not_before > now
            and (account is None or c.account.auth_id == account.auth_id)
        ]

    def call_info(self, uuid: str) -> dict[str, object] | None:
        call = self.get_call(uuid)
        return None if call is None else call.info(self.clock)

    def history(self, number: str) -> list[SimEvent]:
        """Every event about the phone ``number`` (the simulated party's side)."""
        return self.log.for_number(number)

    def counts(self) -> dict[str, int]:
        """Counters: placed, answered, ended, live, ``status:<CallStatus>``,
        ``cause:<HangupCauseCode>``, webhooks sent/failed."""
        counts = dict(self._counts)
        counts["live"] = len(self._live)
        counts["rooms"] = len(self.rooms)
        counts["webhooks_sent"] = self.log.count(EventKind.WEBHOOK_SENT)
        counts["webhooks_failed"] = self.log.count(EventKind.WEBHOOK_FAILED)
        return counts

    def rooms_info(self) -> list[dict[str, object]]:
        return room_snapshot(self.rooms)

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds (checked after every event); add your deadline."""
        await self.log.wait_for(predicate)

    async def wait_idle(self) -> None:
        """Return once no call is live; add your deadline."""
        await self.log.wait_for(lambda: not self._live)
