"""The simulator run on its own: run_simulator, the /sim/ control API, scenarios, the CLI."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

from simulator import SimulatorConfig, run_simulator
from simulator.cli import main
from simulator.server import RunningSimulator, serve_app, start_simulator
from simulator.testing import FakeApplication

TOKEN = "control-test-token"
DEADLINE_S = 10.0


@pytest.fixture(name="fake")
async def _fake(nursery: trio.Nursery) -> FakeApplication:
    fake = FakeApplication(auth_token=TOKEN)
    fake.base_url = await nursery.start(serve_app, fake.app, "127.0.0.1:0")
    return fake


def _config(fake: FakeApplication, **kw: object) -> SimulatorConfig:
    values: dict[str, object] = {
        "bind": "127.0.0.1:0",
        "auth_token": TOKEN,
        "answer_url": fake.url("/answer"),
        "hangup_url": fake.url("/hangup"),
        "time_scale": 0.01,
        "cps": 0,
    }
    values.update(kw)
    return SimulatorConfig(**values)  # type: ignore[arg-type]


class TestControlApi:
    """Another process can script agents, place inbound calls and read what happened."""

    async def test_inbound_call_via_control_api(
        self, nursery: trio.Nursery, fake: FakeApplication
    ) -> None:
        """POST /sim/inbound places a call; events, history, state and wait-idle report it."""
        url = await nursery.start(run_simulator, _config(fake))
        assert url.startswith("http://127.0.0.1:")
        fake.reply("/answer", "<Response><Speak>Hi</Speak></Response>")
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            assert (await http.get("/sim/health")).json() == {"ok": True}
            placed = await http.post(
                "/sim/inbound",
                json={
                    "from": "+14155550199",
                    "to": "18005550100",
                    "lead": {"hangup_after_s": 60},
                },
            )
            assert placed.status_code == 201
            call_uuid = placed.json()["call_uuid"]
            idle = await http.post("/sim/wait-idle", params={"timeout": DEADLINE_S})
            assert idle.status_code == 200
            state = (await http.get("/sim/state")).json()
            assert state["live_calls"] == []
            assert state["counts"]["status:completed"] == 1
            ended = (await http.get("/sim/events", params={"kind": "call.ended"})).json()
            assert ended["events"][0]["call_uuid"] == call_uuid
            assert ended["events"][0]["data"]["cause_code"] == 4010
            history = (await http.get("/sim/numbers/4155550199/history")).json()["events"]
            assert [e["kind"] for e in history][:2] == ["call.placed", "call.answered"]
            info = (await http.get(f"/sim/calls/{call_uuid}")).json()
            assert info["state"] == "ended"
            bad = await http.get("/sim/events", params={"kind": "nope"})
            assert bad.status_code == 400
        (hangup,) = await fake.wait_requests("/hangup")
        assert hangup.form["CallUUID"] == call_uuid

    async def test_agent_scripts_and_party_hangup(
        self, nursery: trio.Nursery, fake: FakeApplication
    ) -> None:
        """Scripts are set over HTTP (bad ones get 400); a live call can be hung up by its party."""
        running: RunningSimulator = await nursery.start(start_simulator, _config(fake))
        fake.reply("/answer", '<Response><Wait length="600"/></Response>')
        async with httpx.AsyncClient(base_url=running.url, timeout=5) as http:
            ok = await http.post(
                "/sim/agents",
                json={
                    "agents": {"4155550111": {"busy": True}},
                    "default": {"answer_after_s": 4},
                },
            )
            assert ok.status_code == 200
            assert running.simulator.scripts.for_number("+14155550111").busy
            assert running.simulator.scripts.default.answer_after_s == 4.0
            bad = await http.put("/sim/agents/4155550112", json={"answer_after_s": "soon"})
            assert bad.status_code == 400
            assert "answer_after_s" in bad.json()["problems"][0]
            placed = await http.post("/sim/inbound", json={"from": "1", "to": "2"})
            call_uuid = placed.json()["call_uuid"]
            with trio.fail_after(DEADLINE_S):
                await fake.wait_requests("/answer")
            hung = await http.post(f"/sim/calls/{call_uuid}/hangup")
            assert hung.status_code == 200
            assert (await http.post("/sim/calls/nope/hangup")).status_code == 404
            recording = await http.get("/sim/recordings/abc.mp3")
            assert recording.headers["content-type"] == "audio/mpeg"
        (hangup,) = await fake.wait_requests("/hangup")
        assert hangup.form["HangupSource"] == "Caller"

    async def test_rest_requires_basic_auth(
        self, nursery: trio.Nursery, fake: FakeApplication
    ) -> None:
        """Plivo REST paths answer 401 {api_id, error} without the account's credentials."""
        url = await nursery.start(run_simulator, _config(fake))
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            path = "/v1/Account/MASIMULATOR000000000/Call/"
            denied = await http.get(path)
            assert denied.status_code == 401
            assert set(denied.json()) == {"api_id", "error"}
            allowed = await http.get(path, auth=("MASIMULATOR000000000", TOKEN))
            assert allowed.json()["calls"] == []
            form = await http.post(
                path, auth=("MASIMULATOR000000000", TOKEN), data={"from": "1", "to": "2"}
            )
            assert form.status_code == 400
            assert form.json()["error"] == "answer_url is required"
            missing = await http.get("/v1/nowhere", auth=("MASIMULATOR000000000", TOKEN))
            assert missing.status_code == 404


class TestScenario:
    """A scenario file scripts agents and places inbound calls at start."""

    async def test_scenario_inbound_calls(
        self, nursery: trio.Nursery, fake: FakeApplication, tmp_path: Path
    ) -> None:
        """[[inbound]] calls are placed after at_s with their lead scripts."""
        scenario = tmp_path / "scenario.toml"
        scenario.write_text(
            '[agents."4155550111"]\nbusy = true\n\n'
            '[[inbound]]\nfrom = "4155550199"\nto = "8005550100"\nat_s = 1\n'
            "lead = { hangup_after_s = 2 }\n"
        )
        fake.reply("/answer", '<Response><Wait length="600"/></Response>')
        running: RunningSimulator = await nursery.start(
            start_simulator, _config(fake, scenario_file=str(scenario))
        )
        with trio.fail_after(DEADLINE_S):
            (hangup,) = await fake.wait_requests("/hangup")
        assert hangup.form["From"] == "4155550199"
        assert hangup.form["HangupSource"] == "Caller"
        assert running.simulator.scripts.for_number("4155550111").busy


class TestCli:
    """The entry function reports bad settings without starting anything."""

    def test_bad_options_exit_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Every problem is printed, naming its key; exit status 2."""
        assert main(["--auth-id", "bad", "--time-scale", "0"]) == 2
        err = capsys.readouterr().err
        assert "auth_id" in err
        assert "time_scale" in err

    def test_missing_config_file(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An unreadable --config is reported."""
        assert main(["--config", "/nonexistent/sim.toml"]) == 2
        assert "cannot read" in capsys.readouterr().err
