"""Two processes for the tests that need them: two apps on one database and the real Redis.

``two_processes`` shares a SQLite file; ``two_processes_each_database`` runs on SQLite and,
when MEDCHAT_TEST_DATABASE_URL is set, on PostgreSQL too (tests/conftest.py ``database_url``:
this worker's PostgreSQL database, emptied for the test).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

import app as app_package
from app import create_app
from app.lib.clock import FrozenClock
from app.realtime.redis_broker import RedisBroker
from tests.conftest import FAST_HASHING, TEMPLATE_CODE

REDIS_URL = os.environ.get("MEDCHAT_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="MEDCHAT_TEST_REDIS_URL is not set")
# quart-rate-limiter's RedisStore (the login limit) closes its client with redis-py's deprecated
# close() when the app stops; not ours to fix here.
quiet_login_store = pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")


@asynccontextmanager
async def _serve_two(
    database_url: str, tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch, **extra: Any
) -> AsyncIterator[tuple[Quart, Quart]]:
    """Two apps (two processes) on ``database_url``, one Redis key prefix and one channel of
    their own (parallel runs never meet)."""
    assert REDIS_URL
    unique = uuid.uuid4().hex
    channel = f"medchat:test:{unique}"
    monkeypatch.setattr(app_package, "_make_broker", lambda settings: RedisBroker(settings.redis_url, channel))
    monkeypatch.setenv("MEDCHAT_INSTANCE_PATH", str(tmp_path / "instance"))
    config: dict[str, Any] = {
        "TESTING": True, "SECRET_KEY": "test-secret-" + "x" * 40, "DATABASE_URL": database_url,
        "CLOCK": clock, "PASSWORD_HASHING": FAST_HASHING, "MIGRATE_ON_START": False, "PRESENCE_BATCH_SECONDS": 0,
        "REDIS_URL": REDIS_URL, "RATE_LIMIT_KEY_PREFIX": f"medchat:test:{unique}", "WS_HANDSHAKES_PER_MINUTE": 3,
        **extra,
    }
    async with AsyncExitStack() as stack:
        apps = []
        for _ in range(2):
            application = create_app(config)
            application.jinja_env.bytecode_cache = TEMPLATE_CODE
            served = await stack.enter_async_context(application.test_app())
            apps.append(served.app)  # type: ignore[attr-defined]
        yield apps[0], apps[1]


@pytest.fixture
async def two_processes(
    tmp_path: Path, sqlite_template: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Quart, Quart]]:
    """Two apps (two processes) on one SQLite file, one Redis key prefix and one channel."""
    db = tmp_path / "medchat.db"
    shutil.copy(sqlite_template, db)
    async with _serve_two(f"sqlite+aiosqlite:///{db}", tmp_path, clock, monkeypatch) as apps:
        yield apps


@pytest.fixture
async def two_processes_each_database(
    database_url: str, tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Quart, Quart]]:
    """``two_processes`` on every configured database (SQLite, and PostgreSQL when set), with
    the handshake and message limits out of the way (they have their own tests)."""
    async with _serve_two(
        database_url, tmp_path, clock, monkeypatch,
        WS_HANDSHAKES_PER_MINUTE=10_000, MESSAGE_BURST=10_000, MESSAGE_RATE=10_000,
    ) as apps:
        yield apps
