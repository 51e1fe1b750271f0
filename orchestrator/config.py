"""Typed, immutable settings loaded from TOML (docs/contract.md §10).

``parse_settings`` is pure: it takes the decoded TOML mapping and the environment and returns
:class:`Settings`, or raises :class:`ConfigError` listing *every* problem (unknown key, wrong
type, bad URL, number not 10 digits, duplicate campaign number, missing required key), each
naming its key. ``load_settings`` adds the file read.

Campaign keys for referrals and Step 2 authentication (docs/contract.md §7; all optional, the
defaults keep a campaign as it was): ``tracking_numbers`` (10 digits each, unique across every
campaign's ``numbers`` and ``tracking_numbers``; a call to one routes to its campaign),
``referral_ttl_s`` (> 0), ``api_key`` (empty, or at least :data:`API_KEY_MIN_CHARS` printable
ASCII characters without spaces) and ``step2_requires_key`` (needs ``api_key``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from orchestrator.errors import ConfigError, Problem
from orchestrator.ivr import IvrMenu, parse_menu
from orchestrator.numbers import to_nanp10
from simulator.defaults import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN

CarrierKind = Literal["plivo", "simulator"]
LOG_LEVELS = ("debug", "info", "warning", "error")
#: Shortest accepted ``campaigns[].api_key``: a guessable key protects nothing.
API_KEY_MIN_CHARS = 16
#: Shortest accepted ``cluster.secret`` (it authenticates one instance to another).
CLUSTER_SECRET_MIN_CHARS = 32
#: Credentials of the built-in simulator's account when ``carrier.kind = "simulator"`` leaves
#: them empty: the simulator's own defaults.
SIMULATOR_AUTH_ID = DEFAULT_AUTH_ID
SIMULATOR_AUTH_TOKEN = DEFAULT_AUTH_TOKEN


@dataclass(frozen=True, slots=True)
class ServerSettings:
    bind: str = "127.0.0.1:8080"
    public_url: str = "http://127.0.0.1:8080"
    drain_s: float = 10.0
    #: This instance's own public base for the carrier's callbacks ("" = ``public_url``).
    callback_url: str = ""
    #: A worker of ``serve --workers N`` (``orchestrator.workers``): its own address, served
    #: beside ``bind`` (which the workers then share with SO_REUSEPORT). Not a config key.
    worker_bind: str = ""

    @property
    def callback_base(self) -> str:
        """The base of every callback URL this instance gives the carrier."""
        return (self.callback_url or self.public_url).rstrip("/")

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.bind.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """Several instances on one PostgreSQL database (docs/contract.md §11). ``enabled`` when
    the config has a ``[cluster]`` table."""

    enabled: bool = False
    instance_id: str = ""  # "" = the bind's host:port
    internal_url: str = ""  # how the other instances reach this one; "" = http://{bind}
    secret: str = field(default="", repr=False)  # authenticates instance-to-instance requests
    heartbeat_s: float = 1.0
    lease_s: float = 5.0
    forward_timeout_s: float = 2.0  # a request handed to another instance waits this long


@dataclass(frozen=True, slots=True)
class StoreSettings:
    url: str = "sqlite:///orchestrator.db"


@dataclass(frozen=True, slots=True)
class CarrierSettings:
    kind: CarrierKind = "plivo"
    auth_id: str = ""
    auth_token: str = ""
    api_url: str = "https://api.plivo.com"
    verify_signatures: bool = True
    calls_per_second: float = 2.0
    # ending a leg at the carrier (actors/teardown.py): one attempt, then background retries
    end_timeout_s: float = 10.0
    end_retry_s: float = 1.0
    end_retry_max_s: float = 15.0
    end_retry_for_s: float = 90.0


@dataclass(frozen=True, slots=True)
class RoutingSettings:
    plan_timeout_s: float = 10.0
    ring_timeout_s: float = 20.0
    accept_timeout_s: float = 8.0
    voicemail_max_s: float = 120.0
    initial_post_timeout_s: float = 5.0


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: str = "info"


@dataclass(frozen=True, slots=True)
class OperatorSettings:
    """The operator surface (call history, live calls, admin actions)."""

    token: str = field(default="", repr=False)  # empty: the operator routes answer 401

    @property
    def enabled(self) -> bool:
        return bool(self.token)


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    """Step 3 delivery: exponential back-off between attempts, then give up (row kept, dead)."""

    first_retry_s: float = 2.0
    max_retry_s: float = 900.0
    give_up_after_s: float = 86_400.0
    per_customer: int = 4  # posts in flight at once per customer host


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """The built-in carrier simulator (``carrier.kind = "simulator"``)."""

    time_scale: float = 1.0  # real seconds per simulated second
    scenario: str = ""  # TOML/JSON file of agent and lead scripts
    cps: float = 0.0  # outbound calls per second before Make Call queues (0 = unlimited)


@dataclass(frozen=True, slots=True)
class Campaign:
    name: str
    numbers: tuple[str, ...]
    plantype: str
    initial_post_url: str
    outcome_post_url: str
    caller_id: str = ""
    # Referrals (docs/contract.md §7) and Step 2 authentication: see orchestrator/referrals.py.
    tracking_numbers: tuple[str, ...] = ()  # the pool handed out to website visitors
    referral_ttl_s: float = 3600.0  # how long a call to a tracking number is attributed
    api_key: str = field(default="", repr=False)  # never in a repr or a log line
    step2_requires_key: bool = False
    ivr: IvrMenu | None = None  # an optional question before routing (docs/contract.md §8)
    outcome_secret: str = field(default="", repr=False)  # HMAC key of Step 3 posts

    def caller_id_for(self, dialled_number: str) -> str:
        """Caller id shown to agents when ShowAgentRealID=0 (docs/contract.md §4.3)."""
        return self.caller_id or dialled_number

    @property
    def referrals_enabled(self) -> bool:
        """Whether ``POST /referrals`` can register visitors for this campaign."""
        return bool(self.api_key and self.tracking_numbers)


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    carrier: CarrierSettings = field(default_factory=CarrierSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    log: LogSettings = field(default_factory=LogSettings)
    simulator: SimulatorSettings = field(default_factory=SimulatorSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    operator: OperatorSettings = field(default_factory=OperatorSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    campaigns: tuple[Campaign, ...] = ()

    @property
    def instance_id(self) -> str:
        """This instance's id: ``cluster.instance_id``, else the bind's ``host:port``."""
        return self.cluster.instance_id or self.server.bind

    @property
    def internal_url(self) -> str:
        """How the other instances reach this one."""
        return (self.cluster.internal_url or f"http://{self.server.bind}").rstrip("/")

    def campaign_for_number(self, number: str) -> Campaign | None:
        """The campaign that owns the 10-digit ``number`` (one of its ``numbers`` or
        ``tracking_numbers``), or ``None``."""
        for campaign in self.campaigns:
            if number in campaign.numbers or number in campaign.tracking_numbers:
                return campaign
        return None

    def campaign_named(self, name: str) -> Campaign | None:
        return next((c for c in self.campaigns if c.name == name), None)


# --- the schema ---------------------------------------------------------------------------

_Check = Callable[[Any], str | None]  # returns a problem message, or None when fine


def _is_url(value: Any) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"must be an http(s) URL, got {value!r}"
    return None


def _empty_or_url(value: Any) -> str | None:
    return None if value == "" else _is_url(value)


def _instance_id(value: Any) -> str | None:
    if value == "":
        return None
    if len(value) > 64 or not all(c.isalnum() or c in "-_.:" for c in value):
        return f"must be at most 64 letters, digits or -_.: , got {value[:70]!r}"
    return None


def _cluster_secret(value: Any) -> str | None:
    if value == "":
        return None
    if len(value) < CLUSTER_SECRET_MIN_CHARS or not value.isascii() or not value.isprintable():
        return f"must be at least {CLUSTER_SECRET_MIN_CHARS} printable ASCII characters"
    return None


def _is_bind(value: Any) -> str | None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        return f"must be HOST:PORT, got {value!r}"
    return None


def _is_store_url(value: Any) -> str | None:
    if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
        return f"must be sqlite:///PATH or postgresql+psycopg://..., got {value!r}"
    return None


def _positive(value: Any) -> str | None:
    return None if value > 0 else f"must be greater than 0, got {value}"


def _not_negative(value: Any) -> str | None:
    return None if value >= 0 else f"must be 0 or more, got {value}"


def _operator_token(value: Any) -> str | None:
    if value == "":
        return None
    if len(value) < 16 or not value.isascii() or not value.isprintable() or " " in value:
        return "must be at least 16 printable ASCII characters without spaces (or empty)"
    return None


def _one_of(*allowed: str) -> _Check:
    def check(value: Any) -> str | None:
        return None if value in allowed else f"must be one of {', '.join(allowed)}; got {value!r}"

    return check


def _nonempty(value: Any) -> str | None:
    return None if value.strip() else "must not be empty"


def _plantype(value: Any) -> str | None:
    if not value.strip():
        return "must not be empty"
    return None if len(value) <= 20 else "must be at most 20 characters (API doc)"


def _api_key(value: Any) -> str | None:
    if value == "":
        return None
    if not (value.isascii() and value.isprintable()) or " " in value:
        return "must be printable ASCII without spaces (it travels in an HTTP header)"
    if len(value) < API_KEY_MIN_CHARS:
        return f"must be at least {API_KEY_MIN_CHARS} characters (or empty: no key)"
    return None


def _ten_digits(value: Any) -> str | None:
    if value == "":
        return None
    return None if to_nanp10(value) == value else f"must be 10 digits, got {value!r}"


@dataclass(frozen=True, slots=True)
class _Key:
    kind: type | tuple[type, ...]
    default: Any = ...  # ... means required
    check: _Check | None = None


_REQUIRED = ...
_NUMBER = (int, float)

_SECTIONS: dict[str, dict[str, _Key]] = {
    "server": {
        "bind": _Key(str, "127.0.0.1:8080", _is_bind),
        "public_url": _Key(str, "http://127.0.0.1:8080", _is_url),
        "drain_s": _Key(_NUMBER, 10.0, _positive),
        "callback_url": _Key(str, "", _empty_or_url),
    },
    "store": {"url": _Key(str, "sqlite:///orchestrator.db", _is_store_url)},
    "carrier": {
        "kind": _Key(str, "plivo", _one_of("plivo", "simulator")),
        "auth_id": _Key(str, ""),
        "auth_token": _Key(str, ""),
        "api_url": _Key(str, "https://api.plivo.com", _is_url),
        "verify_signatures": _Key(bool, True),
        "calls_per_second": _Key(_NUMBER, 2.0, _positive),
        "end_timeout_s": _Key(_NUMBER, 10.0, _positive),
        "end_retry_s": _Key(_NUMBER, 1.0, _positive),
        "end_retry_max_s": _Key(_NUMBER, 15.0, _positive),
        "end_retry_for_s": _Key(_NUMBER, 90.0, _not_negative),
    },
    "routing": {
        "plan_timeout_s": _Key(_NUMBER, 10.0, _positive),
        "ring_timeout_s": _Key(_NUMBER, 20.0, _positive),
        "accept_timeout_s": _Key(_NUMBER, 8.0, _positive),
        "voicemail_max_s": _Key(_NUMBER, 120.0, _positive),
        "initial_post_timeout_s": _Key(_NUMBER, 5.0, _positive),
    },
    "log": {"level": _Key(str, "info", _one_of(*LOG_LEVELS))},
    "operator": {"token": _Key(str, "", _operator_token)},
    "outbox": {
        "first_retry_s": _Key(_NUMBER, 2.0, _positive),
        "max_retry_s": _Key(_NUMBER, 900.0, _positive),
        "give_up_after_s": _Key(_NUMBER, 86_400.0, _positive),
        "per_customer": _Key(int, 4, _positive),
    },
    "cluster": {
        "instance_id": _Key(str, "", _instance_id),
        "internal_url": _Key(str, "", _empty_or_url),
        "secret": _Key(str, "", _cluster_secret),
        "heartbeat_s": _Key(_NUMBER, 1.0, _positive),
        "lease_s": _Key(_NUMBER, 5.0, _positive),
        "forward_timeout_s": _Key(_NUMBER, 2.0, _positive),
    },
    "simulator": {
        "time_scale": _Key(_NUMBER, 1.0, _positive),
        "scenario": _Key(str, ""),
        "cps": _Key(_NUMBER, 0.0, _not_negative),
    },
}

_CAMPAIGN: dict[str, _Key] = {
    "name": _Key(str, _REQUIRED, _nonempty),
    "numbers": _Key(list, _REQUIRED),
    "plantype": _Key(str, _REQUIRED, _plantype),
    "initial_post_url": _Key(str, _REQUIRED, _is_url),
    "outcome_post_url": _Key(str, _REQUIRED, _is_url),
    "caller_id": _Key(str, "", _ten_digits),
    "tracking_numbers": _Key(list, ()),
    "referral_ttl_s": _Key(_NUMBER, 3600.0, _positive),
    "api_key": _Key(str, "", _api_key),
    "step2_requires_key": _Key(bool, False),
    "ivr": _Key(dict, None),
    "outcome_secret": _Key(str, ""),
}

_TYPE_NAMES = {
    str: "a string",
    bool: "true or false",
    list: "a list",
    dict: "a table",
    int: "a whole number",
    _NUMBER: "a number",
}


def _read_table(
    table: Mapping[str, Any], schema: Mapping[str, _Key], prefix: str, problems: list[Problem]
) -> dict[str, Any]:
    """Check one TOML table against its schema; return the values (defaults filled in)."""
    values: dict[str, Any] = {}
    for key in table:
        if key not in schema:
            problems.append(Problem(f"{prefix}.{key}", "unknown key"))
    for key, spec in schema.items():
        name = f"{prefix}.{key}"
        if key not in table:
            if spec.default is _REQUIRED:
                problems.append(Problem(name, "missing required key"))
            else:
                values[key] = spec.default
            continue
        value: Any = table[key]
        # bool is an int in Python: never accept true/false where a number is expected
        wrong_bool = isinstance(value, bool) and spec.kind is not bool
        if wrong_bool or not isinstance(value, spec.kind):
            expected = _TYPE_NAMES.get(spec.kind, str(spec.kind))
            problems.append(Problem(name, f"must be {expected}, got {type(value).__name__}"))
            continue
        message = spec.check(value) if spec.check else None
        if message:
            problems.append(Problem(name, message))
            continue
        values[key] = float(table[key]) if spec.kind is _NUMBER else value
    return values


def _read_campaigns(raw: Any, problems: list[Problem]) -> list[Campaign]:
    if not isinstance(raw, list) or not raw:
        problems.append(Problem("campaigns", "at least one [[campaigns]] table is required"))
        return []
    campaigns: list[Campaign] = []
    owner: dict[str, str] = {}
    names: set[str] = set()
    for i, table in enumerate(raw):
        prefix = f"campaigns[{i}]"
        if not isinstance(table, dict):
            problems.append(Problem(prefix, "must be a table"))
            continue
        before = len(problems)
        values = _read_table(table, _CAMPAIGN, prefix, problems)
        if values.get("ivr") is not None:
            values["ivr"] = parse_menu(values["ivr"], f"{prefix}.ivr", problems)
        numbers = _read_numbers(values, "numbers", prefix, owner, problems)
        tracking = _read_numbers(values, "tracking_numbers", prefix, owner, problems)
        if values.get("step2_requires_key") and not values.get("api_key"):
            problems.append(
                Problem(f"{prefix}.step2_requires_key", "is true, so api_key must be set too")
            )
        if "numbers" in values and not values["numbers"]:
            problems.append(Problem(f"{prefix}.numbers", "must list at least one number"))
        name = values.get("name")
        if name is not None and name in names:
            problems.append(Problem(f"{prefix}.name", f"duplicate campaign name {name!r}"))
        if name is not None:
            names.add(name)
        if len(problems) == before:
            values |= {"numbers": tuple(numbers), "tracking_numbers": tuple(tracking)}
            campaigns.append(Campaign(**values))
    return campaigns


def _read_numbers(
    values: Mapping[str, Any], key: str, prefix: str, owner: dict[str, str], problems: list[Problem]
) -> list[str]:
    """The 10-digit numbers of ``values[key]``; each must be unique across every campaign's
    ``numbers`` and ``tracking_numbers`` (``owner`` maps the numbers seen so far to their
    campaign)."""
    numbers: list[str] = []
    for j, number in enumerate(values.get(key, ())):
        name = f"{prefix}.{key}[{j}]"
        if not isinstance(number, str) or to_nanp10(number) != number:
            problems.append(Problem(name, f"must be 10 digits, got {number!r}"))
        elif number in owner:
            problems.append(
                Problem(
                    name,
                    f"duplicate campaign number {number} (also in campaign {owner[number]!r})",
                )
            )
        else:
            owner[number] = values.get("name", prefix)
            numbers.append(number)
    return numbers


def _cluster_problems(data: Mapping[str, Any], sections: Mapping[str, Any]) -> list[Problem]:
    """What a ``[cluster]`` table needs: PostgreSQL, a secret, a lease longer than two
    heartbeats, and an internal URL when the bind address is a wildcard."""
    if "cluster" not in data:
        return []
    cluster, problems = sections["cluster"], []
    url = sections["store"].get("url", "")
    if isinstance(url, str) and url.startswith("sqlite"):
        problems.append(
            Problem(
                "cluster",
                "a cluster needs PostgreSQL (store.url is SQLite, the embedded single-process "
                'store): set store.url = "postgresql+psycopg://..." or remove [cluster]',
            )
        )
    if not cluster.get("secret"):
        problems.append(
            Problem(
                "cluster.secret",
                "required in a cluster: every instance-to-"
                "instance request is signed with it (the same on all)",
            )
        )
    heartbeat, lease = cluster.get("heartbeat_s"), cluster.get("lease_s")
    if isinstance(heartbeat, float) and isinstance(lease, float) and lease <= 2 * heartbeat:
        problems.append(
            Problem(
                "cluster.lease_s",
                f"must be more than twice heartbeat_s ({heartbeat:g}), got {lease:g}",
            )
        )
    bind = sections["server"].get("bind", "")
    host = bind.rpartition(":")[0].strip("[]") if isinstance(bind, str) else ""
    if host in ("0.0.0.0", "::", "") and not cluster.get("internal_url"):
        problems.append(
            Problem(
                "cluster.internal_url",
                f"required when server.bind ({bind}) listens on every address",
            )
        )
    return problems


def parse_settings(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from a decoded TOML mapping.

    ``PLIVO_AUTH_ID`` / ``PLIVO_AUTH_TOKEN`` in ``env`` fill ``carrier.auth_id`` /
    ``carrier.auth_token`` when the file leaves them empty.

    Raises:
        ConfigError: listing every problem found, each naming its key.
    """
    env = env or {}
    problems: list[Problem] = []
    for key in data:
        if key not in _SECTIONS and key != "campaigns":
            problems.append(Problem(key, "unknown section"))
    sections: dict[str, dict[str, Any]] = {}
    for section, schema in _SECTIONS.items():
        table = data.get(section, {})
        if not isinstance(table, dict):
            problems.append(Problem(section, "must be a table"))
            table = {}
        sections[section] = _read_table(table, schema, section, problems)
    campaigns = _read_campaigns(data.get("campaigns"), problems)

    carrier = sections["carrier"]
    for key, var in (("auth_id", "PLIVO_AUTH_ID"), ("auth_token", "PLIVO_AUTH_TOKEN")):
        if not carrier.get(key) and env.get(var):
            carrier[key] = env[var]
    if carrier.get("kind") == "simulator":
        carrier["auth_id"] = carrier.get("auth_id") or SIMULATOR_AUTH_ID
        carrier["auth_token"] = carrier.get("auth_token") or SIMULATOR_AUTH_TOKEN
    verifying = carrier.get("kind") == "plivo" and carrier.get("verify_signatures", True)
    if verifying and not carrier.get("auth_token"):
        problems.append(
            Problem(
                "carrier.auth_token",
                "required to verify Plivo signatures (set it, or env PLIVO_AUTH_TOKEN)",
            )
        )
    problems += _cluster_problems(data, sections)
    secret_of: dict[str, str] = {}
    for i, campaign in enumerate(campaigns):
        known = secret_of.setdefault(campaign.outcome_post_url, campaign.outcome_secret)
        if known != campaign.outcome_secret:
            problems.append(
                Problem(
                    f"campaigns[{i}].outcome_secret",
                    "campaigns posting to the same outcome_post_url must share one outcome_secret",
                )
            )
    if problems:
        raise ConfigError(problems)
    return Settings(
        server=ServerSettings(**sections["server"]),
        store=StoreSettings(**sections["store"]),
        carrier=CarrierSettings(**carrier),
        routing=RoutingSettings(**sections["routing"]),
        log=LogSettings(**sections["log"]),
        simulator=SimulatorSettings(**sections["simulator"]),
        outbox=OutboxSettings(**sections["outbox"]),
        operator=OperatorSettings(**sections["operator"]),
        cluster=ClusterSettings(enabled="cluster" in data, **sections["cluster"]),
        campaigns=tuple(campaigns),
    )


def load_settings(path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read and parse a TOML config file.

    Raises:
        ConfigError: the file is missing, is not valid TOML, or has problems.
    """
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError([Problem(str(path), "config file not found")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Problem(str(path), f"not valid TOML: {exc}")]) from None
    return parse_settings(data, env)
