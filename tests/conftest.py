"""Fixtures: ``app`` (its own database each test), ``client``, ``login_as``, ``clock``, ``events``.

The suite runs on SQLite always and on PostgreSQL when MEDCHAT_TEST_DATABASE_URL is set
(a URL to an existing server and database the tests may use to create others).
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import CodeType
from typing import Any

import pytest
from jinja2.bccache import Bucket, BytecodeCache
from quart import Quart
from werkzeug.routing import Rule

from app import create_app
from app.actions.accounts import StaffFields, create_user_with_password
from app.lib.clock import FrozenClock
from app.lib.passwords import PasswordHashing
from app.realtime.events import Event
from app.services import Services
from app.store.db import Database
from app.store.models import Base
from tests.support import PASSWORD, PG_URL, Client, _pg_admin, _pg_exec

# argon2id at its real cost (m=19 MiB, t=2) takes ~60 ms a hash here; every test creates
# and logs in several people. Tests hash cheaply; tests/test_config.py,
# tests/actions/test_accounts_actions.py and tests/test_cli.py prove the production cost, and
# that only a TESTING dict may hand in a hasher (app/config.py).
FAST_HASHING = PasswordHashing(memory_kib=8, time_cost=1, parallelism=1)


class _SharedTemplateCode(BytecodeCache):
    """Compiled templates shared by every app of the run (Jinja's bytecode cache API).

    Each test builds its own app, so its own Jinja environment, which compiled every template
    it rendered again (builtins.compile was the top entry of a web test module's profile).
    The code is keyed by template and checked against the source's checksum, so an edited
    template is compiled afresh.
    """

    def __init__(self) -> None:
        self.code: dict[str, tuple[str, CodeType]] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        found = self.code.get(bucket.key)
        if found is not None and found[0] == bucket.checksum:
            bucket.code = found[1]

    def dump_bytecode(self, bucket: Bucket) -> None:
        if bucket.code is not None:
            self.code[bucket.key] = (bucket.checksum, bucket.code)


TEMPLATE_CODE = _SharedTemplateCode()


def _share_url_builders() -> None:
    """Reuse werkzeug's generated URL builder functions across the run's apps.

    Werkzeug generates and compiles two small Python functions per route each time a rule
    is bound to a URL map, ~100 routes per app: a third of ``create_app``. A builder
    depends only on the rule's parts, its defaults and which builder it is; it reads the
    rule's converters through ``self`` when called, so one function serves every app.
    """
    original = Rule._compile_builder
    builders: dict[Any, Any] = {}

    def compile_builder(self: Rule, append_unknown: bool = True) -> Any:
        key = (tuple(self._trace), repr(sorted((self.defaults or {}).items())), append_unknown,
               tuple(sorted((name, type(c)) for name, c in self._converters.items())))
        builder = builders.get(key)
        if builder is None:
            builder = builders[key] = original(self, append_unknown)
        return builder

    Rule._compile_builder = compile_builder  # type: ignore[method-assign]


_share_url_builders()


@functools.cache
def _drives_a_browser(module: Path) -> bool:
    """Whether an end-to-end module uses Chromium (names the ``browser`` fixture)."""
    try:
        return re.search(r"\bbrowser\b", module.read_text()) is not None
    except OSError:
        return True


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """How ``./test.sh`` (two pytest-xdist workers) shares the tests out.

    The end-to-end modules that drive Chromium run one after another on one worker, as
    they were written to (one browser at a time, their timing), and start first: they are
    the longest part. Every other end-to-end module runs whole on one worker (its
    module-scoped server). The in-process tests go one by one to whichever worker is free.
    An explicit ``--dist`` other than the default "load" is left alone.
    """
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    root = config.rootpath

    class BrowsersOnOneWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if not nodeid.startswith("tests/e2e/"):
                return nodeid
            module = nodeid.split("::", 1)[0]
            return "tests/e2e (Chromium)" if _drives_a_browser(root / module) else module

    return BrowsersOnOneWorker(config, log)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_kind" in metafunc.fixturenames:
        kinds = ["sqlite"] + (["postgresql"] if PG_URL else [])
        metafunc.parametrize("database_kind", kinds, scope="session")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once; each test copies it."""
    path = tmp_path_factory.mktemp("template") / "medchat.db"
    db = Database(f"sqlite+aiosqlite:///{path}")

    async def build() -> None:
        await db.upgrade_to_head()
        await db.dispose()

    asyncio.run(build())
    return path


@pytest.fixture(scope="session")
def pg_database() -> Any:
    """This process's PostgreSQL database, migrated to head once; emptied before each test.

    Emptying the tables of a small database takes ~20 ms; cloning a template database took
    ~0.3 s a test. Each pytest-xdist worker has its own (the name carries the process id).
    """
    if not PG_URL:
        yield None
        return
    base, _ = _pg_admin(PG_URL)
    name = f"medchat_w_{os.getpid()}"

    async def build() -> None:
        await _pg_exec(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
        db = Database(f"{base}/{name}")
        await db.upgrade_to_head()
        await db.dispose()

    asyncio.run(build())
    yield f"{base}/{name}"
    asyncio.run(_pg_exec(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# Every table the migrations make, but alembic's own: what a test may have written.
_PG_RESET = (
    # What an earlier test left connected (an app's pool, a held lock) is ended first, as
    # DROP DATABASE ... WITH (FORCE) would.
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()",
    "TRUNCATE " + ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables) + " RESTART IDENTITY CASCADE",
)


@pytest.fixture
def database_url(database_kind: str, request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Any:
    """Every test that builds an app runs on SQLite, and on PostgreSQL when it is configured:
    a copy of a migrated SQLite file, or this process's PostgreSQL database emptied (data and
    id sequences) and so as freshly migrated."""
    if database_kind == "sqlite":
        target = tmp_path / "medchat.db"
        shutil.copy(sqlite_template, target)
        return f"sqlite+aiosqlite:///{target}"
    url = request.getfixturevalue("pg_database")
    assert url
    asyncio.run(_pg_exec(url, *_PG_RESET))
    return url


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def app_config(tmp_path: Path, database_url: str, clock: FrozenClock) -> dict[str, Any]:
    """The dict handed to create_app; a test may change it before asking for ``app``."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-" + "x" * 40,
        "DATABASE_URL": database_url,
        "CLOCK": clock,
        "RECORD_EVENTS": True,
        "PASSWORD_HASHING": FAST_HASHING,
        "MIGRATE_ON_START": False,
        # Presence frames at once, so tests need not wait for a batch (tests/realtime/test_hub.py
        # covers batching).
        "PRESENCE_BATCH_SECONDS": 0,
        # Heartbeats at whole intervals from each socket's start, so tests can count them
        # (tests/ws/test_heartbeat.py covers the spread).
        "WS_HEARTBEAT_SPREAD": 0,
        # A heartbeat's session re-check is answered at the next turn of the loop.
        "WS_SESSION_CHECK_BATCH_SECONDS": 0,
        # The login limit tests count to 11.
        "LOGIN_RATE_LIMIT": 10,
    }


@pytest.fixture
async def app(app_config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Quart]:
    monkeypatch.setenv("MEDCHAT_INSTANCE_PATH", str(tmp_path / "instance"))
    application = create_app(app_config)
    application.jinja_env.bytecode_cache = TEMPLATE_CODE
    async with application.test_app() as test_app:
        yield test_app.app  # type: ignore[misc]


@pytest.fixture
def svc(app: Quart) -> Services:
    services: Services = app.extensions["medchat"]
    return services


@pytest.fixture
def events(svc: Services) -> list[Event]:
    """What actions published during the test (cleared at the start)."""
    svc.published.clear()
    return svc.published


@pytest.fixture
def client(app: Quart) -> Client:
    return Client(app)


@pytest.fixture
def make_user(svc: Services) -> Callable[..., Awaitable[Any]]:
    async def make(username: str, display_name: str | None = None, *, admin: bool = False, department: str = "Cardiology", job_title: str = "Nurse", password: str = PASSWORD) -> Any:
        fields = StaffFields(username, display_name or username.title(), department, job_title, "admin" if admin else "member")
        return await create_user_with_password(svc, fields, password)

    return make


@pytest.fixture
def login_as(app: Quart, make_user: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Client]]:
    """Create (if needed) and log in a user in a fresh client; return the client."""

    async def login(username: str, *, admin: bool = False, display_name: str | None = None) -> Client:
        from app.actions.accounts import get_staff  # noqa: F401

        svc_: Services = app.extensions["medchat"]
        async with svc_.db.reading() as s:
            from app.store.staff import user_row_by_username

            exists = await user_row_by_username(s, username) is not None
        if not exists:
            await make_user(username, display_name, admin=admin)
        c = Client(app)
        response = await c.login(username)
        assert response.status_code == 303, await response.get_data(as_text=True)
        return c

    return login
