"""``POST /referrals`` and attribution over real HTTP on 127.0.0.1: the whole service
(``run_service`` with the built-in simulator as its carrier, SQLite in ``tmp_path``) and a test
customer endpoint (``tests.support.e2e.CustomerEndpoint``) recording Step 1 and Step 3.

The referrals route answers only once the referral is committed, so the store is read right
after the answer, without polling.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from orchestrator.config import Campaign, Settings
from orchestrator.model import HANGUP_AGENT_ID
from server.wiring import ServiceHandle, run_service
from simulator import LeadScript, Simulator
from tests.support.e2e import (
    E2E_ROUTING,
    INITIAL_PATH,
    OUTCOME_PATH,
    WAIT_S,
    CustomerEndpoint,
    e2e_settings,
)

pytestmark = pytest.mark.e2e

KEY = "acme-key-0123456789abcdef"
BETA_KEY = "beta-key-0123456789abcdef"
POOL = ("8005550200", "8005550201")
LEAD = "9495550000"
VISITOR = {
    "FirstName": "Ann",
    "LastName": "Lee",
    "FullName": "Ann Lee",
    "City": "Irvine",
    "St": "ca",
    "Zip": "92618",
}
EXPIRES_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def campaigns(customer_url: str) -> tuple[Campaign, ...]:
    """acme takes referrals; beta has a key but no pool; gamma has a pool but no key."""
    urls = (customer_url + INITIAL_PATH, customer_url + OUTCOME_PATH)
    return (
        Campaign(
            "acme",
            ("8005550100",),
            "Purchase",
            *urls,
            tracking_numbers=POOL,
            referral_ttl_s=600.0,
            api_key=KEY,
        ),
        Campaign("beta", ("8005550300",), "Refinance", *urls, api_key=BETA_KEY),
        Campaign("gamma", ("8005550400",), "Purchase", *urls, tracking_numbers=("8005550401",)),
    )


@dataclass
class Service:
    settings: Settings
    handle: ServiceHandle
    customer: CustomerEndpoint
    http: httpx.AsyncClient

    @property
    def sim(self) -> Simulator:
        assert self.handle.simulator is not None
        return self.handle.simulator.simulator

    async def register(
        self, fields: dict[str, Any], *, key: str | None = KEY, as_json: bool = False
    ) -> httpx.Response:
        headers = {} if key is None else {"X-Api-Key": key}
        url = self.settings.server.public_url + "/referrals"
        if as_json:
            return await self.http.post(url, json=fields, headers=headers)
        return await self.http.post(url, data=fields, headers=headers)

    async def stored_referrals(self) -> int:
        return (await self.handle.store.row_counts())["referrals"]


@asynccontextmanager
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    """The service (database ``tmp_path/orch.db``, reused by a second run) and a customer."""
    customer = CustomerEndpoint()
    with trio.fail_after(45):
        async with trio.open_nursery() as nursery:
            stop = trio.Event()
            try:
                customer_url: str = await nursery.start(customer.run)
                settings = e2e_settings(
                    f"sqlite:///{tmp_path / 'orch.db'}",
                    customer_url,
                    time_scale=0.025,
                    routing=E2E_ROUTING,
                )
                settings = replace(settings, campaigns=campaigns(customer_url))
                handle: ServiceHandle = await nursery.start(
                    partial(run_service, settings, stop=stop)
                )
                customer.service_url = settings.server.public_url
                async with httpx.AsyncClient(timeout=10) as http:
                    yield Service(settings, handle, customer, http)
            finally:
                stop.set()
                customer.stop()


async def lead_calls(svc: Service, number: str) -> tuple[dict[str, str], dict[str, str]]:
    """The lead calls ``number`` and hangs up on hold: (Step 1 query, Step 3 form)."""
    svc.sim.place_inbound("1" + LEAD, "1" + number, LeadScript(hangup_after_s=20.0))
    step1 = await svc.customer.step1_for(LEAD)
    step3 = await svc.customer.outcome_for(step1.tracking_guid)
    with trio.fail_after(WAIT_S):
        await svc.sim.wait_idle()
    return step1.query, step3.form


class TestRegister:
    """Form or JSON in; ReferralID and a tracking number out, stored before the answer."""

    async def test_form_and_json(self, tmp_path: Path) -> None:
        """A form with the header key, then JSON with the key as a field: ids 1 and 2 on the
        pool's two numbers, both committed."""
        async with service(tmp_path) as svc:
            first = await svc.register({**VISITOR, "campaign": "acme"})
            assert first.status_code == 200, first.text
            body = first.json()
            assert EXPIRES_AT.match(body.pop("ExpiresAt"))
            assert body == {
                "ReferralID": 1,
                "TrackingNumber": POOL[0],
                "campaign": "acme",
                "TTLSeconds": 600.0,
            }
            stored = await svc.handle.store.get_referral(1)
            assert stored is not None
            assert (stored.campaign, stored.tracking_number) == ("acme", POOL[0])
            assert (stored.details.first_name, stored.details.state, stored.details.zip) == (
                "Ann",
                "CA",
                "92618",
            )
            assert stored.expires_at - stored.assigned_at == 600.0

            second = await svc.register(
                {"Campaign": "acme", "apikey": KEY, "FirstName": "Bob", "Zip": "02134"},
                key=None,
                as_json=True,
            )
            assert second.status_code == 200, second.text
            assert (second.json()["ReferralID"], second.json()["TrackingNumber"]) == (2, POOL[1])
            assert await svc.stored_referrals() == 2

    async def test_each_rule_is_a_400_naming_the_field(self, tmp_path: Path) -> None:
        """Every bad value → 400 with a problem under its field; nothing is stored."""
        bad = [
            ("FirstName", "A" * 51),
            ("LastName", "B" * 51),
            ("FullName", "C" * 101),
            ("City", "D" * 101),
            ("St", "CAL"),
            ("St", "1A"),
            ("Zip", "9261"),
            ("Zip", "92618-1234"),
            ("Zip", "abcde"),
        ]
        async with service(tmp_path) as svc:
            for field, value in bad:
                response = await svc.register({**VISITOR, "campaign": "acme", field: value})
                assert response.status_code == 400, (field, response.text)
                body = response.json()
                assert body["error"] == "invalid referral"
                assert [p["field"] for p in body["problems"]] == [field], body
            no_campaign = await svc.register(VISITOR)
            assert no_campaign.status_code == 400
            assert no_campaign.json()["problems"][0]["field"] == "campaign"
            assert await svc.stored_referrals() == 0

    async def test_missing_or_wrong_key_is_401_and_nothing_is_stored(self, tmp_path: Path) -> None:
        """No key, a wrong key, another campaign's key, an unknown campaign, a campaign
        without api_key: each 401 with a challenge; the next good request still gets id 1."""
        cases: list[tuple[str, str | None]] = [
            ("acme", None),
            ("acme", "wrong-key-0123456789"),
            ("acme", BETA_KEY),
            ("nope", KEY),
            ("gamma", KEY),
            ("gamma", None),
        ]
        async with service(tmp_path) as svc:
            for campaign, key in cases:
                response = await svc.register({**VISITOR, "campaign": campaign}, key=key)
                assert response.status_code == 401, (campaign, key, response.text)
                assert "error" in response.json()
                assert response.headers["WWW-Authenticate"] == 'ApiKey header="X-Api-Key"'
            # the key as a field, but wrong; and bad fields without a key: still 401 first
            wrong_field = await svc.register({"campaign": "acme", "ApiKey": "x" * 20}, key=None)
            assert wrong_field.status_code == 401
            unauthenticated = await svc.register({"campaign": "acme", "Zip": "1"}, key=None)
            assert unauthenticated.status_code == 401
            assert await svc.stored_referrals() == 0
            good = await svc.register({**VISITOR, "campaign": "acme"})
            assert good.json()["ReferralID"] == 1

    async def test_campaign_without_pool_and_unreadable_bodies(self, tmp_path: Path) -> None:
        """409 when the campaign has no tracking numbers; 400 for a body that cannot be read;
        405 for GET."""
        async with service(tmp_path) as svc:
            url = svc.settings.server.public_url + "/referrals"
            no_pool = await svc.register({"campaign": "beta"}, key=BETA_KEY)
            assert no_pool.status_code == 409
            assert "tracking_numbers" in no_pool.json()["error"]
            malformed = await svc.http.post(
                url,
                content=b"{not json",
                headers={"Content-Type": "application/json", "X-Api-Key": KEY},
            )
            assert malformed.status_code == 400
            plain = await svc.http.post(
                url, content=b"campaign=acme", headers={"Content-Type": "text/plain"}
            )
            assert plain.status_code == 400
            get = await svc.http.get(url)
            assert get.status_code == 405
            assert "error" in get.json()
            assert await svc.stored_referrals() == 0

    async def test_pool_exhaustion_reuses_least_recently_assigned(self, tmp_path: Path) -> None:
        """A pool of two: the third live visitor gets the first visitor's number."""
        async with service(tmp_path) as svc:
            numbers = []
            for name in ("Ann", "Bob", "Cy"):
                response = await svc.register({"campaign": "acme", "FirstName": name})
                assert response.status_code == 200
                numbers.append(response.json()["TrackingNumber"])
            assert numbers == [POOL[0], POOL[1], POOL[0]]
            query, _ = await lead_calls(svc, POOL[0])
            assert (query["ReferralID"], query["FirstName"]) == ("3", "Cy")


