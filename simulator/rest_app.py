"""Plivo's REST surface for the calls the orchestrator makes (docs/plivo.md §1, §5.2), on
quart-trio.

Under ``/v1/Account/{auth_id}/`` with HTTP Basic auth (user = Auth ID, password = Auth Token):

- ``POST Call/``: Make Call (JSON or form) -> 201 ``{"message": "call fired"|"call queued"|
  "calls fired", "request_uuid", "api_id"}``
- ``GET Call/?status=live|queued``, ``GET Call/{uuid}/[?status=live]``
- ``POST Call/{uuid}/``: transfer -> 202 ``"call transferred"``
- ``DELETE Call/{uuid}/``: hang up -> 204 (404 when not live)
- ``POST|DELETE Call/{uuid}/Record/``: Record API -> 202 / 204
- ``DELETE Request/{request_uuid}/``: cancel a queued/ringing request -> 204

Errors are ``{"api_id": ..., "error": ...}`` with Plivo's status codes; trailing slashes are
optional; JSON bodies are accepted on DELETE too (the SDK sends them). With ``rate_limit`` > 0,
more than that many requests in 5 s get 429. Each ``/v1/`` request is logged as an
``api.request`` event whose ``received_at`` (simulated seconds, like the event's ``at``) is when
it reached the app, before its handler ran. The ``/sim/`` control API is added by
:func:`simulator.control_api.add_control_routes`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from urllib.parse import parse_qsl

import structlog
import trio
from quart import Response, g, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from simulator.control_api import add_control_routes
from simulator.engine import Simulator
from simulator.events import EventKind
from simulator.limits import RateWindow
from simulator.rest_params import (
    ParamError,
    parse_make_call,
    parse_record,
    parse_transfer,
)
from simulator.runtime import new_id
from simulator.state import Account

__all__ = ["create_app"]

logger = structlog.get_logger()

_PREFIX = "/v1/Account/<auth_id>"


def json_response(status: int, body: Mapping[str, object]) -> Response:
    payload = {"api_id": new_id(), **body}
    return Response(json.dumps(payload), status=status, content_type="application/json")


def error_response(status: int, message: str) -> Response:
    return json_response(status, {"error": message})


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


async def request_body() -> dict[str, object]:
    """Query args merged with the body (JSON object or form-encoded).

    Raises:
        ParamError: the body is neither a JSON object nor a form.
    """
    data: dict[str, object] = dict(request.args.items())
    raw = await request.get_data(cache=True, as_text=False, parse_form_data=False)
    if not raw or not raw.strip():
        return data
    if request.mimetype == "application/json" or raw.lstrip().startswith(b"{"):
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise ParamError("body is not valid JSON") from None
        if not isinstance(parsed, dict):
            raise ParamError("body must be a JSON object")
        data.update(parsed)
    else:
        data.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    return data


def create_app(sim: Simulator, *, rate_limit: int = 0) -> QuartTrio:
    """The simulator's HTTP app: Plivo REST under ``/v1/`` plus the ``/sim/`` control API."""
    app = QuartTrio(__name__)
    window = RateWindow(rate_limit)

    def authenticate(auth_id: str) -> Account | Response:
        credentials = _basic_credentials(request.headers.get("Authorization"))
        account = sim.account(auth_id)
        if (
            credentials is None
            or account is None
            or credentials != (account.auth_id, account.auth_token)
        ):
            return error_response(401, "Authentication failed")
        return account

    @app.before_request
    async def limit_rate() -> Response | None:
        g.received_at = sim.clock.now()  # when the request reached us (benchmarks read it)
        if request.path.startswith("/v1/") and not window.allow(trio.current_time()):
            return error_response(429, "Too many requests")
        return None

    @app.after_request
    async def log_api(response: Response) -> Response:
        if request.path.startswith("/v1/"):
            received_at = float(getattr(g, "received_at", sim.clock.now()))
            sim.log.add(
                EventKind.API_REQUEST,
                method=request.method,
                path=request.path,
                status=response.status_code,
                received_at=round(received_at, 6),
            )
        return response

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        return error_response(error.code or 500, (error.name or "error").lower())

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> Response:
        # a simulator bug: answer in Plivo's error shape (the SDK re-sends on 5xx, beware)
        logger.error("sim.api.failed", path=request.path, error=repr(error), exc_info=error)
        return error_response(500, "internal error in the simulator")

    @app.errorhandler(ParamError)
    async def param_error(error: ParamError) -> Response:
        return error_response(400, str(error))

    @app.route(f"{_PREFIX}/Call/", methods=["POST"], strict_slashes=False)
    async def make_call(auth_id: str) -> Response:
        account = authenticate(auth_id)
        if isinstance(account, Response):
            return account
        call_request = parse_make_call(await request_body())
        result = sim.make_call(account, call_request)
        uuids: object = list(result.request_uuids) if call_request.bulk else result.request_uuids[0]
        return json_response(201, {"message": result.message, "request_uuid": uuids})

    @app.route(f"{_PREFIX}/Call/", methods=["GET"], strict_slashes=False)
    async def list_calls(auth_id: str) -> Response:
        account = authenticate(auth_id)
        if isinstance(account, Response):
            return account
        status = request.args.get("status", "live")
        if status == "live":
            return json_response(200, {"calls": sim.live_call_uuids(account)})
        if status == "queued":
            return json_response(200, {"calls": sim.queued_request_uuids(account)})
        return error_response(400, f"status must be live or queued, got {status!r}")

    @app.route(f"{_PREFIX}/Call/<uuid>/", methods=["GET"], strict_slashes=False)
    async def get_call(auth_id: str, uuid: str) -> Response:
        account = authenticate(auth_id)
        if isinstance(account, Response):
            return account
        call = sim.get_call(uuid)
        if call is None or call.account.auth_id != account.auth_id:
            return error_response(404, "not found")
        info = call.info(sim.clock)
        if request.args.get("status") == "live":
            if not call.live:
                return error_response(404, "not found")
            return json_response(
                200,
                {
                    "call_status": "ringing"
                    if info["state"] in ("queued", "ringing")
                    else "in-progress",
                    "call_uuid": call.call_uuid,
                    "caller_name": call.ident.caller_name,
                    "direction": call.ident.direction,
                    "from": call.ident.from_number,
                    "to": call.ident.to_number,
                    "request_uuid": call.request_uuid,
                    "session_start": info["session_start"],
                },
            )
        return json_response(
            200,
            {
                "call_uuid": call.call_uuid,
                "call_direction": call.ident.direction,
                "from_number": call.ident.from_number,
                "to_number": call.ident.to_number,
                "call_state": info["state"],
                "hangup_cause_name": info["hangup_cause_name"],
                "hangup_cause_code": info["hangup_cause_code"],
                "hangup_source": info["hangup_source"],
            },
        )

    @app.route(f"{_PREFIX}/Call/<uuid>/", methods=["POST"], strict_slashes=False)
    async def transfer_call(auth_id: str, uuid: str) -> Response:
        account = authenticate(auth_id)
        if isinstance(account, Response):
            return account
        transfer = parse_transfer(await request_body())
        if not sim.transfer_call(account, uuid, transfer.aleg_url, transfer.aleg_method):
            return error_response(404, "call not found or not in progress")
        return json_response(202, {"message": "call transferred"})

    @app.route(f"{_PREFIX}/Call/<uuid>/", methods=["DELETE"], strict_slashes=False)
    async def hangup_call(auth_id: str, uuid: str) -> Response:
        account = authenticate(auth_id)
        if isinstance(account, Response):
            return account
        await request_body()  # tolerated, ignored ({"call_uuid": ...} from the SDK)
        if not sim.hangup_call(account, uuid):
            return error_response(404, "not found")
        return Response("", status=204)

    @app.route(f"{_PREFIX}/Call/<uuid>/Record/", methods=["POST"], strict_slashes=False)
    async def record_call(auth_id: str, uuid: str) -> Response:
        account = authenticate(auth_id)
        if isinstance(account, Response):
            return account
        recording = sim.start_recording(account, uuid, parse_record(await request_body()))
        if recording is None:
            return error_response(404, "call not found or not in progress")
        return json_response(
            202,
            {
                "message": "call recording started",
                "url": recording.url,
                "recording_id": recording.recording_id,
            },
        )

    @app.route(f"{_PREFIX}/Call/<uuid>/Record/", methods=["DELETE"], strict_slashes=False)
    async def stop_recording(auth_id: str, uuid: str) -> Response:
        account = authenticate(auth_id)
        if isinstance(account, Response):
            return account
        if not sim.stop_recording(account, uuid):
            return error_response(404, "not found")
        return Response("", status=204)

    @app.route(f"{_PREFIX}/Request/<request_uuid>/", methods=["DELETE"], strict_slashes=False)
    async def cancel_request(auth_id: str, request_uuid: str) -> Response:
        account = authenticate(auth_id)
        if isinstance(account, Response):
            return account
        await request_body()
        if not sim.cancel_request(account, request_uuid):
            return error_response(404, "not found")
        return Response("", status=204)

    add_control_routes(app, sim)
    return app
