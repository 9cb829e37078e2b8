"""Two processes for the tests that need them: two apps on one database and the real Redis."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

import app as app_package
from app import create_app
from app.lib.clock import FrozenClock
from app.realtime.redis_broker import RedisBroker
from tests.conftest import FAST_HASHING

REDIS_URL = os.environ.get("MEDCHAT_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="MEDCHAT_TEST_REDIS_URL is not set")
# quart-rate-limiter's RedisStore (the login limit) closes its client with redis-py's deprecated
# close() when the app stops; not ours to fix here.
quiet_login_store = pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")


@pytest.fixture
async def two_processes(
    tmp_path: Path, sqlite_template: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Quart, Quart]]:
    """Two apps (two processes) on one SQLite file, one Redis key prefix and one channel."""
    assert REDIS_URL
    db = tmp_path / "medchat.db"
    shutil.copy(sqlite_template, db)
    unique = uuid.uuid4().hex
    channel = f"medchat:test:{unique}"
    monkeypatch.setattr(app_package, "_make_broker", lambda settings: RedisBroker(settings.redis_url, channel))
    monkeypatch.setenv("MEDCHAT_INSTANCE_PATH", str(tmp_path / "instance"))
    config: dict[str, Any] = {
        "TESTING": True, "SECRET_KEY": "test-secret-" + "x" * 40, "DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "CLOCK": clock, "PASSWORD_HASHING": FAST_HASHING, "MIGRATE_ON_START": False, "PRESENCE_BATCH_SECONDS": 0,
        "REDIS_URL": REDIS_URL, "RATE_LIMIT_KEY_PREFIX": f"medchat:test:{unique}", "WS_HANDSHAKES_PER_MINUTE": 3,
    }
    async with AsyncExitStack() as stack:
        apps = []
        for _ in range(2):
            served = await stack.enter_async_context(create_app(config).test_app())
            apps.append(served.app)  # type: ignore[attr-defined]
        yield apps[0], apps[1]
