"""Run the whole service (``server.wiring.run_service``) in-process on 127.0.0.1 for tests,
and talk to it as the carrier (signed Plivo webhooks) and the customer would."""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from xml.etree import ElementTree

import httpx
import trio

from orchestrator.carriers.plivo import NONCE_HEADER, SIGNATURE_HEADER, sign_v3
from orchestrator.config import Campaign, CarrierSettings, RoutingSettings, ServerSettings, Settings
from orchestrator.config import StoreSettings as StoreConfig
from server.wiring import run_service

AUTH_ID = "MA" + "T" * 18
AUTH_TOKEN = "test-auth-token-0123456789"
CAMPAIGN_NUMBER = "8005550100"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def service_settings(
    db_url: str,
    *,
    api_url: str = "http://127.0.0.1:9",
    customer_url: str = "http://127.0.0.1:9",
    routing: RoutingSettings | None = None,
) -> Settings:
    port = free_port()
    return Settings(
        server=ServerSettings(
            bind=f"127.0.0.1:{port}", public_url=f"http://127.0.0.1:{port}", drain_s=2.0
        ),
        store=StoreConfig(url=db_url),
        carrier=CarrierSettings(
            kind="plivo",
            auth_id=AUTH_ID,
            auth_token=AUTH_TOKEN,
            api_url=api_url,
            calls_per_second=50.0,
        ),
        routing=routing or RoutingSettings(plan_timeout_s=30.0, initial_post_timeout_s=2.0),
        campaigns=(
            Campaign(
                "acme",
                (CAMPAIGN_NUMBER,),
                "Purchase",
                f"{customer_url}/initial",
                f"{customer_url}/outcome",
            ),
        ),
    )


@dataclass
class RunningService:
    settings: Settings
    http: httpx.AsyncClient

    @property
    def base(self) -> str:
        return self.settings.server.public_url

    async def carrier_post(
        self,
        path: str,
        form: Mapping[str, str],
        *,
        token: str = AUTH_TOKEN,
        signed: bool = True,
    ) -> httpx.Response:
        """POST a form as Plivo would, signed with V3 against the public URL."""
        url = self.base + path
        headers = {}
        if signed:
            nonce = str(secrets.randbelow(10**20)).zfill(20)
            headers = {
                SIGNATURE_HEADER: sign_v3("POST", url, dict(form), token, nonce),
                NONCE_HEADER: nonce,
            }
        return await self.http.post(url, data=dict(form), headers=headers)

    async def lead_calls(self, call_uuid: str, from_number: str = "19495550000") -> str:
        """The lead's inbound call: returns the TrackingGUID (the hold room's name)."""
        response = await self.carrier_post(
            "/plivo/answer",
            {
                "CallUUID": call_uuid,
                "From": from_number,
                "To": "1" + CAMPAIGN_NUMBER,
                "Direction": "inbound",
                "CallStatus": "in-progress",
                "Event": "StartApp",
            },
        )
        assert response.status_code == 200, response.text
        room = ElementTree.fromstring(response.text).find(".//Conference")
        assert room is not None, response.text
        assert room.text, response.text
        return room.text


@asynccontextmanager
async def running_service(settings: Settings) -> AsyncIterator[RunningService]:
    stop = trio.Event()
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=10) as http:
        await nursery.start(
            lambda task_status: run_service(settings, stop=stop, task_status=task_status)
        )
        yield RunningService(settings, http)
        stop.set()


def with_routing(settings: Settings, **changes: float) -> Settings:
    return replace(settings, routing=replace(settings.routing, **changes))
