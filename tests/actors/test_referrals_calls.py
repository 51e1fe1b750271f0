"""Referral attribution through the real orchestrator, against the in-memory carrier under
trio's MockClock (so the referral TTL is exact): Step 1 and Step 3 carry the ReferralID."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio
import trio.testing

from actors.referral_desk import ReferralDesk
from orchestrator.carriers.fake import FakeCarrier, LeadScript
from orchestrator.config import Campaign, Settings
from orchestrator.messages import InboundAccepted
from orchestrator.model import LeadDetails
from orchestrator.service import Orchestrator
from store.memory_referrals import MemoryReferralPool
from tests.support.call_harness import ROUTING
from tests.support.fakes import FakeCustomer, MemoryRecorder

MAIN_NUMBER = "8005550100"
POOL = ("8005550200", "8005550201")
LEAD = "9495550000"
TTL_S = 600.0
SETTINGS = Settings(
    routing=ROUTING,
    campaigns=(
        Campaign(
            "acme",
            (MAIN_NUMBER,),
            "Purchase",
            "http://customer.test/initial",
            "http://customer.test/outcome",
            tracking_numbers=POOL,
            referral_ttl_s=TTL_S,
            api_key="k" * 24,
        ),
    ),
)
VISITOR = LeadDetails(0, "Ann", "Lee", "Ann Lee", "Irvine", "CA", "92618")
HANGS_UP = LeadScript(hangup_after_s=1.0, message_s=None)


@dataclass
class World:
    book: ReferralDesk
    carrier: FakeCarrier
    orchestrator: Orchestrator
    customer: FakeCustomer
    calls: int = 0

    async def call(self, to_number: str) -> tuple[dict[str, str], dict[str, str]]:
        """The lead calls ``to_number`` and hangs up after 1 s: (Step 1 query, Step 3 form)."""
        self.calls += 1
        lead_id = f"lead-{self.calls}"
        result = self.orchestrator.accept_inbound(
            carrier_call_id=lead_id, from_number=LEAD, to_number=to_number
        )
        assert isinstance(result, InboundAccepted)
        self.carrier.lead_calls(result.tracking_guid, lead_id, HANGS_UP)
        sup = self.orchestrator.call(result.tracking_guid)
        assert sup is not None
        await sup.finished.wait()
        await trio.testing.wait_all_tasks_blocked()
        guid = sup.tracking_guid
        step1 = [f for _, f in self.customer.initial_posts if f["TrackingGUID"] == guid]
        step3 = [f for _, f, _ in self.customer.outcome_posts if f["TrackingGUID"] == guid]
        assert len(step1) == len(step3) == 1, (step1, step3)
        return step1[0], step3[0]


@asynccontextmanager
async def world(*, with_book: bool = True) -> AsyncIterator[World]:
    """The orchestrator with a referral desk on an in-memory pool (unless not ``with_book``);
    its clock is trio's (MockClock in these tests)."""
    book = ReferralDesk(SETTINGS.campaigns, MemoryReferralPool())
    await book.open()
    carrier = FakeCarrier()
    customer = FakeCustomer()
    recorder = MemoryRecorder()
    orchestrator = Orchestrator(
        SETTINGS,
        carrier=carrier,
        recorder=recorder,
        customer=customer,
        directory=recorder.directory,
        now=trio.current_time,
        referrals=book if with_book else None,
    )
    carrier.deliver = orchestrator.deliver
    async with trio.open_nursery() as nursery:
        await nursery.start(carrier.run)
        await nursery.start(orchestrator.run)
        yield World(book, carrier, orchestrator, customer)
        nursery.cancel_scope.cancel()


class TestAttribution:
    """A call to a tracking number within the TTL is the referral's; otherwise ReferralID 0."""

    async def test_step1_and_step3_carry_the_referral(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Step 1 has the ReferralID and every field; Step 3 the ReferralID."""
        async with world() as w:
            referral = await w.book.assign("acme", VISITOR, trio.current_time())
            step1, step3 = await w.call(referral.tracking_number)
            assert step1 == {
                "ReferralID": str(referral.referral_id),
                "Phone": LEAD,
                "plantype": "Purchase",
                "TrackingGUID": step1["TrackingGUID"],
                "FirstName": "Ann",
                "LastName": "Lee",
                "FullName": "Ann Lee",
                "City": "Irvine",
                "St": "CA",
                "Zip": "92618",
            }
            assert step3["ReferralID"] == str(referral.referral_id) == "1"

    async def test_after_the_ttl_the_call_is_direct(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Just before the TTL the call is attributed; at the TTL it carries ReferralID 0."""
        async with world() as w:
            start = trio.current_time()
            referral = await w.book.assign("acme", VISITOR, start)
            await trio.sleep_until(start + TTL_S - 5.0)  # the call below lasts ~1 s
            before, _ = await w.call(referral.tracking_number)
            assert before["ReferralID"] == "1"
            await trio.sleep_until(start + TTL_S)
            after, step3 = await w.call(referral.tracking_number)
            assert after["ReferralID"] == step3["ReferralID"] == "0"
            assert "FirstName" not in after
            assert "Zip" not in after

    async def test_main_number_and_unused_tracking_number(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """The campaign's own number, or a tracking number never handed out: direct calls,
        routed to the campaign all the same."""
        async with world() as w:
            await w.book.assign("acme", VISITOR, trio.current_time())  # takes POOL[0]
            main, _ = await w.call(MAIN_NUMBER)
            unused, _ = await w.call(POOL[1])
            assert main["ReferralID"] == unused["ReferralID"] == "0"
            assert main["plantype"] == unused["plantype"] == "Purchase"

    async def test_without_a_book_nothing_changes(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """An orchestrator built without referrals still routes tracking numbers, as direct."""
        async with world(with_book=False) as w:
            await w.book.assign("acme", VISITOR, trio.current_time())  # a book nobody consults
            step1, _ = await w.call(POOL[0])
            assert step1["ReferralID"] == "0"
