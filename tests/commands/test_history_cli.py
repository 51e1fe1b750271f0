"""``orchestrator calls``: its pure parts (times, parameters, tables) and the command against
the history routes over real HTTP on 127.0.0.1 (the app of ``tests/test_history_http.py`` on
a seeded SQLite store). The command is synchronous (httpx), so it runs in a worker thread while
the server runs in the test's trio loop.

Local times are pinned with ``TZ=TEST+8`` (UTC-8, no daylight saving, no tz database needed).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
import trio

from commands.calls import (
    UsageError,
    agents_table,
    call_text,
    calls_table,
    cli_time,
    request_params,
    table,
)
from commands.main import build_parser, main
from store import SqlStore, open_store
from tests.support.history import (
    ALL_NEWEST_FIRST,
    ANN,
    C1,
    C3,
    C4,
    C5,
    LEAD_A,
    TOKEN,
    Api,
    FakeOrchestrator,
    seed_records,
    serve,
    snapshot,
)
from tests.support.paths import REPO_CONFIG

NOW = datetime(2026, 11, 29, 18, 0, tzinfo=UTC).timestamp()


@pytest.fixture(name="pinned_tz")
def _pinned_tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "TEST+8")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["calls", *argv])


class TestTimes:
    """--since/--until: relative, epoch, ISO (naive = local)."""

    @pytest.mark.parametrize(
        ("text", "ago"),
        [("15m", 900), ("2h", 7200), ("3d", 259_200), ("1w", 604_800), ("90s", 90), ("1.5h", 5400)],
    )
    def test_relative(self, text: str, ago: float) -> None:
        assert float(cli_time(text, NOW)) == NOW - ago

    def test_epoch_and_iso_with_offset_pass_through(self) -> None:
        assert cli_time("1764400000", NOW) == "1764400000"
        assert cli_time("2026-11-29T10:42:00Z", NOW) == "2026-11-29T10:42:00+00:00"

    def test_naive_iso_is_local_time(self, pinned_tz: None) -> None:
        """10:42 local (UTC-8) is sent with its offset, so the service reads 18:42Z."""
        sent = cli_time("2026-11-29T10:42", NOW)
        assert sent == "2026-11-29T10:42:00-08:00"
        assert datetime.fromisoformat(sent).astimezone(UTC).hour == 18

    @pytest.mark.parametrize("text", ["soon", "5 minutes", "-1h", "10:42"])
    def test_bad(self, text: str) -> None:
        with pytest.raises(UsageError, match="not a time"):
            cli_time(text, NOW)


class TestRequestParams:
    """Options become the API's query parameters."""

    def test_calls(self) -> None:
        params = request_params(
            args(
                "--since",
                "1h",
                "--campaign",
                "a",
                "--campaign",
                "b",
                "--outcome",
                "connected",
                "--phone",
                "949-555-0001",
                "--agent",
                "7",
                "--limit",
                "5",
                "--format",
                "csv",
            ),
            NOW,
        )
        assert params == [
            ("since", f"{NOW - 3600:.3f}"),
            ("campaign", "a"),
            ("campaign", "b"),
            ("outcome", "connected"),
            ("phone", "949-555-0001"),
            ("agent", "7"),
            ("limit", "5"),
            ("format", "csv"),
        ]

    def test_all_pages_default_to_large_pages(self) -> None:
        assert request_params(args("--all"), NOW) == [("limit", "500")]

    def test_options_of_the_other_list_are_refused(self) -> None:
        with pytest.raises(UsageError, match="--name"):
            request_params(args("list", "--name", "ann"), NOW)
        with pytest.raises(UsageError, match="--campaign"):
            request_params(args("agents", "--campaign", "acme"), NOW)