class TestAttributedCalls:
    """A referral, then a call to its tracking number: Step 1 and Step 3 carry its ReferralID."""

    async def test_call_to_the_tracking_number(self, tmp_path: Path) -> None:
        async with service(tmp_path) as svc:
            registered = await svc.register({**VISITOR, "campaign": "acme"})
            number = registered.json()["TrackingNumber"]
            query, outcome = await lead_calls(svc, number)
            assert query == {
                "ReferralID": "1",
                "Phone": LEAD,
                "plantype": "Purchase",
                "TrackingGUID": query["TrackingGUID"],
                "FirstName": "Ann",
                "LastName": "Lee",
                "FullName": "Ann Lee",
                "City": "Irvine",
                "St": "CA",
                "Zip": "92618",
            }
            assert outcome["ReferralID"] == "1"
            assert outcome["Agent1ID"] == str(HANGUP_AGENT_ID)
            call = await svc.handle.store.get_call(query["TrackingGUID"])
            assert call is not None
            assert (call.referral_id, call.dialled_number, call.campaign) == (1, number, "acme")

    async def test_a_restart_keeps_live_referrals(self, tmp_path: Path) -> None:
        """Registered before a restart, a referral still attributes after it, and new ids
        count on (its number is still taken)."""
        async with service(tmp_path) as svc:
            before = await svc.register({**VISITOR, "campaign": "acme"})
            assert before.json() | {"ExpiresAt": ""} == {
                "ReferralID": 1,
                "TrackingNumber": POOL[0],
                "campaign": "acme",
                "TTLSeconds": 600.0,
                "ExpiresAt": "",
            }
        async with service(tmp_path) as svc:
            after = await svc.register({"campaign": "acme", "FirstName": "Bob"})
            assert (after.json()["ReferralID"], after.json()["TrackingNumber"]) == (2, POOL[1])
            query, outcome = await lead_calls(svc, POOL[0])
            assert (query["ReferralID"], query["FirstName"], query["Zip"]) == ("1", "Ann", "92618")
            assert outcome["ReferralID"] == "1"
