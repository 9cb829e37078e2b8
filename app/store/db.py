"""The engine, short-lived sessions, migrations and the health check."""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event, insert, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.lib.errors import Unavailable
from app.lib.private_files import create_private_file, make_private, make_private_folder

MIGRATIONS = Path(__file__).parent / "migrations"

# The session type, for the actions' hints: they pass sessions through to store functions
# and never use SQLAlchemy themselves.
Session = AsyncSession


# How long a SQLite writer waits for its turn in this process (as busy_timeout, 10 s).
WRITE_TURN_SECONDS = 10.0


class Conflict(Exception):
    """A write broke a unique constraint (a concurrent request wrote the same row first);
    the transaction was rolled back."""


async def insert_returning(conn: AsyncConnection, table: Any, returned: Any, keys: list[Any], rows: list[dict[str, Any]]) -> list[Any]:
    """Insert ``rows`` in one multi-row INSERT and return the ``returned`` column (a
    generated id or position) of each, in the rows' order.

    PostgreSQL does it with SQLAlchemy's ``sort_by_parameter_order`` (one INSERT ... SELECT
    ... ORDER BY). On SQLite SQLAlchemy can only keep that order one row per statement (a
    trip to aiosqlite's thread each: thousands a second under a ward's receipts), and
    SQLite's RETURNING order is documented as arbitrary; so the rows go in one statement and
    come back matched on ``keys``, which must tell the rows apart."""
    if not rows:
        return []
    if conn.dialect.name == "postgresql":
        result = await conn.execute(insert(table).returning(returned, sort_by_parameter_order=True), rows)
        return list(result.scalars())
    names = [k.name for k in keys]
    wanted = [tuple(row.get(n) for n in names) for row in rows]
    if len(set(wanted)) != len(wanted):
        raise ValueError(f"rows for {table.name} are not told apart by {names}")
    result = await conn.execute(insert(table).returning(returned, *keys), rows)
    found = {tuple(r[1:]): r[0] for r in result.all()}
    return [found[key] for key in wanted]


