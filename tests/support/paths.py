"""Where the repository is, and the smallest valid config file, for tests that need files."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REPO_CONFIG = REPO / "config.toml"

#: A minimal valid config: the built-in simulator, one campaign with two numbers.
VALID_TOML = """\
[server]
bind = "127.0.0.1:0"

[carrier]
kind = "simulator"

[[campaigns]]
name = "acme"
numbers = ["8005550100", "8005550101"]
plantype = "Purchase"
initial_post_url = "https://customer.example/initial"
outcome_post_url = "https://customer.example/outcome"
"""
