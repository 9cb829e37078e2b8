"""Placeholder replaced by the real-time work."""

from __future__ import annotations

from quart import Quart


def register(app: Quart) -> None:
    return None
