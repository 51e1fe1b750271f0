"""Scripted behaviour of the simulated people on the phone. Pure: no trio, no I/O.

An :class:`AgentScript` says what the agent who owns a phone number does when the simulator
rings it (answer after a while, never answer, busy, fail, press keys, hang up, talk). A
:class:`LeadScript` says what a simulated inbound caller does (hang up, leave a message, talk,
press keys at an IVR). All durations are *simulated* seconds (the engine scales them by its
``time_scale``).

Both parse from plain dicts (JSON control API, TOML/JSON scenario files) with
:func:`agent_script_from_dict` / :func:`lead_script_from_dict`, which report every problem at
once in :class:`ScriptError`. :class:`ScriptBook` maps phone numbers to agent scripts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = [
    "AgentScript",
    "LeadScript",
    "PartyScript",
    "ScriptBook",
    "ScriptError",
    "agent_script_from_dict",
    "lead_script_from_dict",
    "number_key",
]

_KEYS = re.compile(r"^[0-9*#]+$")
_NON_DIGITS = re.compile(r"\D")


class ScriptError(ValueError):
    """A script dict is wrong; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True, slots=True)
class AgentScript:
    """What the agent at one phone number does when rung.

    Exactly one of ``no_answer`` (rings until the ring timeout: no-answer), ``busy``, ``fail``
    may be set; otherwise the agent answers after ``answer_after_s``. After answering they press
    ``press`` (``None`` = silence) ``press_after_s`` after each prompt for keys starts, hang up
    ``hangup_after_s`` after answering (``None`` = never on their own), and once connected to
    someone stay ``talk_s`` seconds before hanging up (``None`` = until the other side ends it).
    """

    answer_after_s: float = 2.0
    no_answer: bool = False
    busy: bool = False
    fail: bool = False
    press: str | None = "1"
    press_after_s: float = 1.0
    hangup_after_s: float | None = None
    talk_s: float | None = 30.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class LeadScript:
    """What a simulated inbound caller does once their call is answered.

    ``hangup_after_s``: hang up this long after the call starts (``None`` = stays on the line).
    ``message_s``: length of the message they speak when a ``<Record>`` runs (``None`` = they stay
    silent). ``hangup_after_message``: hang up right after speaking the message (instead of
    waiting silently for the recording to time out). ``talk_s``: once connected to an agent, stay
    this long, then hang up (``None`` = until the other side ends it). ``press`` /
    ``press_after_s``: keys pressed at an IVR prompt (``None`` = silence).
    """

    hangup_after_s: float | None = None
    message_s: float | None = None
    hangup_after_message: bool = False
    talk_s: float | None = None
    press: str | None = None
    press_after_s: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PartyScript = AgentScript | LeadScript


def number_key(raw: str) -> str:
    """The key a phone number is filed under: its digits, with a NANP leading ``1`` dropped.

    ``+1 (415) 555-0111``, ``14155550111`` and ``4155550111`` share one key; SIP URIs are kept
    (lower-cased).

    >>> number_key("+1 (415) 555-0111")
    '4155550111'
    >>> number_key("sip:Alice@phone.plivo.com")
    'sip:alice@phone.plivo.com'
    """
    text = raw.strip()
    if text.lower().startswith("sip:"):
        return text.lower()
    digits = _NON_DIGITS.sub("", text)
    if len(digits) == 11 and digits.startswith("1"):
        return digits[1:]
    return digits


# --- parsing from dicts -------------------------------------------------------------------


def _read(
    data: object, cls: type[AgentScript] | type[LeadScript], prefix: str
) -> tuple[dict[str, Any], list[str]]:
    problems: list[str] = []
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    if not isinstance(data, Mapping):
        return values, [f"{prefix}: must be an object/table, got {type(data).__name__}"]
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        spec = known.get(key)
        if spec is None:
            problems.append(f"{name}: unknown key")
            continue
        kind = str(spec.type)
        if kind == "bool":
            if not isinstance(value, bool):
                problems.append(f"{name}: must be true or false, got {value!r}")
                continue
        elif "float" in kind:
            if value is None and "None" in kind:
                pass
            elif isinstance(value, bool) or not isinstance(value, int | float):
                problems.append(f"{name}: must be a number, got {value!r}")
                continue
            elif value < 0:
                problems.append(f"{name}: must be >= 0, got {value!r}")
                continue
            else:
                value = float(value)
        elif "str" in kind:
            if value is None or value == "":
                value = None
            elif isinstance(value, int) and not isinstance(value, bool):
                value = str(value)  # press = 1 in TOML
            if value is not None and (not isinstance(value, str) or not _KEYS.match(value)):
                problems.append(
                    f"{name}: must be keys 0-9 * # (or null for silence), got {value!r}"
                )
                continue
        values[key] = value
    return values, problems


def agent_script_from_dict(data: object, *, prefix: str = "") -> AgentScript:
    """Build an :class:`AgentScript` from a dict (unknown keys and bad values are errors).

    Raises:
        ScriptError: listing every problem.
    """
    values, problems = _read(data, AgentScript, prefix)
    outcomes = [k for k in ("no_answer", "busy", "fail") if values.get(k)]
    if len(outcomes) > 1:
        problems.append(f"{prefix or 'script'}: at most one of {', '.join(outcomes)} may be true")
    if problems:
        raise ScriptError(problems)
    return AgentScript(**values)


def lead_script_from_dict(data: object, *, prefix: str = "") -> LeadScript:
    """Build a :class:`LeadScript` from a dict (unknown keys and bad values are errors).

    Raises:
        ScriptError: listing every problem.
    """
    values, problems = _read(data, LeadScript, prefix)
    if problems:
        raise ScriptError(problems)
    return LeadScript(**values)


class ScriptBook:
    """Agent scripts by phone number, with a default for numbers nobody registered."""

    def __init__(
        self, default: AgentScript | None = None, scripts: Mapping[str, AgentScript] | None = None
    ) -> None:
        self.default = default or AgentScript()
        self._scripts: dict[str, AgentScript] = {}
        for number, script in (scripts or {}).items():
            self.set(number, script)

    def set(self, number: str, script: AgentScript) -> None:
        self._scripts[number_key(number)] = script

    def remove(self, number: str) -> None:
        self._scripts.pop(number_key(number), None)

    def clear(self) -> None:
        self._scripts.clear()

    def for_number(self, number: str) -> AgentScript:
        return self._scripts.get(number_key(number), self.default)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {number: script.to_dict() for number, script in sorted(self._scripts.items())}
