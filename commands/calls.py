"""``orchestrator calls``: the call history of a running service, for operators at a terminal.

It asks the service's operator API (``GET /calls``, ``GET /calls/{guid}``, ``GET /agents``,
see :mod:`web.history`) over HTTP and prints aligned tables (or the API's JSON or CSV as is)::

    orchestrator calls [--config FILE] [list|show GUID|agents] [filters] [--format table|json|csv]

The service is found at the config's ``server.public_url`` (or ``--url``); the operator token
comes from the config's ``[operator] token``, else the environment's ``ORCH_OPERATOR_TOKEN``.
With ``--url`` and the environment variable, no config file is needed.

Times given to ``--since``/``--until`` may be relative (``15m``, ``2h``, ``3d``, ``1w``: that
long ago), epoch seconds, or ISO 8601; an ISO time without an offset is *local* time (the API
itself reads such times as UTC, so they are converted here). Tables show local times.

Exit codes: 0 done, 1 the service could not be reached or refused (401, 404, 409, 5xx), 2 bad
usage, a bad config, or parameters the service rejected (400).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from orchestrator.config import Settings, load_settings
from orchestrator.errors import ConfigError

if TYPE_CHECKING:
    import httpx

TOKEN_ENV = "ORCH_OPERATOR_TOKEN"
DEFAULT_CONFIG = "config.toml"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: Rows per page when following every page (``--all``) without ``--limit``.
ALL_PAGE_LIMIT = 500

_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_EPOCH = re.compile(r"\d+(\.\d+)?")
_NUMERIC = re.compile(r"-?\d+(\.\d+)?s?")
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class UsageError(Exception):
    """The command line is wrong (exit 2)."""


# --- arguments -----------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "what",
        nargs="?",
        default="list",
        choices=("list", "show", "agents"),
        help="list calls (default), show one call, or list agents",
    )
    parser.add_argument("guid", nargs="?", metavar="GUID", help="the TrackingGUID, for show")
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=DEFAULT_CONFIG,
        help=f"TOML config file (default: {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--url",
        metavar="URL",
        help="the service's base URL (default: the config's server.public_url)",
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="output format (default: table)",
    )
    parser.add_argument(
        "--since",
        metavar="TIME",
        help="calls started at or after TIME (agents: seen since): 15m, 2h, 3d, "
        "epoch seconds or ISO 8601 (local time unless it has an offset)",
    )
    parser.add_argument(
        "--until", metavar="TIME", help="calls started before TIME (agents: first seen before)"
    )
    parser.add_argument("--campaign", action="append", default=[], help="campaign (repeatable)")
    parser.add_argument(
        "--outcome",
        action="append",
        default=[],
        help="connected, voicemail, hung_up or redirected (repeatable)",
    )
    parser.add_argument("--phone", help="the lead's phone (agents: the agent's), any format")
    parser.add_argument(
        "--agent",
        metavar="AGENT_ID",
        help="calls where this AgentID had a leg (agents: this agent)",
    )
    parser.add_argument("--name", help="agents whose name contains this text")
    parser.add_argument("--limit", metavar="N", help="rows per page (1-500, default 50)")
    parser.add_argument("--cursor", help="start after this cursor (printed after a page)")
    parser.add_argument("--all", action="store_true", help="follow every page to the end")
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to wait for the service (default 10)",
    )


def cli_time(text: str, now: float) -> str:
    """What to send for a ``--since``/``--until`` value: epoch seconds, or an ISO time with
    its offset (see the module docstring).

    Raises:
        UsageError: not a time.
    """
    value = text.strip()
    relative = _RELATIVE.fullmatch(value)
    if relative:
        return f"{now - float(relative[1]) * _UNIT_S[relative[2]]:.3f}"
    if _EPOCH.fullmatch(value):
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"not a time: {text!r} (use 15m, 2h, 3d, epoch seconds or ISO 8601)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time
    return moment.isoformat()


def request_params(args: argparse.Namespace, now: float) -> list[tuple[str, str]]:
    """The query parameters of ``args`` for ``GET /calls`` or ``GET /agents``.

    Raises:
        UsageError: an option that does not apply, or a bad time.
    """
    params: list[tuple[str, str]] = []
    for name in ("since", "until"):
        value = getattr(args, name)
        if value:
            params.append((name, cli_time(value, now)))
    agents = args.what == "agents"
    if agents and (args.campaign or args.outcome):
        raise UsageError("--campaign and --outcome filter calls, not agents")
    if not agents and args.name:
        raise UsageError("--name filters agents (orchestrator calls agents --name ...)")
    params += [("campaign", c) for c in args.campaign] + [("outcome", o) for o in args.outcome]
    for name in ("phone", "agent", "name", "cursor"):
        value = getattr(args, name)
        if value:
            params.append((name, value))
    limit = args.limit or (str(ALL_PAGE_LIMIT) if args.all else None)
    if limit:
        params.append(("limit", limit))
    if args.format == "csv":
        params.append(("format", "csv"))
    return params


# --- rendering (pure) ----------------------------------------------------------------------------


def local_time(value: object, *, with_date: bool = True) -> str:
    """An API time (ISO 8601) as local ``YYYY-MM-DD HH:MM:SS`` (or just the time); "" for
    None; anything unparseable as it is."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        moment = datetime.fromisoformat(value).astimezone()
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def phone_text(value: object) -> str:
    text = "" if value is None else str(value)
    return f"{text[:3]}-{text[3:6]}-{text[6:]}" if len(text) == 10 and text.isdigit() else text


