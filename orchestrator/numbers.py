"""Phone numbers at the edge: 10-digit NANP inside, ``1`` + 10 digits towards the carrier.

Pure functions, no I/O (docs/contract.md §9).
"""

from __future__ import annotations

import re

_NON_DIGITS = re.compile(r"\D")


def to_nanp10(raw: str) -> str | None:
    """Return the 10-digit NANP form of ``raw``, or ``None`` if it is not a NANP number.

    Punctuation and spaces are removed; a leading ``+1``/``1`` on 11 digits is dropped.

    >>> to_nanp10("+1 (949) 265-1111")
    '9492651111'
    >>> to_nanp10("12345") is None
    True
    """
    digits = _NON_DIGITS.sub("", raw or "")
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10:
        return None
    return digits


def to_carrier(nanp10: str) -> str:
    """E.164 without ``+`` as Plivo writes it: ``1`` + 10 digits."""
    return "1" + nanp10