class TestTables:
    """Aligned columns, local times, readable phones."""

    def test_alignment(self) -> None:
        lines = table(("NAME", "N"), [("Ann", 1), ("Robert", 12)])
        assert lines == ["NAME     N", "Ann      1", "Robert  12"]

    def test_calls_table(self, pinned_tz: None) -> None:
        rows: list[dict[str, object]] = [
            {
                "tracking_guid": C1,
                "started_at": "2025-11-29T07:06:40.000Z",
                "campaign": "acme",
                "lead_phone": LEAD_A,
                "outcome": "connected",
                "agent1_id": ANN,
                "agent_name": "Ann Smith",
                "legs": 2,
                "tiers": 1,
                "duration_s": 60.0,
            },
            {
                "tracking_guid": C5,
                "started_at": "2025-11-29T07:13:20.000Z",
                "campaign": "acme",
                "lead_phone": "9495550004",
                "outcome": None,
                "state": "dialling",
                "legs": 1,
                "tiers": 1,
                "duration_s": None,
            },
        ]
        header, first, second = calls_table(rows)
        assert header.split() == [
            "STARTED",
            "TRACKING",
            "GUID",
            "CAMPAIGN",
            "LEAD",
            "OUTCOME",
            "AGENT",
            "LEGS",
            "TIERS",
            "DURATION",
        ]
        assert first.startswith(f"2025-11-28 23:06:40  {C1}  acme      949-555-0001  connected")
        assert "101 Ann Smith" in first
        assert "(dialling)" in second
        assert len({line.index("acme") for line in (first, second)}) == 1  # aligned
        assert calls_table([]) == ["no calls"]
        assert agents_table([]) == ["no agents"]

    def test_call_text_step3_states(self, pinned_tz: None) -> None:
        """The Step 3 line says pending (with the last error), given up, or delivered."""
        base: dict[str, object] = {
            "tracking_guid": C1,
            "outcome": "hung_up",
            "legs": [],
            "events": [],
            "live": None,
        }
        pending = {
            "attempts": 2,
            "delivered_at": None,
            "dead": False,
            "next_attempt_at": "2025-11-29T07:10:00.000Z",
            "last_error": "HTTP 503",
        }
        text = "\n".join(call_text({**base, "step3": pending}))
        assert (
            "pending, next attempt 2025-11-28 23:10:00 (attempts: 2, last error: HTTP 503)" in text
        )
        dead = {**pending, "dead": True, "attempts": 9}
        assert "gave up after 9 attempts: HTTP 503" in "\n".join(call_text({**base, "step3": dead}))
        done = {**pending, "delivered_at": "2025-11-29T07:10:01.000Z"}
        assert "delivered 2025-11-28 23:10:01 (attempts: 2)" in "\n".join(
            call_text({**base, "step3": done})
        )
        assert "not queued yet" in "\n".join(call_text({**base, "step3": None}))
        assert "  none" in call_text({**base, "step3": None})


async def _seeded_store(tmp_path: Path, nursery: trio.Nursery) -> SqlStore:
    store = open_store(f"sqlite:///{tmp_path / 'cli.db'}")
    await nursery.start(store.run)
    await store.record(*seed_records())
    await store.flush()
    return store


@pytest.fixture(name="api")
async def _api(tmp_path: Path, nursery: trio.Nursery) -> Api:
    store = await _seeded_store(tmp_path, nursery)
    return await serve(store, nursery, FakeOrchestrator(live={C5: snapshot(C5)}))


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``orchestrator calls ARGV`` in a worker thread: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = await trio.to_thread.run_sync(partial(main, ["calls", *argv]))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(name="env_token")
def _env_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_OPERATOR_TOKEN", TOKEN)


