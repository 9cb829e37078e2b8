"""The one rule for usernames, shared by every door, action and query."""

from __future__ import annotations

import re

# 2 to 64 characters: lower-case letters, digits, dot, dash or underscore; a letter or digit first.
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")


def normal_username(raw: str) -> str:
    """The username as stored: trimmed and lower-cased (it may still be invalid)."""
    return raw.strip().lower()


def is_username(name: str) -> bool:
    """Tell whether ``name`` (already normalised) is a possible username. Anything else
    (NUL, control characters, spaces, overlong text) names nobody and never reaches SQL."""
    return USERNAME.fullmatch(name) is not None
