"""Ids that arrive as text (query strings, form fields, URL paths): one parser for every door.

``str.isdigit()`` is true for "²" (which ``int()`` then refuses: a 500) and ``int()`` takes
"٣", " 1", "+1" and "1_0". An id from outside is plain ASCII decimal digits, nothing else,
and fits the database's 64-bit integer.
"""

from __future__ import annotations

import re

MAX_ID = 2**63 - 1
_DIGITS = re.compile(r"[0-9]+")  # not \d: that matches every script's digits
_MAX_DIGITS = len(str(MAX_ID))


class IdError(ValueError):
    """The text is not an id."""


def _digits(raw: str) -> str | None:
    """``raw`` without leading zeros if it is ASCII decimal digits only, else None."""
    if not _DIGITS.fullmatch(raw):
        return None
    return raw.lstrip("0") or "0"


def parse_id(raw: str, *, minimum: int = 1) -> int:
    """Return the id ``raw`` spells, or raise ``IdError``.

    Only ASCII digits (leading zeros allowed), from ``minimum`` up to ``MAX_ID``.
    """
    digits = _digits(raw)
    if digits is None or len(digits) > _MAX_DIGITS:
        raise IdError("not an id")
    value = int(digits)
    if value < minimum or value > MAX_ID:
        raise IdError("not an id")
    return value


def parse_position(raw: str) -> int | None:
    """Return a stream position to resume after (``?after=N``), or None if ``raw`` is none.

    Zero is a position (from the start). A number beyond every id means "after the last
    one": the largest id, so nothing is missed and nothing overflows.
    """
    digits = _digits(raw)
    if digits is None:
        return None
    return MAX_ID if len(digits) > _MAX_DIGITS else min(int(digits), MAX_ID)
