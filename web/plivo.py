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
from orchestrator.errors import (
    BodyError,
    BodyTooLarge,
    CallNotFound,
    PeerUnreachable,
    WebhookInvalid,
)
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
from orchestrator.read_models import InstanceView
from orchestrator.signing import HEADERS as INSTANCE_HEADERS
from orchestrator.signing import INSTANCE_HEADER, is_forwarded
from web.fields import Fields, query_fields, read_form
from web.forwarding import Forwarding, raw_target

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
    forwarded: bool = False  # handed on by another instance (never forwarded again)
    body: bytes = b""  # the raw body, kept to hand the request on (cluster only)


class _Refused(Exception):
    """The request is answered ``status`` ``{"error": message}`` and reaches nothing."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def create_plivo_blueprint(
    service: PlivoCallService,
    settings: Settings,
    *,
    forwarding: Forwarding | None = None,
    reply_timeout_s: float = DEFAULT_REPLY_TIMEOUT_S,
    notify_timeout_s: float = DEFAULT_NOTIFY_TIMEOUT_S,
) -> Blueprint:
    """The Plivo routes, bound to ``service`` and ``settings`` (see the module docstring);
    with ``forwarding`` (a cluster), a call's webhooks reach the instance that owns it."""
    # every URL we hand Plivo is built on this instance's own callback base; Plivo signs the
    # URL it requested, so a request may be signed for it or for the shared public URL
    urls = CallbackUrls(settings.server.callback_base)
    signed_bases = list(dict.fromkeys([urls.public_url, settings.server.public_url.rstrip("/")]))
    carrier = settings.carrier
    bp = Blueprint("plivo", __name__)
    hold_music = hold_music_xml()
    empty = empty_xml()

    async def incoming() -> _Incoming:
        """The request's query and fields, once it is known to come from the carrier (its
        signature verifies) or from another instance (the cluster's signature verifies).

        Raises:
            _Refused: 403 for a bad carrier signature (a form that cannot be read cannot be
                verified either), 401 for a forged instance-to-instance request.
        """
        query = {key: values[0] for key, values in query_fields().items()}
        if is_forwarded(instance_headers()):
            return await from_instance(query)
        signed: Fields | None = None
        body = b""
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
                    raise _Refused(403, "bad signature") from None
                raise
            fields = {key: values[0] for key, values in signed.items()}
            if forwarding is not None:
                body = await request.get_data(cache=True, as_text=False, parse_form_data=False)
        else:
            fields = query
        if carrier.verify_signatures:
            headers = {name: request.headers.get(name, "") for name in SIGNATURE_HEADERS}
            query_string = request.query_string.decode("latin-1")
            if not any(
                verify_v3(
                    request.method,
                    public_request_url(base, request.path, query_string),
                    headers,
                    signed,
                    carrier.auth_token,
                )
                for base in signed_bases
            ):
                logger.warning("plivo.signature_rejected", method=request.method, path=request.path)
                raise _Refused(403, "bad signature")
        return _Incoming(query, fields, body=body)

    def instance_headers() -> dict[str, str]:
        return {name: request.headers.get(name, "") for name in INSTANCE_HEADERS}

    async def from_instance(query: dict[str, str]) -> _Incoming:
        """A webhook another instance verified and handed on (web/forwarding.py)."""
        body = await request.get_data(cache=True, as_text=False, parse_form_data=False)
        target = raw_target(request.scope)
        problem = (
            "this instance takes no instance-to-instance requests (no [cluster] configuration)"
            if forwarding is None
            else forwarding.refusal(request.method, target, body, instance_headers())
        )
        if problem is not None:
            logger.warning(
                "cluster.forward_rejected",
                method=request.method,
                path=request.path,
                sender=request.headers.get(INSTANCE_HEADER, ""),
                reason=problem,
            )
            raise _Refused(401, problem)
        if request.method == "POST":
            fields = {key: values[0] for key, values in (await read_form()).items()}
        else:
            fields = query
        return _Incoming(query, fields, forwarded=True)

    async def owner_reply(got: _Incoming, event: CarrierEvent | None) -> ResponseReturnValue | None:
        """The owner's answer when another instance owns the call (None: it is ours, or no
        live instance owns it: answered here as a stale callback).

        Raises:
            PeerUnreachable: the owner did not answer in time (logged by the peers client).
        """
        if forwarding is None or got.forwarded or event is None:
            return None
        peer = await forwarding.owner_of(event)
        if peer is None:
            return None
        return await forward_to(peer, got)

    async def forward_to(peer: InstanceView, got: _Incoming) -> ResponseReturnValue:
        assert forwarding is not None
        reply = await forwarding.forward(
            peer,
            method=request.method,
            target=raw_target(request.scope),
            body=got.body,
            content_type=request.headers.get("Content-Type", ""),
        )
        return reply.body, reply.status, {"Content-Type": reply.content_type}

    async def document(got: _Incoming) -> ResponseReturnValue | None:
        """A per-call document (room, voicemail) of a call another instance owns: its owner's,
        whose URLs name it (None: render it here)."""
        if forwarding is None or got.forwarded:
            return None
        peer = await forwarding.owner_of_call(_call_id(got))
        if peer is None:
            return None
        try:
            return await forward_to(peer, got)
        except PeerUnreachable:
            return None  # the same document, with this instance's URLs: they forward too

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
        await incoming()
        return xml(hold_music)

    async def room() -> ResponseReturnValue:
        got = await incoming()
        owners = await document(got)
        return owners if owners is not None else xml(lead_hold_xml(_call_id(got), urls))

    async def voicemail() -> ResponseReturnValue:
        got = await incoming()
        owners = await document(got)
        if owners is not None:
            return owners
        return xml(voicemail_xml(_call_id(got), settings.routing.voicemail_max_s, urls))

    # --- events ---------------------------------------------------------------------------

    def reply_view(route: Route) -> Callable[[], Awaitable[ResponseReturnValue]]:
        async def view() -> ResponseReturnValue:
            got = await incoming()
            event = parse_event(route, got.query, got.fields)
            assert isinstance(event, LegAnswered | LegDigits | IvrAnswered)
            leg_id = "" if isinstance(event, IvrAnswered) else event.leg_id
            try:
                owners = await owner_reply(got, event)
            except PeerUnreachable:
                # the owner cannot hear this answer: nobody may be left on a dead line
                decision, why = None, "plivo.owner_unreachable"
            else:
                if owners is not None:
                    return owners
                decision, taken = await deliver(event, reply_timeout_s)
                why = "plivo.decision_missing" if taken else "plivo.reply_timed_out"
            if decision is None:
                logger.warning(
                    why,
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
            event = parse_event(route, got.query, got.fields)
            try:
                owners = await owner_reply(got, event)
            except PeerUnreachable:
                assert event is not None
                logger.error(
                    "plivo.event_dropped",
                    kind=type(event).__name__,
                    tracking_guid=event.tracking_guid,
                    route=str(route),
                    reason="owner unreachable",
                )
                return {"error": "the instance that owns this call did not answer"}, 503
            if owners is not None:
                return owners
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

    @bp.errorhandler(_Refused)
    async def refused(error: _Refused) -> ResponseReturnValue:
        return {"error": str(error)}, error.status

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
