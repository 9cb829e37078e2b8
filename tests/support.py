"""Test support shared by conftest.py and the test modules: the client wrapper, the
password every test account uses, and PostgreSQL helpers. (Test modules import from here,
never from ``conftest``, which pytest imports under its own name.)"""

from __future__ import annotations

import os
import re
from typing import Any

from quart import Quart
from quart.typing import TestClientProtocol

PASSWORD = "correct horse battery staple"
PG_URL = os.environ.get("MEDCHAT_TEST_DATABASE_URL")


def _pg_admin(url: str) -> tuple[str, str]:
    """Split a PostgreSQL URL into (server URL without database, database name)."""
    base, _, name = url.rpartition("/")
    return base, name


async def _pg_exec(url: str, *statements: str) -> None:
    import asyncpg

    raw = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(raw)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


class Client:
    """Quart's test client, always over https (Secure cookies), with form helpers."""

    def __init__(self, app: Quart) -> None:
        self.app = app
        self.raw: TestClientProtocol = app.test_client()

    async def get(self, path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("scheme", "https")
        return await self.raw.get(path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("scheme", "https")
        return await self.raw.post(path, **kwargs)

    async def csrf(self, path: str = "/login") -> str:
        """Fetch a page and return the CSRF token its first form carries."""
        response = await self.get(path)
        html = await response.get_data(as_text=True)
        match = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert match, f"no csrf_token on {path}"
        return match.group(1)

    async def submit(self, path: str, data: dict[str, Any] | None = None, *, page: str | None = None, **kwargs: Any) -> Any:
        """POST a form the way a browser would: with the token of ``page`` (default /chats)."""
        token = await self.csrf(page or "/chats")
        form = dict(data or {})
        form.setdefault("csrf_token", token)
        # A list value is a repeated field (``members=a&members=b``), as a browser sends it.
        pairs = [(k, item) for k, v in form.items() for item in (v if isinstance(v, list | tuple) else [v])]
        return await self.post(path, form=pairs, **kwargs)

    async def login(self, username: str, password: str = PASSWORD) -> Any:
        return await self.submit("/login", {"username": username, "password": password}, page="/login")
