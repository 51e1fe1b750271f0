"""``orchestrator check-config`` (and the CLI's usage errors): run in-process through
``main([...])`` on temporary files, reading what it prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.main import main
from tests.support.paths import REPO_CONFIG, VALID_TOML


class TestCheckConfigCommand:
    """``orchestrator check-config`` explains every problem (exit 2) or summarises (exit 0)."""

    def test_repo_config_passes(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["check-config", "--config", str(REPO_CONFIG)]) == 0
        out = capsys.readouterr().out
        assert "OK" in out
        assert "campaigns: 1 (acme)" in out
        assert "carrier: simulator" in out

    def test_valid_file_prints_summary(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = tmp_path / "ok.toml"
        path.write_text(VALID_TOML)
        assert main(["check-config", "--config", str(path)]) == 0
        captured = capsys.readouterr()
        assert captured.err == ""
        assert "numbers: 2 (8005550100, 8005550101)" in captured.out
        assert "store: sqlite:///orchestrator.db" in captured.out
        assert "carrier: simulator" in captured.out

    def test_bad_file_lists_each_problem_on_stderr(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = tmp_path / "bad.toml"
        bad = VALID_TOML.replace('bind = "127.0.0.1:0"', 'bind = "127.0.0.1:0"\nbnid = 1')
        path.write_text(bad.replace('"8005550101"', '"555"').replace("https://customer", "x"))
        assert main(["check-config", "--config", str(path)]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        lines = captured.err.splitlines()
        assert lines[0] == f"{path}: 4 problems"
        assert sorted(lines[1:]) == sorted(
            [
                "server.bnid: unknown key",
                "campaigns[0].numbers[1]: must be 10 digits, got '555'",
                "campaigns[0].initial_post_url: must be an http(s) URL, got 'x.example/initial'",
                "campaigns[0].outcome_post_url: must be an http(s) URL, got 'x.example/outcome'",
            ]
        )

    def test_invalid_toml(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        path = tmp_path / "broken.toml"
        path.write_text("[server\nbind = 1\n")
        assert main(["check-config", "--config", str(path)]) == 2
        assert "not valid TOML" in capsys.readouterr().err

    def test_missing_file(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        path = tmp_path / "absent.toml"
        assert main(["check-config", "--config", str(path)]) == 2
        assert f"{path}: config file not found" in capsys.readouterr().err

    def test_env_credentials_make_plivo_config_pass(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = tmp_path / "plivo.toml"
        path.write_text(VALID_TOML.replace('kind = "simulator"', 'kind = "plivo"'))
        monkeypatch.delenv("PLIVO_AUTH_TOKEN", raising=False)
        assert main(["check-config", "--config", str(path)]) == 2
        assert "carrier.auth_token:" in capsys.readouterr().err
        monkeypatch.setenv("PLIVO_AUTH_TOKEN", "from-env")
        assert main(["check-config", "--config", str(path)]) == 0

    def test_unknown_subcommand_is_usage_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["frobnicate"]) == 2
        assert "invalid choice" in capsys.readouterr().err

    def test_a_bad_simulator_scenario_is_a_config_problem(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With the built-in simulator, its scenario file is checked too (exit 2, keys named)."""
        scenario = tmp_path / "scenario.toml"
        scenario.write_text('[agents."8885551111"]\nanswer_after_s = "soon"\nfly = true\n')
        path = tmp_path / "sim.toml"
        table = f'kind = "simulator"\n\n[simulator]\nscenario = "{scenario}"'
        path.write_text(VALID_TOML.replace('kind = "simulator"', table))
        assert main(["check-config", "--config", str(path)]) == 2
        err = capsys.readouterr().err
        assert "simulator.scenario: " in err
        assert "answer_after_s" in err
        assert "fly" in err