async def select_any_of(
    conn: AsyncConnection, head: str, conditions: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> list[Any]:
    """Run ``head`` (a SELECT ending in a WHERE clause) AND any one of ``rows``: each row is
    the parameters of ``conditions`` (``("m.conversation_id =", "m.user_id =")``), which are
    joined with AND; the rows with OR. Returns the result rows.

    For a batch's worth of keys (the group writer's batches are at most a few hundred units).
    SQLAlchemy's ``tuple_(a, b).in_(...)`` becomes ``(a, b) IN (VALUES ...)``, which SQLite
    plans as a scan of the whole table; ``(a = ? AND b = ?) OR ...`` is one index search per
    row on SQLite (its multi-index OR) and on PostgreSQL. The statement is plain driver SQL
    of a few fixed sizes (the rows padded to a power of two), cached: as SQLAlchemy
    expressions (or text() with hundreds of bound parameters) building and hashing it cost a
    sixth of the event loop in bench/ runs, and every batch size was a large cache entry."""
    unique = sorted(set(rows))
    found: list[Any] = []
    # At most _ANY_OF_MAX rows a statement: SQLite bounds an expression's depth (1000), and
    # a chain of ORs is as deep as it is long.
    for start in range(0, len(unique), _ANY_OF_MAX):
        chunk = unique[start:start + _ANY_OF_MAX]
        size = 1 << (len(chunk) - 1).bit_length()
        chunk += [chunk[-1]] * (size - len(chunk))
        sql = _any_of_sql(head, conditions, size, conn.dialect.paramstyle)
        result = await conn.exec_driver_sql(sql, tuple(value for row in chunk for value in row))
        found.extend(result.all())
    return found


_ANY_OF_MAX = 256


@functools.lru_cache(maxsize=64)
def _any_of_sql(head: str, conditions: tuple[str, ...], size: int, paramstyle: str) -> str:
    numbers = itertools.count(1)

    def mark() -> str:
        return f"${next(numbers)}" if paramstyle == "numeric_dollar" else "?"

    if paramstyle not in ("numeric_dollar", "qmark"):
        raise ValueError(f"no placeholders for paramstyle {paramstyle}")
    ors = " OR ".join("(" + " AND ".join(f"{c} {mark()}" for c in conditions) + ")" for _ in range(size))
    return f"{head} AND ({ors})"


def alembic_config(url: str) -> AlembicConfig:
    """Return an Alembic configuration for ``url`` without an alembic.ini."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # FULL: a commit is on disk (the WAL synced) before it returns, so an acknowledged message
    # survives a power cut too; NORMAL in WAL mode syncs only at checkpoints and may lose the
    # last commits. The group writer (app/store/writer.py) pays the sync once per batch.
    cursor.execute("PRAGMA synchronous=FULL")
    # SQLite's own lower() folds ASCII only: "Ärztin" would never match "ärztin" in the
    # staff search. Python's does every script, like PostgreSQL's.
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)
    cursor.close()


# The execution option that names the BEGIN a SQLite connection sends (see _sqlite_begin).
SQLITE_BEGIN = "medchat_sqlite_begin"


def _sqlite_begin(conn: Connection) -> None:
    """Send ``BEGIN IMMEDIATE`` at the start of a ``transaction(immediate=True)``.

    The sqlite3 driver's "legacy transaction control" sends its BEGIN only before an
    INSERT/UPDATE/DELETE, not before a SELECT or a SAVEPOINT: a savepoint opened first in a
    transaction became a transaction of its own, committed by its RELEASE, and a later
    rollback no longer undid it. SQLAlchemy documents the fix (SQLite dialect, "Enabling
    Non-Legacy SQLite Transactional Modes"): send the BEGIN from this event. Once a BEGIN was
    sent the driver sends none of its own, and its commit and rollback still work.

    Only transactions that ask for it get it. Every other transaction keeps the driver's
    behaviour: the transaction starts at its first write, so one that reads first neither
    holds the write lock while it reads (a nested write in the same task would wait for it)
    nor fails to upgrade a stale read snapshot (SQLITE_BUSY_SNAPSHOT, with no busy wait).
    """
    begin = conn.get_execution_options().get(SQLITE_BEGIN)
    if begin:
        conn.exec_driver_sql(begin)


def _postgresql_durable(dbapi_connection: Any, _record: Any) -> None:
    """Ask for ``synchronous_commit=on`` whatever the server's default says: a commit returns
    only once its WAL is flushed, so an acknowledged message survives a server crash.

    Sent in autocommit (SQLAlchemy's PostgreSQL "search_path" recipe): inside the driver's
    implicit transaction, the first rollback on this connection would undo the SET.
    """
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    cursor = dbapi_connection.cursor()
    cursor.execute("SET SESSION synchronous_commit TO on")
    cursor.close()
    dbapi_connection.autocommit = autocommit


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL, None for an in-memory database."""
    path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
    return Path(path) if path and path != ":memory:" and not path.startswith("file::memory:") else None


def _keep_private(path: Path) -> Any:
    """A connect hook: the database, its -wal and -shm stay 0600 (a safety net; SQLite gives
    -wal and -shm the main file's mode, and the main file is created 0600 below)."""

    def hook(_dbapi_connection: Any, _record: Any) -> None:
        for suffix in ("", "-wal", "-shm"):
            make_private(Path(f"{path}{suffix}"))

    return hook


class Database:
    """One engine per process; one short ``AsyncSession`` per unit of work."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"pool_pre_ping": not self.is_sqlite}
        if not self.is_sqlite:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size)
        path = sqlite_file(url) if self.is_sqlite else None
        if path is not None:
            # Created 0600 before SQLite opens it: SQLite would make it 0644 (less the umask),
            # and the -wal and -shm files it makes later copy the main file's mode.
            make_private_folder(path.parent)
            create_private_file(path)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        immediate_engine = self.engine
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
            immediate_engine = self.engine.execution_options(**{SQLITE_BEGIN: "BEGIN IMMEDIATE"})
        else:
            event.listen(self.engine.sync_engine, "connect", _postgresql_durable)
        if path is not None:
            event.listen(self.engine.sync_engine, "connect", _keep_private(path))
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._immediate = async_sessionmaker(immediate_engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @asynccontextmanager
    async def transaction(self, *, immediate: bool = False) -> AsyncIterator[AsyncSession]:
        """Yield a session inside a transaction that commits on exit, rolls back on error.

        A lock timeout or a lost connection becomes ``Unavailable`` and a broken unique
        constraint ``Conflict`` (nothing was written either way).

        ``immediate``: on SQLite the transaction starts at once with ``BEGIN IMMEDIATE``
        (it holds the write lock from its start), so everything in it, SAVEPOINTs
        (``session.begin_nested()``) included, is one transaction: a rolled-back savepoint
        undoes only its own rows and the outer rollback undoes released ones too. Without
        it, a SQLite transaction starts at its first write (see ``_sqlite_begin``). On
        PostgreSQL both are the same.
        """
        sessions = self._immediate if immediate else self._sessions
        try:
            async with self._write_turn(), sessions() as session, session.begin():
                yield session
        except IntegrityError as exc:
            raise Conflict() from exc
        except (OperationalError, InterfaceError) as exc:
            raise Unavailable() from exc

    @asynccontextmanager
    async def _write_turn(self) -> AsyncIterator[None]:
        """On SQLite, wait for this process's turn to write, in order.

        SQLite lets one connection write at a time; the others nap in its busy handler (1 ms
        rising to 100 ms naps, no queue, no wake-up when the lock frees) and everything
        awaiting them stalls: the per-second stalls of docs/performance.md ("Stalls").
        Writers of this process queue here instead; ``busy_timeout`` still covers other
        processes (the CLI). Waiting longer than ``WRITE_TURN_SECONDS`` is ``Unavailable``,
        as a lock timeout was. PostgreSQL queues its own waiters: no turn there.
        """
        if self._write_lock is None:
            yield
            return
        try:
            async with asyncio.timeout(WRITE_TURN_SECONDS):
                await self._write_lock.acquire()
        except TimeoutError as exc:
            raise Unavailable() from exc
        try:
            yield
        finally:
            self._write_lock.release()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """Yield a session for reads (no commit)."""
        try:
            async with self._sessions() as session:
                yield session
        except (OperationalError, InterfaceError) as exc:
            raise Unavailable() from exc

    async def ping(self, timeout: float = 2.0) -> bool:  # noqa: ASYNC109 - a health check's own bound
        """Tell whether the database answers ``SELECT 1`` within ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - any failure means "not healthy"
            return False
        return True

    async def upgrade_to_head(self) -> None:
        """Apply every Alembic migration not yet applied."""
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade, self.url)

    async def dispose(self) -> None:
        await self.engine.dispose()


def _upgrade(connection: Connection, url: str) -> None:
    cfg = alembic_config(url)
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")
