"""The /ws endpoint (issue: real time)."""

from __future__ import annotations

from quart import Quart


def register_ws(app: Quart) -> None:
    from app.ws.endpoint import register

    register(app)
