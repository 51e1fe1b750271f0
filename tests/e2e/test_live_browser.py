"""The live calls page in a real browser: headless Chromium driven by Playwright (README "Operating
it").

The whole service runs in-process with the built-in simulator as its carrier
(:func:`tests.support.live.open_live_service`); Debian's ``chromium`` (``/usr/bin/chromium``,
or ``ORCH_CHROMIUM``) is driven by the ``playwright`` package's sync API in a worker thread
(Playwright never downloads a browser here: it is handed the executable). The page must show,
without reloading, a call appear with two agents ringing in tier 1, one decline and the
other's leg go from ringing to connected, and the call finish into the finished list with its
outcome. Screenshots are saved in ``artifacts/`` at the repository root (or
``ORCH_ARTIFACTS_DIR``) and their paths printed: ``live.png`` shows the connected and the
declined leg, ``live-ringing.png`` both ringing, ``live-finished.png`` the finished call.

Without Chromium or Playwright the test skips and says why — unless ``ORCH_REQUIRE_BROWSER=1``
(CI), when it fails instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import pytest
import trio

from simulator import AgentScript, LeadScript
from tests.support.e2e import E2E_ROUTING, PlanReply
from tests.support.live import AGENT_ID, AGENT_PHONE, LEAD, TOKEN, open_live_service
from tests.support.paths import REPO

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("ORCH_CHROMIUM", "/usr/bin/chromium")
#: The flags that work on this machine kind (no network but the loopback, running as root).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("ORCH_ARTIFACTS_DIR") or REPO / "artifacts")
#: Real seconds per simulated second: Erin rings 3 s and talks 3 s; Anthony declines at 1 s.
TIME_SCALE = 0.025
RING_SIM_S = 120.0
TALK_SIM_S = 120.0
DECLINE_SIM_S = 40.0
DECLINER_ID, DECLINER_PHONE = 328290, "8885551111"
#: The API doc's two agents, both in tier 1.
TWO_AGENT_PLAN = {
    "AgentEmailAddresses": "Anthony.Smith@xyz.com,Erin.Jones@xyz.com",
    "AgentFiveMinApps": "1,0",
    "AgentID": f"{DECLINER_ID},{AGENT_ID}",
    "AgentNames": "Anthony Smith,Erin Jones",
    "AgentNMLS": "848,352",
    "AgentPhones": f"{DECLINER_PHONE},{AGENT_PHONE}",
    "AgentTier": "1,1",
    "AgentRow": "1,2",
}
#: Real milliseconds the page gets for each thing it must show.
SHOW_MS = 15_000


@pytest.fixture
def chromium() -> str:
    """The browser to drive, or skip (fail under ``ORCH_REQUIRE_BROWSER=1``) saying why.
    A sync fixture, so that the skip happens outside Trio and keeps its reason."""
    problems = []
    executable = shutil.which(CHROMIUM)
    if executable is None:
        problems.append(f"{CHROMIUM} not found (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the playwright package is not installed (pip install playwright)")
    if problems:
        reason = "browser test needs " + "; ".join(problems)
        if os.environ.get("ORCH_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " and ORCH_REQUIRE_BROWSER=1")
        pytest.skip(reason)
    assert executable is not None
    return executable


@dataclass(frozen=True, slots=True)
class Seen:
    """What the browser showed, for the assertions on the trio side."""

    guid: str
    live_row_text: str
    finished_outcome: str
    finished_agent_text: str
    screenshots: list[Path]


def drive_browser(executable: str, url: str, profile: Path, place_call: Callable[[], str]) -> Seen:
    """In a worker thread: open the page, place the call, watch it live and finished."""
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shots = [
        ARTIFACTS / "live-ringing.png",
        ARTIFACTS / "live.png",
        ARTIFACTS / "live-finished.png",
    ]
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 720},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url)
            expect(page.locator("#connection")).to_have_text("live", timeout=SHOW_MS)
            expect(page.locator("#live-empty")).to_be_visible()
            before = page.evaluate("performance.getEntriesByType('navigation').length")

            trio.from_thread.run_sync(place_call)
            row = page.locator("#live-calls tbody tr.call")
            expect(row).to_have_count(1, timeout=SHOW_MS)
            leg = row.locator(f'.leg[data-agent-id="{AGENT_ID}"]')
            decliner = row.locator(f'.leg[data-agent-id="{DECLINER_ID}"]')
            expect(leg).to_have_attribute("data-state", "ringing", timeout=SHOW_MS)
            expect(decliner).to_have_attribute("data-state", "ringing", timeout=SHOW_MS)
            expect(page.locator("#ringing-count")).to_have_text("2")
            page.screenshot(path=str(shots[0]), full_page=True)

            expect(decliner).to_have_attribute("data-state", "declined", timeout=SHOW_MS)
            expect(leg).to_have_attribute("data-state", "connected", timeout=SHOW_MS)
            guid = row.get_attribute("data-guid") or ""
            live_row_text = row.inner_text()
            page.screenshot(path=str(shots[1]), full_page=True)

            done = page.locator(f'#finished-calls tbody tr.call[data-guid="{guid}"]')
            expect(done).to_have_count(1, timeout=SHOW_MS)
            expect(page.locator("#live-empty")).to_be_visible()
            outcome = done.locator(".outcome").inner_text()
            agent_text = done.locator("td").nth(4).inner_text()
            page.screenshot(path=str(shots[2]), full_page=True)

            after = page.evaluate("performance.getEntriesByType('navigation').length")
            assert before == after == 1, "the page reloaded"
            assert not errors, errors
        finally:
            context.close()
    return Seen(guid, live_row_text, outcome, agent_text, shots)


class TestLivePageInChromium:
    """A call appears, its leg rings then connects, and it finishes — all without a reload."""

    async def test_page_follows_a_call_from_ringing_to_finished(
        self, tmp_path: Path, chromium: str
    ) -> None:
        routing = replace(E2E_ROUTING, ring_timeout_s=RING_SIM_S * 2)
        async with open_live_service(
            tmp_path, time_scale=TIME_SCALE, routing=routing, deadline_s=120.0
        ) as e2e:
            e2e.customer.answer(LEAD, PlanReply(TWO_AGENT_PLAN))
            e2e.script_agent(
                AGENT_PHONE, AgentScript(answer_after_s=RING_SIM_S, press="1", talk_s=TALK_SIM_S)
            )
            e2e.script_agent(DECLINER_PHONE, AgentScript(answer_after_s=DECLINE_SIM_S, press="2"))
            url = f"{e2e.base}/live?token={TOKEN}"
            seen = await trio.to_thread.run_sync(
                partial(
                    drive_browser,
                    chromium,
                    url,
                    tmp_path / "chromium-profile",
                    partial(e2e.place_call, LEAD, LeadScript()),
                )
            )
            step1, outcome = await e2e.outcome_of(LEAD)

        for shot in seen.screenshots:
            print(f"screenshot: {shot}")
            assert shot.stat().st_size > 10_000
        assert seen.guid == step1.tracking_guid
        assert "949-555-0000" in seen.live_row_text
        assert "acme" in seen.live_row_text
        assert "Erin Jones" in seen.live_row_text
        assert "Anthony Smith" in seen.live_row_text
        assert seen.finished_outcome == "connected"
        assert "Erin Jones" in seen.finished_agent_text
        assert outcome.form["Agent1ID"] == str(AGENT_ID)