class TestCommand:
    """The command against the running routes."""

    async def test_list_table_with_filters(
        self, api: Api, env_token: None, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, err = await run_cli(capsys, "--url", api.url, "--campaign", "beta")
        assert (code, err) == (0, "")
        lines = out.splitlines()
        assert lines[0].startswith("STARTED")
        assert [line.split()[2] for line in lines[1:]] == [C4, C3]
        assert "redirected" in lines[1]

    async def test_json_all_pages(
        self, api: Api, env_token: None, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--all with --limit 4 follows the cursor: every call once, no cursor left."""
        code, out, _ = await run_cli(
            capsys, "--url", api.url, "--limit", "4", "--all", "--format", "json"
        )
        assert code == 0
        body = json.loads(out)
        assert [c["tracking_guid"] for c in body["calls"]] == ALL_NEWEST_FIRST
        assert body["next_cursor"] is None

    async def test_csv_pages_and_the_more_hint(
        self, api: Api, env_token: None, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, err = await run_cli(
            capsys, "--url", api.url, "--limit", "4", "--all", "--format", "csv"
        )
        assert code == 0
        parsed = list(csv.DictReader(io.StringIO(out)))
        assert [r["tracking_guid"] for r in parsed] == ALL_NEWEST_FIRST  # one header only
        code, out, err = await run_cli(capsys, "--url", api.url, "--limit", "2")
        assert code == 0
        assert len(out.splitlines()) == 3
        assert "more calls: add --cursor " in err

    async def test_show_and_agents(
        self, api: Api, env_token: None, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, _ = await run_cli(capsys, "--url", api.url, "show", C1.upper())
        assert code == 0
        assert out.startswith(f"Call {C1}")
        assert "connected: agent 101 Ann Smith" in out
        legs = out[out.index("\nLegs\n") : out.index("\nEvents\n")]
        assert "Ann Smith" in legs
        assert "accepted" in legs
        assert "cancelled" in legs
        assert "call.connected" in out
        assert "agent_id=101 tier=1" in out
        code, out, _ = await run_cli(capsys, "--url", api.url, "show", C5)
        assert "Live legs" in out
        assert "ringing" in out
        code, out, _ = await run_cli(
            capsys, "--url", api.url, "agents", "--name", "smith", "--format", "json"
        )
        assert [a["agent_id"] for a in json.loads(out)["agents"]] == [ANN]

    async def test_config_file_gives_url_and_token(
        self,
        api: Api,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.delenv("ORCH_OPERATOR_TOKEN", raising=False)
        config = tmp_path / "orch.toml"
        config.write_text(
            f'[server]\npublic_url = "{api.url}"\n[operator]\ntoken = "{TOKEN}"\n'
            '[[campaigns]]\nname = "acme"\nnumbers = ["8005550100"]\nplantype = "Purchase"\n'
            'initial_post_url = "http://c.test/i"\noutcome_post_url = "http://c.test/o"\n'
            '[carrier]\nkind = "simulator"\n'
        )
        code, out, err = await run_cli(
            capsys, "--config", str(config), "--phone", LEAD_A, "--format", "json"
        )
        assert (code, err) == (0, "")
        assert [c["tracking_guid"] for c in json.loads(out)["calls"]] == [C3, C1]

    async def test_failures(
        self, api: Api, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Wrong token: 1. Parameters the service rejects: 2, with the problems. Unknown call:
        1. Unreachable service: 1. Bad usage: 2."""
        monkeypatch.setenv("ORCH_OPERATOR_TOKEN", "wrong-token-0123456789")
        code, _, err = await run_cli(capsys, "--url", api.url)
        assert code == 1
        assert "refused the operator token (401)" in err
        monkeypatch.setenv("ORCH_OPERATOR_TOKEN", TOKEN)
        code, _, err = await run_cli(capsys, "--url", api.url, "--phone", "555", "--outcome", "won")
        assert code == 2
        assert "phone: must be a 10-digit NANP phone number" in err
        assert "outcome: must be one of" in err
        code, _, err = await run_cli(
            capsys, "--url", api.url, "show", "00000000-0000-4000-8000-000000000077"
        )
        assert code == 1
        assert "no call with TrackingGUID" in err
        code, _, err = await run_cli(capsys, "--url", "http://127.0.0.1:9", "--timeout", "2")
        assert code == 1
        assert "cannot reach the service" in err
        for argv in (
            ["show"],
            ["show", "not-a-guid"],
            ["list", C1],
            ["show", C1, "--format", "csv"],
            ["--since", "soon"],
        ):
            code, _, err = await run_cli(capsys, "--url", api.url, *argv)
            assert code == 2, argv
            assert err.startswith("orchestrator calls: "), argv

    async def test_no_token_anywhere(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A config without [operator] token and no environment variable: exit 2, saying
        where to put one; nothing is requested."""
        monkeypatch.delenv("ORCH_OPERATOR_TOKEN", raising=False)
        code, _, err = await run_cli(capsys, "--config", str(REPO_CONFIG))
        assert code == 2
        assert "no operator token" in err
        assert "ORCH_OPERATOR_TOKEN" in err
        code, _, err = await run_cli(capsys, "--config", str(tmp_path / "missing.toml"))
        assert code == 2
        assert "missing.toml" in err
