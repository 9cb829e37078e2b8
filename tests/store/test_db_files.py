"""The SQLite database file and its -wal/-shm companions are the service user's alone (0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import text

from app.store.db import Database


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_database_file_is_created_0600(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        db = Database(f"sqlite+aiosqlite:///{tmp_path}/new/medchat.db")
        try:
            async with db.transaction() as s:
                await s.execute(text("CREATE TABLE t (x INTEGER)"))
            files = {p.name: mode(p) for p in (tmp_path / "new").iterdir()}
        finally:
            await db.dispose()
    finally:
        os.umask(old)
    assert {"medchat.db", "medchat.db-wal", "medchat.db-shm"} <= set(files), files
    assert set(files.values()) == {0o600}, files
    assert mode(tmp_path / "new") == 0o700


async def test_connecting_makes_an_open_database_file_private(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    path.write_bytes(b"")
    os.chmod(path, 0o644)
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.reading() as s:
            await s.execute(text("SELECT 1"))
        assert mode(path) == 0o600
    finally:
        await db.dispose()
