"""The optional per-campaign IVR question (docs/contract.md §8). Pure: no I/O, no trio.

One question before routing ("press 1 for purchase, 2 for refinance ..."): a key maps to a
``plantype`` (sent in Step 1, said in the whisper) or to a redirect (the lead is forwarded to a
fixed number and not routed). Keys outside the menu are ignored by the carrier (``validDigits``)
and the question is asked again, ``retries`` times; silence to the end means the campaign's
own plantype.

Config (a ``[campaigns.ivr]`` table)::

    [campaigns.ivr]
    prompt = "Press 1 for a purchase, 2 for a refinance, 0 to speak to our office."
    plantypes = { "1" = "Purchase", "2" = "Refinance" }
    redirects = { "0" = "8005550199" }
    retries = 2        # times the question is asked again after silence
    timeout_s = 5.0    # seconds to wait for a key each time
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import Problem
from orchestrator.numbers import to_nanp10

KEYS = "0123456789*#"
PLANTYPE_MAX = 20


@dataclass(frozen=True, slots=True)
class IvrMenu:
    prompt: str
    plantypes: Mapping[str, str] = field(default_factory=dict)
    redirects: Mapping[str, str] = field(default_factory=dict)  # key -> 10-digit number
    retries: int = 2
    timeout_s: float = 5.0

    @property
    def keys(self) -> str:
        """The keys the carrier accepts, in key order."""
        chosen = set(self.plantypes) | set(self.redirects)
        return "".join(k for k in KEYS if k in chosen)


@dataclass(frozen=True, slots=True)
class IvrChoice:
    """What the lead chose: a plantype to route with, or a number to be forwarded to."""

    plantype: str
    redirect_to: str = ""
    key: str = ""


def choose(menu: IvrMenu, digits: str, default_plantype: str) -> IvrChoice:
    """The lead pressed ``digits`` (empty: silence to the end)."""
    key = digits[:1]
    if key in menu.redirects:
        return IvrChoice(default_plantype, redirect_to=menu.redirects[key], key=key)
    if key in menu.plantypes:
        return IvrChoice(menu.plantypes[key], key=key)
    return IvrChoice(default_plantype)


def parse_menu(raw: Any, prefix: str, problems: list[Problem]) -> IvrMenu | None:
    """Read a campaign's ``ivr`` table, adding every problem (naming its key) to ``problems``."""
    if not isinstance(raw, dict):
        problems.append(Problem(prefix, "must be a table"))
        return None
    before = len(problems)
    known = {"prompt", "plantypes", "redirects", "retries", "timeout_s"}
    for key in raw:
        if key not in known:
            problems.append(Problem(f"{prefix}.{key}", "unknown key"))
    prompt = raw.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        problems.append(Problem(f"{prefix}.prompt", "required: the question the lead hears"))
    plantypes = _key_table(raw.get("plantypes", {}), f"{prefix}.plantypes", problems)
    redirects = _key_table(raw.get("redirects", {}), f"{prefix}.redirects", problems)
    for key, value in plantypes.items():
        if not value.strip() or len(value) > PLANTYPE_MAX:
            problems.append(
                Problem(
                    f"{prefix}.plantypes.{key}",
                    f"must be 1-{PLANTYPE_MAX} characters, got {value!r}",
                )
            )
    for key, value in redirects.items():
        if to_nanp10(value) != value:
            problems.append(
                Problem(f"{prefix}.redirects.{key}", f"must be 10 digits, got {value!r}")
            )
        if key in plantypes:
            problems.append(
                Problem(
                    f"{prefix}.redirects.{key}", "key is also in plantypes: it must mean one thing"
                )
            )
    if not plantypes and not redirects:
        problems.append(Problem(prefix, "needs at least one key in plantypes or redirects"))
    retries = raw.get("retries", 2)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 5:
        problems.append(Problem(f"{prefix}.retries", f"must be an integer 0-5, got {retries!r}"))
    timeout = raw.get("timeout_s", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 1 <= timeout <= 60:
        problems.append(Problem(f"{prefix}.timeout_s", f"must be 1-60 seconds, got {timeout!r}"))
    if len(problems) > before or not isinstance(prompt, str):
        return None
    return IvrMenu(prompt, plantypes, redirects, retries, float(timeout))


def _key_table(raw: Any, prefix: str, problems: list[Problem]) -> dict[str, str]:
    if not isinstance(raw, dict):
        problems.append(Problem(prefix, "must be a table of key = value"))
        return {}
    table: dict[str, str] = {}
    for key, value in raw.items():
        if len(key) != 1 or key not in KEYS:
            problems.append(Problem(f"{prefix}.{key}", f"keys are one of {KEYS}"))
        elif not isinstance(value, str):
            problems.append(Problem(f"{prefix}.{key}", "must be a string"))
        else:
            table[key] = value
    return table
