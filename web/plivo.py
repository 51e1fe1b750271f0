"""The Plivo webhook routes: verify, parse, hand to the call service, answer XML.

Every route checks the V3 signature first (unless ``carrier.verify_signatures`` is off): a
missing or wrong one gets 403 ``{"error": "bad signature"}`` and reaches nothing else. Then
the request is parsed by the pure functions of :mod:`orchestrator.carriers.plivo.webhooks`
and handed to the :class:`PlivoCallService` (the lead's Orchestrator).

Routes (paths in ``orchestrator.carriers.plivo.urls``; GET and POST both accepted, since the
method of the application's URLs is the operator's choice):

- ``/plivo/answer``: the lead's answer URL. ``accept_inbound`` is synchronous, so the lead's
  XML never waits on a customer or the database (docs/contract.md §1.4). A trailing ``/`` is
  accepted.
- ``/plivo/hangup``: the lead's hangup URL (a trailing ``/`` is accepted).
- ``/plivo/leg/answer``, ``/plivo/leg/digits``: need the call's decision, awaited for at most
  ``reply_timeout_s``; no decision (unknown call, no reply, timeout) renders a Release, so an
  agent is never left on an unconnected line.
- ``/plivo/leg/ring``, ``/plivo/leg/hangup``, ``/plivo/conference``, ``/plivo/voicemail/done``:
  notifications, answered ``<Response/>``.
- ``/plivo/hold`` (hold music), ``/plivo/room`` (the lead's room, a transfer target),
  ``/plivo/voicemail`` (the voicemail XML): documents only.

Error handling: :class:`WebhookInvalid` → 400 ``{"error": ...}``. A callback for a call the
service does not know (:class:`CallNotFound`) is answered as if delivered (it is stale, e.g. a
leg hanging up after its call finished). A notification the service could not take within
``notify_timeout_s`` gets 503 and an error log line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import structlog
import trio
from quart import Blueprint, request
from quart.typing import ResponseReturnValue

from orchestrator.carriers.plivo.signature import (
    MAIN_ACCOUNT_SIGNATURE_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    public_request_url,
    verify_v3,
)
from orchestrator.carriers.plivo.urls import (
    CONFERENCE_PATH,
    HOLD_MUSIC_PATH,
    IVR_PATH,
    LEAD_ANSWER_PATH,
    LEAD_HANGUP_PATH,
    LEG_ANSWER_PATH,
    LEG_DIGITS_PATH,
    LEG_HANGUP_PATH,
    LEG_RING_PATH,
    ROOM_PATH,
    VOICEMAIL_DONE_PATH,
    VOICEMAIL_PATH,
    CallbackUrls,
)
from orchestrator.carriers.plivo.webhooks import Route, call_guid, parse_event, parse_lead_answer
from orchestrator.carriers.plivo.xml import (
    UNAVAILABLE_TEXT,
    empty_xml,
    hold_music_xml,
    ivr_xml,
    lead_hold_xml,
    render_decision,
    unknown_number_xml,
    voicemail_xml,
)
from orchestrator.config import Settings
from orchestrator.errors import BodyError, BodyTooLarge, CallNotFound, WebhookInvalid
from orchestrator.messages import (
    CarrierEvent,
    Decision,
    InboundAccepted,
    InboundRejected,
    InboundResult,
    IvrAnswered,
    JoinRoom,
    LegAnswered,
    LegDigits,
    Release,
)
from web.fields import Fields, query_fields, read_form

logger = structlog.get_logger()

#: A backstop on how long a leg's answer/digits request waits for the call's decision. The
#: call's own reply deadline (5 s, shorter than this) decides first and records that the
#: carrier was told to release the agent; cancelling from here instead would lose that record.
DEFAULT_REPLY_TIMEOUT_S = 8.0
#: How long a notification may wait for the service to take it.
DEFAULT_NOTIFY_TIMEOUT_S = 10.0

_XML_HEADERS = {"Content-Type": "application/xml"}
_METHODS = ["GET", "POST"]
SIGNATURE_HEADERS = (SIGNATURE_HEADER, MAIN_ACCOUNT_SIGNATURE_HEADER, NONCE_HEADER)


class PlivoCallService(Protocol):
    """What the Plivo routes need from the orchestrator."""

    def accept_inbound(
        self, *, carrier_call_id: str, from_number: str, to_number: str
    ) -> InboundResult:
        """Take in (or recognise again) the lead's call; must not wait on anything.

        ``from_number``/``to_number`` are 10-digit NANP when they are NANP numbers; otherwise
        the raw value the carrier sent.
        """
        ...

    async def deliver(self, event: CarrierEvent) -> Decision | None:
        """Hand ``event`` to its call; for LegAnswered/LegDigits return the decision to render."""
        ...


@dataclass(frozen=True, slots=True)
class _Incoming:
    query: dict[str, str]  # the URL's query (our ids)
    fields: dict[str, str]  # Plivo's fields: the POST form, or the query of a GET


def create_plivo_blueprint(
    service: PlivoCallService,
    settings: Settings,
    *,
    reply_timeout_s: float = DEFAULT_REPLY_TIMEOUT_S,
    notify_timeout_s: float = DEFAULT_NOTIFY_TIMEOUT_S,
) -> Blueprint:
    """The Plivo routes, bound to ``service`` and ``settings`` (see the module docstring)."""
    urls = CallbackUrls(settings.server.public_url)
    carrier = settings.carrier
    bp = Blueprint("plivo", __name__)
    hold_music = hold_music_xml()
    empty = empty_xml()

    async def incoming() -> _Incoming | None:
        """The request's query and fields; ``None`` when its signature does not verify (a
        form that cannot be read cannot be verified either)."""
        query = {key: values[0] for key, values in query_fields().items()}
        signed: Fields | None = None
        if request.method == "POST":
            try:
                signed = await read_form()
            except BodyError:
                if carrier.verify_signatures:
                    logger.warning(
                        "plivo.signature_rejected",
                        method=request.method,
                        path=request.path,
                        reason="unreadable form",
                    )
                    return None
                raise
            fields = {key: values[0] for key, values in signed.items()}
        else:
            fields = query
        if carrier.verify_signatures:
            url = public_request_url(
                urls.public_url, request.path, request.query_string.decode("latin-1")
            )
            headers = {name: request.headers.get(name, "") for name in SIGNATURE_HEADERS}
            if not verify_v3(request.method, url, headers, signed, carrier.auth_token):
                logger.warning("plivo.signature_rejected", method=request.method, path=request.path)
                return None
        return _Incoming(query, fields)

    def forbidden() -> ResponseReturnValue:
        return {"error": "bad signature"}, 403

    def xml(body: str) -> ResponseReturnValue:
        return body, 200, _XML_HEADERS

    async def deliver(event: CarrierEvent, timeout_s: float) -> tuple[Decision | None, bool]:
        """(decision, taken): ``taken`` is False when the service did not take it in time."""
        with trio.move_on_after(timeout_s):
            try:
                return await service.deliver(event), True
            except CallNotFound:
                logger.info(
                    "plivo.event_unrouted",
                    kind=type(event).__name__,
                    tracking_guid=event.tracking_guid,
                    call_uuid=getattr(event, "call_id", ""),
                )
                return None, True
        return None, False

    # --- the lead -------------------------------------------------------------------------

    async def lead_answer() -> ResponseReturnValue:
        got = await incoming()
        if got is None:
            return forbidden()
        answer = parse_lead_answer(got.fields)
        if not answer.from_is_nanp:
            logger.info(
                "inbound.caller_id_not_nanp", caller_id=answer.from_number, call_uuid=answer.call_id
            )
        result = service.accept_inbound(
            carrier_call_id=answer.call_id,
            from_number=answer.from_number,
            to_number=answer.to_number,
        )
        match result:
            case InboundAccepted():
                if result.ivr is not None:
                    return xml(ivr_xml(result.tracking_guid, result.ivr, urls))
                return xml(lead_hold_xml(result.tracking_guid, urls))
            case InboundRejected():
                logger.warning(
                    "inbound.rejected",
                    number=answer.to_number,
                    caller_id=answer.from_number,
                    reason=result.reason,
                    call_uuid=answer.call_id,
                )
                return xml(unknown_number_xml())

    async def hold() -> ResponseReturnValue:
        got = await incoming()
        return forbidden() if got is None else xml(hold_music)

    async def room() -> ResponseReturnValue:
        got = await incoming()
        if got is None:
            return forbidden()
        return xml(lead_hold_xml(_call_id(got), urls))

    async def voicemail() -> ResponseReturnValue:
        got = await incoming()
        if got is None:
            return forbidden()
        return xml(voicemail_xml(_call_id(got), settings.routing.voicemail_max_s, urls))

    # --- events ---------------------------------------------------------------------------

    def reply_view(route: Route) -> Callable[[], Awaitable[ResponseReturnValue]]:
        async def view() -> ResponseReturnValue:
            got = await incoming()
            if got is None:
                return forbidden()
            event = parse_event(route, got.query, got.fields)
            assert isinstance(event, LegAnswered | LegDigits | IvrAnswered)
            leg_id = "" if isinstance(event, IvrAnswered) else event.leg_id
            decision, taken = await deliver(event, reply_timeout_s)
            if decision is None:
                logger.warning(
                    "plivo.decision_missing" if taken else "plivo.reply_timed_out",
                    kind=type(event).__name__,
                    tracking_guid=event.tracking_guid,
                    leg_id=leg_id,
                )
                # an agent is released; a lead who answered the IVR waits in the room
                decision = (
                    JoinRoom() if isinstance(event, IvrAnswered) else Release(UNAVAILABLE_TEXT)
                )
            return xml(render_decision(decision, event.tracking_guid, leg_id, urls))

        return view

    def notify_view(route: Route) -> Callable[[], Awaitable[ResponseReturnValue]]:
        async def view() -> ResponseReturnValue:
            got = await incoming()
            if got is None:
                return forbidden()
            event = parse_event(route, got.query, got.fields)
            if event is not None:
                _, taken = await deliver(event, notify_timeout_s)
                if not taken:
                    logger.error(
                        "plivo.event_dropped",
                        kind=type(event).__name__,
                        tracking_guid=event.tracking_guid,
                        route=str(route),
                    )
                    return {"error": "busy, event not taken"}, 503
            return xml(empty)

        return view

    @bp.errorhandler(WebhookInvalid)
    async def invalid(error: WebhookInvalid) -> ResponseReturnValue:
        logger.warning("plivo.webhook_invalid", path=request.path, error=str(error))
        return {"error": str(error)}, 400

    @bp.errorhandler(BodyError)
    async def unreadable(error: BodyError) -> ResponseReturnValue:
        logger.warning("plivo.webhook_invalid", path=request.path, error=str(error))
        return {"error": str(error)}, 413 if isinstance(error, BodyTooLarge) else 400

    routes: list[tuple[str, str, Callable[[], Awaitable[ResponseReturnValue]]]] = [
        (LEAD_ANSWER_PATH, "lead_answer", lead_answer),
        (LEAD_ANSWER_PATH + "/", "lead_answer_slash", lead_answer),
        (LEAD_HANGUP_PATH, "lead_hangup", notify_view(Route.LEAD_HANGUP)),
        (LEAD_HANGUP_PATH + "/", "lead_hangup_slash", notify_view(Route.LEAD_HANGUP)),
        (HOLD_MUSIC_PATH, "hold", hold),
        (ROOM_PATH, "room", room),
        (VOICEMAIL_PATH, "voicemail", voicemail),
        (VOICEMAIL_DONE_PATH, "voicemail_done", notify_view(Route.VOICEMAIL_DONE)),
        (CONFERENCE_PATH, "conference", notify_view(Route.CONFERENCE)),
        (LEG_RING_PATH, "leg_ring", notify_view(Route.LEG_RING)),
        (LEG_HANGUP_PATH, "leg_hangup", notify_view(Route.LEG_HANGUP)),
        (LEG_ANSWER_PATH, "leg_answer", reply_view(Route.LEG_ANSWER)),
        (LEG_DIGITS_PATH, "leg_digits", reply_view(Route.LEG_DIGITS)),
        (IVR_PATH, "ivr", reply_view(Route.IVR)),
    ]
    for path, endpoint, view in routes:
        bp.add_url_rule(path, endpoint, view, methods=_METHODS, strict_slashes=True)
    return bp


def _call_id(got: _Incoming) -> str:
    return call_guid(got.query, f"{request.path} URL")
