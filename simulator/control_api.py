"""The simulator's control API under ``/sim/`` (JSON), for demos and tests in another process.

- ``GET  /sim/health`` -> ``{"ok": true}``
- ``GET  /sim/state`` -> live calls, counts, rooms, simulated time
- ``GET  /sim/agents`` / ``POST /sim/agents`` (``{"agents": {phone: script}, "default": script,
  "replace": bool}``) / ``PUT|DELETE /sim/agents/<phone>``: agent scripts
- ``POST /sim/inbound`` (``{"from", "to", "lead": script}``) -> 201 ``{"call_uuid"}``
- ``GET  /sim/calls/<uuid>``; ``POST /sim/calls/<uuid>/hangup`` (the simulated person hangs up)
- ``GET  /sim/events?since=N&kind=K&call_uuid=U`` -> ``{"events": [...], "last_seq"}``
- ``GET  /sim/numbers/<phone>/history``
- ``POST /sim/wait-idle?timeout=S`` -> 200 once no call is live, 408 on timeout
- ``GET  /sim/recordings/<id>.<fmt>`` -> a few bytes of fake audio

No authentication: bind the simulator to 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import trio
from quart import Response, request
from quart_trio import QuartTrio

from simulator.events import EventKind
from simulator.scripts import (
    ScriptError,
    agent_script_from_dict,
    lead_script_from_dict,
)

if TYPE_CHECKING:
    from simulator.engine import Simulator

__all__ = ["add_control_routes"]


def _json(status: int, body: Mapping[str, object]) -> Response:
    return Response(json.dumps(body, default=str), status=status, content_type="application/json")


async def _json_body() -> dict[str, Any]:
    raw = await request.get_data(cache=True, as_text=False, parse_form_data=False)
    if not raw or not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise ScriptError(["body is not valid JSON"]) from None
    if not isinstance(parsed, dict):
        raise ScriptError(["body must be a JSON object"])
    return parsed


def add_control_routes(app: QuartTrio, sim: Simulator) -> None:
    """Register the ``/sim/`` routes on ``app``."""

    @app.errorhandler(ScriptError)
    async def script_error(error: ScriptError) -> Response:
        return _json(400, {"error": str(error), "problems": error.problems})

    @app.get("/sim/health")
    async def health() -> Response:
        return _json(200, {"ok": True})

    @app.get("/sim/state")
    async def state() -> Response:
        return _json(
            200,
            {
                "time": round(sim.clock.now(), 3),
                "live_calls": sim.live_calls(),
                "counts": sim.counts(),
                "rooms": sim.rooms_info(),
            },
        )

    @app.get("/sim/agents")
    async def list_agents() -> Response:
        return _json(
            200, {"default": sim.scripts.default.to_dict(), "agents": sim.scripts.as_dict()}
        )

    @app.post("/sim/agents")
    async def set_agents() -> Response:
        body = await _json_body()
        problems: list[str] = []
        scripts = {}
        for phone, data in dict(body.get("agents") or {}).items():
            try:
                scripts[phone] = agent_script_from_dict(data, prefix=f"agents.{phone}")
            except ScriptError as exc:
                problems.extend(exc.problems)
        default = None
        if body.get("default") is not None:
            try:
                default = agent_script_from_dict(body["default"], prefix="default")
            except ScriptError as exc:
                problems.extend(exc.problems)
        if problems:
            raise ScriptError(problems)
        if body.get("replace"):
            sim.scripts.clear()
        if default is not None:
            sim.scripts.default = default
        for phone, script in scripts.items():
            sim.scripts.set(phone, script)
        return _json(200, {"agents": sim.scripts.as_dict()})

    @app.put("/sim/agents/<phone>")
    async def set_agent(phone: str) -> Response:
        script = agent_script_from_dict(await _json_body())
        sim.scripts.set(phone, script)
        return _json(200, {"phone": phone, "script": script.to_dict()})

    @app.delete("/sim/agents/<phone>")
    async def remove_agent(phone: str) -> Response:
        sim.scripts.remove(phone)
        return Response("", status=204)

    @app.post("/sim/inbound")
    async def inbound() -> Response:
        body = await _json_body()
        from_number, to_number = str(body.get("from", "")), str(body.get("to", ""))
        if not from_number or not to_number:
            raise ScriptError(["from and to are required"])
        lead = lead_script_from_dict(body.get("lead") or {}, prefix="lead")
        call_uuid = sim.place_inbound(from_number, to_number, lead)
        return _json(201, {"call_uuid": call_uuid})

    @app.get("/sim/calls/<uuid>")
    async def call_info(uuid: str) -> Response:
        info = sim.call_info(uuid)
        if info is None:
            return _json(404, {"error": "not found"})
        return _json(200, info)

    @app.post("/sim/calls/<uuid>/hangup")
    async def party_hangup(uuid: str) -> Response:
        if not sim.party_hangup(uuid):
            return _json(404, {"error": "not found or not live"})
        return _json(200, {"call_uuid": uuid})

    @app.get("/sim/events")
    async def events() -> Response:
        since = int(request.args.get("since", "0") or 0)
        kind_name = request.args.get("kind")
        kind = EventKind(kind_name) if kind_name in set(EventKind) else None
        if kind_name and kind is None:
            return _json(400, {"error": f"unknown kind {kind_name!r}"})
        found = sim.log.events(kind, call_uuid=request.args.get("call_uuid"), since=since)
        return _json(200, {"events": [e.as_dict() for e in found], "last_seq": sim.log.last_seq})

    @app.get("/sim/numbers/<phone>/history")
    async def history(phone: str) -> Response:
        return _json(200, {"events": [e.as_dict() for e in sim.history(phone)]})

    @app.post("/sim/wait-idle")
    async def wait_idle() -> Response:
        timeout = float(request.args.get("timeout", "10") or 10)
        with trio.move_on_after(timeout):
            await sim.wait_idle()
            return _json(200, {"live": 0})
        return _json(408, {"live": len(sim.live_calls())})

    @app.get("/sim/recordings/<name>")
    async def recording(name: str) -> Response:
        content_type = "audio/wav" if name.endswith(".wav") else "audio/mpeg"
        return Response(b"ID3\x03\x00\x00\x00\x00\x00\x00", status=200, content_type=content_type)
