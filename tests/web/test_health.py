"""GET /healthz: 200 with the database answering, 503 when it does not."""

from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from app import create_app
from tests.support import Client

pytestmark = pytest.mark.usefixtures("database_kind")


async def test_healthz_ok(client: Client) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.mimetype == "application/json"
    assert await r.get_json() == {"status": "ok", "database": "ok"}
    assert "no-store" in r.headers["Cache-Control"]


async def test_healthz_needs_no_login_and_sets_no_session(client: Client) -> None:
    r = await client.get("/healthz")
    assert not any("medchat_session" in c for c in r.headers.get_all("Set-Cookie"))


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://medchat:nothing@127.0.0.1:1/medchat",
        "sqlite+aiosqlite:///{tmp}/gone/medchat.db",
    ],
    ids=["postgresql-closed-port", "sqlite-vanished-folder"],
)
async def test_healthz_503_when_the_database_is_unreachable(app_config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("MEDCHAT_INSTANCE_PATH", str(tmp_path / "instance"))
    application = create_app({**app_config, "DATABASE_URL": url.format(tmp=tmp_path)})
    if url.startswith("sqlite"):
        # The engine made the folder (and the empty database file, 0600); take them away so
        # the file cannot be opened.
        shutil.rmtree(tmp_path / "gone")
    before = set(threading.enumerate())
    async with application.test_app() as test_app:
        r = await test_app.test_client().get("/healthz", scheme="https")
        assert r.status_code == 503
        assert await r.get_json() == {"status": "unavailable", "database": "unreachable"}
    # aiosqlite stops the worker thread of a failed connection without waiting for it; if this
    # test's event loop closed first, the thread's hand-back would raise "Event loop is
    # closed" in a later test. Wait for this test's worker threads while the loop is alive.
    for thread in set(threading.enumerate()) - before:
        if "_connection_worker_thread" in thread.name:
            await asyncio.to_thread(thread.join, 5)
            assert not thread.is_alive()
