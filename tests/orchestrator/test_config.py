"""Config parsing (``orchestrator.config``) and the ``orchestrator check-config`` command.

Rules: ``parse_settings`` is pure, so most tests are plain synchronous functions on dicts; the
command is run in-process through ``main([...])`` on temporary files, reading its output with
``capsys``. Every bad-config test checks the problem names the exact key.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from commands.main import redact_url
from orchestrator.config import Settings, parse_settings
from orchestrator.errors import ConfigError
from tests.support.paths import REPO_CONFIG

VALID: dict[str, Any] = {
    "server": {"bind": "127.0.0.1:8080", "public_url": "https://orch.example"},
    "carrier": {"kind": "simulator"},
    "campaigns": [
        {
            "name": "acme",
            "numbers": ["8005550100"],
            "plantype": "Purchase",
            "initial_post_url": "https://customer.example/initial",
            "outcome_post_url": "https://customer.example/outcome",
        }
    ],
}


def config(**changes: Any) -> dict[str, Any]:
    """A deep copy of :data:`VALID` with top-level sections replaced or added."""
    data = copy.deepcopy(VALID)
    data.update(changes)
    return data


def campaign(**changes: Any) -> dict[str, Any]:
    return {**VALID["campaigns"][0], **changes}


def problems_of(data: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, str]:
    """``{key: message}`` of every problem ``parse_settings`` reports (fails if it accepts)."""
    with pytest.raises(ConfigError) as info:
        parse_settings(data, env or {})
    return {p.field: p.message for p in info.value.problems}


class TestValid:
    """A valid mapping becomes typed settings with defaults filled in."""

    def test_minimal_config_gets_defaults(self) -> None:
        settings = parse_settings(VALID, {})
        assert isinstance(settings, Settings)
        assert settings.server.public_url == "https://orch.example"
        assert settings.server.drain_s == 10.0
        assert settings.routing.ring_timeout_s == 20.0
        assert settings.store.url == "sqlite:///orchestrator.db"
        assert settings.campaigns[0].numbers == ("8005550100",)
        assert settings.campaign_for_number("8005550100") is settings.campaigns[0]

    def test_integer_accepted_for_number_and_stored_as_float(self) -> None:
        settings = parse_settings(config(routing={"ring_timeout_s": 15}), {})
        assert settings.routing.ring_timeout_s == 15.0
        assert isinstance(settings.routing.ring_timeout_s, float)


class TestProblems:
    """Each kind of mistake is reported against the key that has it."""

    def test_unknown_key(self) -> None:
        problems = problems_of(config(server={"bind": "127.0.0.1:8080", "bnid": "x"}))
        assert problems == {"server.bnid": "unknown key"}

    def test_unknown_section(self) -> None:
        assert problems_of(config(sever={})) == {"sever": "unknown section"}

    def test_wrong_type(self) -> None:
        problems = problems_of(config(routing={"plan_timeout_s": "10"}))
        assert list(problems) == ["routing.plan_timeout_s"]
        assert "must be a number" in problems["routing.plan_timeout_s"]

    def test_bool_is_not_a_number(self) -> None:
        problems = problems_of(config(carrier={"kind": "simulator", "calls_per_second": True}))
        assert list(problems) == ["carrier.calls_per_second"]
        assert "must be a number" in problems["carrier.calls_per_second"]

    def test_bad_url(self) -> None:
        problems = problems_of(config(campaigns=[campaign(outcome_post_url="ftp://x/y")]))
        assert list(problems) == ["campaigns[0].outcome_post_url"]
        assert "http(s) URL" in problems["campaigns[0].outcome_post_url"]

    def test_number_not_ten_digits(self) -> None:
        problems = problems_of(config(campaigns=[campaign(numbers=["8005550100", "555010"])]))
        assert list(problems) == ["campaigns[0].numbers[1]"]
        assert "10 digits" in problems["campaigns[0].numbers[1]"]

    def test_duplicate_campaign_number(self) -> None:
        second = campaign(name="globex", numbers=["8005550199", "8005550100"])
        problems = problems_of(config(campaigns=[campaign(), second]))
        assert list(problems) == ["campaigns[1].numbers[1]"]
        assert "duplicate campaign number 8005550100" in problems["campaigns[1].numbers[1]"]
        assert "'acme'" in problems["campaigns[1].numbers[1]"]

    def test_missing_required_key(self) -> None:
        table = campaign()
        del table["plantype"]
        assert problems_of(config(campaigns=[table])) == {
            "campaigns[0].plantype": "missing required key"
        }

    def test_no_campaigns(self) -> None:
        data = config()
        del data["campaigns"]
        assert list(problems_of(data)) == ["campaigns"]

    def test_plivo_without_token_names_the_env_variable(self) -> None:
        problems = problems_of(config(carrier={"kind": "plivo"}))
        assert list(problems) == ["carrier.auth_token"]
        assert "PLIVO_AUTH_TOKEN" in problems["carrier.auth_token"]

    def test_every_problem_reported_at_once(self) -> None:
        table = campaign(numbers=["12"], initial_post_url="nope")
        del table["name"]
        data = config(
            server={"bind": "localhost", "extra": 1},
            routing={"ring_timeout_s": False, "accept_timeout_s": -1},
            log={"level": "loud"},
            campaigns=[table],
        )
        assert set(problems_of(data)) == {
            "server.bind",
            "server.extra",
            "routing.ring_timeout_s",
            "routing.accept_timeout_s",
            "log.level",
            "campaigns[0].name",
            "campaigns[0].numbers[0]",
            "campaigns[0].initial_post_url",
        }


class TestEnvironment:
    """Plivo credentials may come from the environment instead of the file."""

    def test_env_fills_empty_credentials(self) -> None:
        env = {"PLIVO_AUTH_ID": "MAID", "PLIVO_AUTH_TOKEN": "secret"}
        settings = parse_settings(config(carrier={"kind": "plivo"}), env)
        assert (settings.carrier.auth_id, settings.carrier.auth_token) == ("MAID", "secret")

    def test_file_value_wins_over_env(self) -> None:
        carrier = {"kind": "plivo", "auth_id": "FILEID", "auth_token": "filetoken"}
        settings = parse_settings(config(carrier=carrier), {"PLIVO_AUTH_TOKEN": "envtoken"})
        assert settings.carrier.auth_token == "filetoken"
        assert settings.carrier.auth_id == "FILEID"


class TestRedactUrl:
    """Store URLs printed by check-config never show a password."""

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            (
                "postgresql+psycopg://app:s3cret@db:5432/orch",
                "postgresql+psycopg://app:***@db:5432/orch",
            ),
            (
                "postgresql+psycopg://root@127.0.0.1/test",
                "postgresql+psycopg://root@127.0.0.1/test",
            ),
            ("sqlite:///orchestrator.db", "sqlite:///orchestrator.db"),
        ],
    )
    def test_redacts_password_only(self, url: str, shown: str) -> None:
        assert redact_url(url) == shown


def test_the_commented_ivr_example_in_config_toml_is_valid() -> None:
    """Uncommenting config.toml's [campaigns.ivr] example gives a working IVR menu."""
    import re
    import tomllib

    from orchestrator.config import parse_settings

    text = REPO_CONFIG.read_text()
    text = text.replace("# [campaigns.ivr]", "[campaigns.ivr]")
    text = re.sub(r"^# (prompt|plantypes|redirects|retries|timeout_s) =", r"\1 =", text, flags=re.M)
    menu = parse_settings(tomllib.loads(text)).campaigns[0].ivr
    assert menu is not None
    assert (menu.keys, menu.plantypes["2"], menu.redirects["0"]) == (
        "012",
        "Refinance",
        "8005550199",
    )
