"""One-time tokens never reach Hypercorn's access log (app/ws/access_log.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypercorn.config import Config
from hypercorn.logging import Logger

from app.ws.access_log import redact_access_log, redact_tokens


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("GET /invite/AbC-123_xyz HTTP/1.1", "GET /invite/[redacted] HTTP/1.1"),
        ("/setup/tok3n", "/setup/[redacted]"),
        ("/invite/tok?next=/chats", "/invite/[redacted]?next=/chats"),
        ("/invite/tok/extra", "/invite/[redacted]/extra"),
        ("https://medchat.example/INVITE/tok#x", "https://medchat.example/INVITE/[redacted]#x"),
        ("/login?next=%2Finvite%2Ftok3n&x=1", "/login?next=%2Finvite%2F[redacted]&x=1"),
        ("/invite/a /setup/b", "/invite/[redacted] /setup/[redacted]"),
        ("/chats/12 /invites /invite/", "/chats/12 /invites /invite/"),
    ],
)
def test_redact_tokens(line: str, expected: str) -> None:
    assert redact_tokens(line) == expected


def test_every_access_log_atom_is_redacted(app: Any) -> None:
    assert redact_access_log()
    scope: Any = {
        "type": "http", "http_version": "2", "method": "GET", "scheme": "https", "path": "/invite/s3cret",
        "query_string": b"a=/setup/other", "client": ("127.0.0.1", 5000),
        "headers": [(b"referer", b"https://x/invite/s3cret"), (b"user-agent", b"ua")],
    }
    atoms = Logger(Config()).atoms(scope, {"status": 200, "headers": []}, 0.01)  # type: ignore[arg-type]
    for key in ("r", "R", "U", "Uq", "q", "f", "{referer}i"):
        assert "s3cret" not in atoms[key] and "other" not in atoms[key], (key, atoms[key])
    assert atoms["U"] == "/invite/[redacted]"
