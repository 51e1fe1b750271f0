"""Colours for the tail views: plain ANSI SGR codes, or none at all.

A :class:`Palette` is a bag of escape strings; :data:`PLAIN` has empty ones, so the
formatters never branch on "colour or not". Colour goes by level (warnings yellow, errors
red) and by event family (``call.*``, ``leg.*``, ``tier.*``...), carrier-simulator lines dim.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RESET = "\x1b[0m"


def _sgr(*codes: int) -> str:
    return f"\x1b[{';'.join(str(c) for c in codes)}m"


_FAMILY_COLOURS: dict[str, str] = {
    "call": _sgr(1, 36),  # bold cyan: the call's own milestones
    "step1": _sgr(35),  # magenta: the customer's side
    "plan": _sgr(35),
    "outcome": _sgr(35),
    "ivr": _sgr(35),
    "tier": _sgr(1, 34),  # bold blue
    "leg": _sgr(34),  # blue
    "sim": _sgr(2),  # dim: the carrier simulator
}
_LEVEL_COLOURS: dict[str, str] = {
    "debug": _sgr(2),
    "info": _sgr(32),
    "warning": _sgr(1, 33),
    "error": _sgr(1, 31),
    "critical": _sgr(1, 37, 41),
}


@dataclass(frozen=True, slots=True)
class Palette:
    """Escape codes; all empty in :data:`PLAIN`."""

    reset: str = ""
    dim: str = ""
    bold: str = ""
    key: str = ""  # the ``key=`` of a field
    families: dict[str, str] = field(default_factory=dict)
    levels: dict[str, str] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.reset)

    def level(self, level: str) -> str:
        return self.levels.get(level, "")

    def event(self, event: str, level: str) -> str:
        """The colour of an event name: errors and warnings win over the family colour."""
        if level in ("error", "critical", "warning"):
            return self.levels.get(level, "")
        return self.families.get(event.partition(".")[0], "")

    def paint(self, text: str, colour: str) -> str:
        return f"{colour}{text}{self.reset}" if colour else text


PLAIN = Palette()
ANSI = Palette(
    reset=RESET,
    dim=_sgr(2),
    bold=_sgr(1),
    key=_sgr(2),
    families=_FAMILY_COLOURS,
    levels=_LEVEL_COLOURS,
)


def choose_palette(mode: str, *, is_tty: bool, no_color: bool) -> Palette:
    """``--color``: ``always``, ``never``, or ``auto`` (colour on a TTY unless NO_COLOR)."""
    if mode == "always":
        return ANSI
    if mode == "never":
        return PLAIN
    return ANSI if is_tty and not no_color else PLAIN