def seconds_text(value: object) -> str:
    return "" if value is None else f"{value}s"


def cell(value: object) -> str:
    """A table cell: "" for None, yes/no for booleans, compact JSON for structures."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "") -> list[str]:
    """Aligned columns, two spaces apart; a column of numbers only is right-aligned."""
    cells = [[cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    numeric = [True] * len(headers)
    for row in cells:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))
            if text and not _NUMERIC.fullmatch(text):
                numeric[i] = False
    lines = []
    for values in [list(headers), *cells]:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        lines.append((indent + "  ".join(parts)).rstrip())
    return lines


def _outcome_text(call: Mapping[str, Any]) -> str:
    outcome = call.get("outcome")
    return str(outcome) if outcome else f"({call.get('state')})"


def _agent_text(call: Mapping[str, Any]) -> str:
    if call.get("outcome") != "connected":
        return ""
    return f"{call.get('agent1_id')} {call.get('agent_name') or ''}".strip()


def calls_table(calls: Sequence[Mapping[str, Any]]) -> list[str]:
    """``GET /calls`` rows as a table (local times)."""
    if not calls:
        return ["no calls"]
    rows = [
        (
            local_time(c.get("started_at")),
            c.get("tracking_guid"),
            c.get("campaign"),
            phone_text(c.get("lead_phone")),
            _outcome_text(c),
            _agent_text(c),
            c.get("legs"),
            c.get("tiers"),
            seconds_text(c.get("duration_s")),
        )
        for c in calls
    ]
    headers = (
        "STARTED",
        "TRACKING GUID",
        "CAMPAIGN",
        "LEAD",
        "OUTCOME",
        "AGENT",
        "LEGS",
        "TIERS",
        "DURATION",
    )
    return table(headers, rows)


def agents_table(agents: Sequence[Mapping[str, Any]]) -> list[str]:
    """``GET /agents`` rows as a table (local times)."""
    if not agents:
        return ["no agents"]
    rows = [
        (
            a.get("agent_id"),
            a.get("name"),
            phone_text(a.get("phone")),
            a.get("email"),
            a.get("legs"),
            a.get("accepted"),
            local_time(a.get("first_seen")),
            local_time(a.get("last_seen")),
        )
        for a in agents
    ]
    headers = ("AGENT ID", "NAME", "PHONE", "EMAIL", "LEGS", "ACCEPTED", "FIRST SEEN", "LAST SEEN")
    return table(headers, rows)


def _detail_text(detail: object) -> str:
    if isinstance(detail, dict):
        return " ".join(f"{k}={cell(v)}" for k, v in detail.items())
    return cell(detail)


def _step3_text(step3: Mapping[str, Any] | None) -> str:
    if step3 is None:
        return "not queued yet"
    attempts = step3.get("attempts")
    if step3.get("delivered_at"):
        return f"delivered {local_time(step3['delivered_at'])} (attempts: {attempts})"
    if step3.get("dead"):
        return f"gave up after {attempts} attempts: {step3.get('last_error')}"
    error = f", last error: {step3['last_error']}" if step3.get("last_error") else ""
    return (
        f"pending, next attempt {local_time(step3.get('next_attempt_at'))} "
        f"(attempts: {attempts}{error})"
    )


def call_text(call: Mapping[str, Any]) -> list[str]:
    """``GET /calls/{guid}`` as a header, the legs, the live legs and the event log."""
    finished = local_time(call.get("finished_at"))
    duration = f" ({seconds_text(call.get('duration_s'))})" if call.get("duration_s") else ""
    outcome = _outcome_text(call)
    agent = _agent_text(call)
    fields: list[tuple[str, object]] = [
        ("campaign", f"{call.get('campaign')} ({call.get('plantype')})"),
        (
            "lead",
            f"{phone_text(call.get('lead_phone'))} -> "
            f"{phone_text(call.get('dialled_number'))}, referral {call.get('referral_id')}",
        ),
        ("started", local_time(call.get("started_at"))),
        ("finished", f"{finished}{duration}" if finished else "(in progress)"),
        ("outcome", f"{outcome}: agent {agent}" if agent else outcome),
        ("Agent1ID", call.get("agent1_id")),
        ("message link", call.get("message_link") or ""),
        ("step 3", _step3_text(call.get("step3"))),
    ]
    lines = [f"Call {call.get('tracking_guid')}"]
    lines += [f"  {name:<13}{cell(value)}" for name, value in fields]
    live = call.get("live")
    if isinstance(live, Mapping):
        lines.append(
            f"  {'live':<13}{live.get('state')}, tier {cell(live.get('tier'))}, "
            f"waiting {live.get('waiting_s')}s, "
            f"tiers tried {cell(live.get('tiers_tried'))}"
        )
        live_legs = [
            (
                leg.get("tier"),
                leg.get("agent_id"),
                leg.get("name"),
                phone_text(leg.get("phone")),
                leg.get("state"),
            )
            for leg in live.get("legs") or []
        ]
        lines += [
            "",
            "Live legs",
            *table(("TIER", "AGENT ID", "NAME", "PHONE", "STATE"), live_legs, indent="  "),
        ]
    legs = call.get("legs") or []
    lines += ["", "Legs"]
    lines += (
        table(
            ("TIER", "ROW", "AGENT ID", "NAME", "PHONE", "RESULT", "STARTED", "ANSWERED", "ENDED"),
            [
                (
                    leg.get("tier"),
                    leg.get("row"),
                    leg.get("agent_id"),
                    leg.get("name"),
                    phone_text(leg.get("phone")),
                    leg.get("result") or "(live)",
                    local_time(leg.get("started_at"), with_date=False),
                    local_time(leg.get("answered_at"), with_date=False),
                    local_time(leg.get("ended_at"), with_date=False),
                )
                for leg in legs
            ],
            indent="  ",
        )
        if legs
        else ["  none"]
    )
    events = call.get("events") or []
    lines += ["", "Events"]
    lines += (
        table(
            ("AT", "+S", "EVENT", "DETAIL"),
            [
                (
                    local_time(e.get("at"), with_date=False),
                    f"{e.get('offset_s', 0):.3f}",
                    e.get("event"),
                    _detail_text(e.get("detail")),
                )
                for e in events
            ],
            indent="  ",
        )
        if events
        else ["  none"]
    )
    return lines


# --- talking to the service ----------------------------------------------------------------------


class ServiceRefused(Exception):
    """The service answered an error; ``code`` is the exit code to end with."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def refusal(response: httpx.Response) -> ServiceRefused:
    """What to tell the operator about an error answer."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    status = response.status_code
    if status == 401:
        return ServiceRefused(
            f"the service refused the operator token (401): set [operator] "
            f"token in the config or {TOKEN_ENV}"
        )
    if status == 400 and isinstance(body, dict):
        problems = body.get("problems") or []
        lines = [f"{p.get('field')}: {p.get('message')}" for p in problems]
        return ServiceRefused("\n".join(["the service rejected the request:", *lines]), EXIT_USAGE)
    return ServiceRefused(f"{error or response.reason_phrase} (HTTP {status})")


def fetch(client: httpx.Client, path: str, params: Sequence[tuple[str, str]]) -> httpx.Response:
    import httpx

    try:
        response = client.get(path, params=list(params))
    except httpx.HTTPError as exc:
        raise ServiceRefused(f"cannot reach the service at {client.base_url}: {exc}") from exc
    if response.status_code != 200:
        raise refusal(response)
    return response


def fetch_pages(
    client: httpx.Client, path: str, params: list[tuple[str, str]], *, follow: bool
) -> tuple[list[httpx.Response], str | None]:
    """The first page (every page with ``follow``) and the cursor after the last one."""
    pages: list[httpx.Response] = []
    while True:
        response = fetch(client, path, params)
        pages.append(response)
        cursor = (
            response.headers.get("X-Next-Cursor")
            if "csv" in response.headers.get("content-type", "")
            else response.json().get("next_cursor")
        )
        if not follow or not cursor:
            return pages, cursor
        params = [(k, v) for k, v in params if k != "cursor"] + [("cursor", cursor)]


def print_listing(
    pages: Sequence[httpx.Response], key: str, fmt: str, cursor: str | None, follow: bool
) -> None:
    if fmt == "csv":
        for i, page in enumerate(pages):
            text = page.text if i == 0 else page.text.split("\r\n", 1)[1]
            sys.stdout.write(text)
    else:
        rows = [row for page in pages for row in page.json()[key]]
        if fmt == "json":
            print(json.dumps({key: rows, "next_cursor": cursor}, indent=2))
        else:
            print("\n".join(calls_table(rows) if key == "calls" else agents_table(rows)))
    if cursor and not follow and fmt != "json":
        print(f"more {key}: add --cursor {cursor} (or --all)", file=sys.stderr)


# --- the command ---------------------------------------------------------------------------------


def _target(args: argparse.Namespace) -> tuple[str, str]:
    """The service's base URL and the operator token.

    Raises:
        UsageError: no usable config (its problems printed to stderr) or no token.
    """
    env_token = os.environ.get(TOKEN_ENV, "")
    settings: Settings | None = None
    if not (args.url and env_token):
        try:
            settings = load_settings(args.config, os.environ)
        except ConfigError as exc:
            for problem in exc.problems:
                print(f"{args.config}: {problem}", file=sys.stderr)
            raise UsageError(f"cannot use {args.config} (or give --url and {TOKEN_ENV})") from None
    url = args.url or (settings.server.public_url if settings else "")
    token = (settings.operator.token if settings else "") or env_token
    if not token:
        raise UsageError(f"no operator token: set [operator] token in {args.config} or {TOKEN_ENV}")
    return url.rstrip("/"), token


def run(args: argparse.Namespace) -> int:
    """Print calls, one call or agents (module docstring); returns the exit code."""
    import httpx

    try:
        if args.what == "show":
            if not args.guid:
                raise UsageError("show needs a TrackingGUID: orchestrator calls show GUID")
            if not _GUID.fullmatch(args.guid.strip().lower()):
                raise UsageError(f"not a TrackingGUID: {args.guid!r}")
            if args.format == "csv":
                raise UsageError("a single call is shown as a table or JSON, not CSV")
        elif args.guid:
            raise UsageError(f"unexpected argument {args.guid!r} ({args.what} takes no GUID)")
        params = request_params(args, time.time()) if args.what != "show" else []
        url, token = _target(args)
    except UsageError as exc:
        print(f"orchestrator calls: {exc}", file=sys.stderr)
        return EXIT_USAGE
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=args.timeout) as client:
            if args.what == "show":
                call = fetch(client, f"/calls/{args.guid.strip().lower()}", []).json()
                if args.format == "json":
                    print(json.dumps(call, indent=2))
                else:
                    print("\n".join(call_text(call)))
                return EXIT_OK
            path, key = ("/agents", "agents") if args.what == "agents" else ("/calls", "calls")
            pages, cursor = fetch_pages(client, path, params, follow=args.all)
            print_listing(pages, key, args.format, cursor, args.all)
    except ServiceRefused as exc:
        print(f"orchestrator calls: {exc}", file=sys.stderr)
        return exc.code
    return EXIT_OK
