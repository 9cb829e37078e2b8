"""Alembic migrations: an empty database reaches head, a second run changes nothing,
and head matches the models (no model change without a migration)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from app.store.db import Database, alembic_config
from app.store.models import Base
from tests.support import PG_URL, _pg_admin, _pg_exec

TABLES = {"users", "sessions", "conversations", "memberships", "messages", "invites", "audit_log"}


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        path = tmp_path / "empty.db"
        path.touch()  # an empty file, as a first start finds it
        db = Database(f"sqlite+aiosqlite:///{path}")
        yield db
        await db.dispose()
        return
    if not PG_URL:
        pytest.skip("MEDCHAT_TEST_DATABASE_URL not set")
    base, _ = _pg_admin(PG_URL)
    name = "medchat_mig_" + uuid.uuid4().hex[:10]
    await _pg_exec(PG_URL, f'CREATE DATABASE "{name}"')
    db = Database(f"{base}/{name}")
    yield db
    await db.dispose()
    await _pg_exec(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _schema(conn: Connection) -> dict[str, Any]:
    insp = inspect(conn)
    return {
        t: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(t)],
            sorted(str(i) for i in insp.get_indexes(t)),
            sorted(str(u) for u in insp.get_unique_constraints(t)),
        )
        for t in sorted(insp.get_table_names())
    }


def _head() -> str:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"migrations have several heads: {heads}"
    return heads[0]


async def _version(db: Database) -> str:
    async with db.engine.connect() as conn:
        return str((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one())


async def test_upgrade_creates_the_tables(empty_db: Database) -> None:
    async with empty_db.engine.connect() as conn:
        assert await conn.run_sync(_tables) == set()
    await empty_db.upgrade_to_head()
    async with empty_db.engine.connect() as conn:
        assert TABLES | {"alembic_version"} <= await conn.run_sync(_tables)
    assert await _version(empty_db) == _head()


async def test_second_upgrade_is_a_no_op(empty_db: Database) -> None:
    await empty_db.upgrade_to_head()
    async with empty_db.engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO users (username, display_name, department, job_title, role, active, failed_logins, created_at) "
            "VALUES ('keep', 'Keep Me', '', '', 'member', true, 0, CURRENT_TIMESTAMP)"
        ))
        before = await conn.run_sync(_schema)
    await empty_db.upgrade_to_head()
    async with empty_db.engine.connect() as conn:
        assert await conn.run_sync(_schema) == before
        assert (await conn.execute(text("SELECT display_name FROM users WHERE username = 'keep'"))).scalar_one() == "Keep Me"
    assert await _version(empty_db) == _head()


async def test_head_matches_the_models(empty_db: Database) -> None:
    await empty_db.upgrade_to_head()

    def diff(conn: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))

    async with empty_db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/p.db")
    try:
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
    finally:
        await db.dispose()
