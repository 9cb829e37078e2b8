"""Group commit (app/store/writer.py) and the transaction guarantees it rests on, on SQLite
and PostgreSQL: savepoints that undo only their own rows, durable commits, one commit for
many concurrent senders, answers only after the commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from app.lib.errors import Unavailable
from app.store.db import Conflict, Database
from app.store.models import User
from app.store.writer import GroupWriter, WriterStopped


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture(params=[False, True], ids=["plain-first", "always-savepoints"])
async def writer(database: Database, request: pytest.FixtureRequest) -> AsyncIterator[GroupWriter]:
    w = GroupWriter(database, always_savepoints=request.param)
    try:
        yield w
    finally:
        await w.stop()


def commits(db: Database) -> list[int]:
    """A list that grows by one each time the engine commits a transaction."""
    seen: list[int] = []
    event.listen(db.engine.sync_engine, "commit", lambda _conn: seen.append(1))
    return seen


async def add_user(s: AsyncSession, username: str) -> int:
    user = User(username=username, display_name=username.title(), created_at=datetime.now(UTC))
    s.add(user)
    await s.flush()
    return user.id


def adding(username: str) -> Callable[[AsyncSession], Any]:
    async def work(s: AsyncSession) -> int:
        return await add_user(s, username)

    return work


async def usernames(db: Database) -> set[str]:
    """What another session sees committed."""
    async with db.reading() as s:
        return set((await s.scalars(select(User.username))).all())


async def until(condition: Callable[[], bool]) -> None:
    """Let other tasks run until ``condition`` holds (no clock involved)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


# --- the transactions underneath -----------------------------------------------------------


async def test_a_failed_savepoint_undoes_only_its_own_rows(database: Database) -> None:
    async with database.transaction(immediate=True) as s:
        # The savepoint is the transaction's first statement: with the sqlite3 driver's
        # legacy transaction control it became a transaction of its own, committed at RELEASE.
        async with s.begin_nested():
            await add_user(s, "first")
        with pytest.raises(Exception, match="UNIQUE|unique"):
            async with s.begin_nested():
                await add_user(s, "second")
                await add_user(s, "first")
        async with s.begin_nested():
            await add_user(s, "third")
    assert await usernames(database) == {"first", "third"}


async def test_a_rolled_back_transaction_undoes_its_released_savepoints(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.transaction(immediate=True) as s:
            async with s.begin_nested():
                await add_user(s, "released")
            raise RuntimeError("the transaction fails after the savepoint")
    assert await usernames(database) == set()


async def test_commits_are_durable(database: Database, database_kind: str) -> None:
    """SQLite syncs the WAL at every commit (FULL, not NORMAL); PostgreSQL waits for its WAL
    flush (synchronous_commit on, even where the server's default is off, as in the test
    cluster), on every connection, after rollbacks too."""
    query = "PRAGMA synchronous" if database_kind == "sqlite" else "SHOW synchronous_commit"
    expected = 2 if database_kind == "sqlite" else "on"  # SQLite: 2 is FULL
    for _ in range(3):
        async with database.reading() as r, database.transaction() as w:
            assert (await r.execute(text(query))).scalar_one() == expected
            assert (await w.execute(text(query))).scalar_one() == expected
        async with database.transaction(immediate=True) as w:
            assert (await w.execute(text(query))).scalar_one() == expected
        with pytest.raises(RuntimeError):
            async with database.transaction() as w:
                raise RuntimeError("roll back")
    async with database.transaction() as w:
        assert (await w.execute(text(query))).scalar_one() == expected


# --- the group writer -----------------------------------------------------------------------


async def test_concurrent_submits_share_commits_and_all_rows_are_stored(database: Database, writer: GroupWriter) -> None:
    counted = commits(database)
    names = [f"user{i}" for i in range(100)]
    ids = await asyncio.gather(*(writer.submit(adding(name)) for name in names))
    assert len(set(ids)) == 100
    assert await usernames(database) == set(names)
    assert len(counted) == writer.stats.batches < 10
    assert writer.stats.units == 100


async def test_every_answer_comes_after_its_commit(database: Database, writer: GroupWriter) -> None:
    async def send(name: str) -> None:
        await writer.submit(adding(name))
        # The caller's own next step, as the lead's "after the commit" code would be: the
        # row is visible to another session already.
        assert name in await usernames(database)

    await asyncio.gather(*(send(f"u{i}") for i in range(20)))
    assert len(await usernames(database)) == 20


async def test_a_unit_that_fails_on_its_own_fails_alone(database: Database, writer: GroupWriter) -> None:
    counted = commits(database)
    await writer.submit(adding("taken"))

    async def duplicate(s: AsyncSession) -> int:
        await add_user(s, "dup-own-row")
        return await add_user(s, "taken")

    async def lazy_duplicate(s: AsyncSession) -> None:
        # Added, never flushed by the unit: the failure is still this unit's own.
        s.add(User(username="taken", display_name="Again", created_at=datetime.now(UTC)))

    async def refused(s: AsyncSession) -> int:
        await add_user(s, "refused-own-row")
        raise ValueError("not a member of this conversation")

    results = await asyncio.gather(
        writer.submit(adding("a")), writer.submit(duplicate), writer.submit(lazy_duplicate),
        writer.submit(refused), writer.submit(adding("b")),
        return_exceptions=True,
    )
    assert isinstance(results[0], int) and isinstance(results[4], int)
    assert isinstance(results[1], Conflict) and isinstance(results[2], Conflict)
    assert isinstance(results[3], ValueError)
    assert len(counted) == writer.stats.batches == 2  # one commit for the five
    assert writer.stats.reruns == (0 if writer.always_savepoints else 1)
    assert await usernames(database) == {"taken", "a", "b"}


async def test_after_a_failure_batches_use_savepoints_until_one_is_clean(database: Database) -> None:
    writer = GroupWriter(database)
    executed: list[str] = []
    event.listen(database.engine.sync_engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: executed.append(statement.split()[0].upper()))

    async def refused(s: AsyncSession) -> None:
        raise ValueError("refused")

    try:
        await writer.submit(adding("one"))
        assert "SAVEPOINT" not in executed  # a plain batch
        with pytest.raises(ValueError):
            await writer.submit(refused)
        executed.clear()
        await writer.submit(adding("two"))  # the failure was lately: savepoints
        assert "SAVEPOINT" in executed
        executed.clear()
        await writer.submit(adding("three"))  # the last batch was clean: plain again
        assert "SAVEPOINT" not in executed
    finally:
        await writer.stop()
    assert writer.stats.reruns == 1
    assert await usernames(database) == {"one", "two", "three"}


async def test_a_failed_commit_fails_the_whole_batch_and_stores_nothing(database: Database, writer: GroupWriter) -> None:
    failures = [OperationalError("COMMIT", {}, Exception("disk I/O error"))]

    def fail_once(_conn: Any) -> None:
        if failures:
            raise failures.pop()

    event.listen(database.engine.sync_engine, "commit", fail_once)

    async def refused(s: AsyncSession) -> None:
        raise ValueError("its own error")

    results = await asyncio.gather(
        *(writer.submit(adding(f"lost{i}")) for i in range(5)), writer.submit(refused), return_exceptions=True,
    )
    assert all(isinstance(r, Unavailable) for r in results[:5]), results
    assert isinstance(results[5], ValueError)  # its own error, not the batch's
    assert writer.stats.failed_batches == 1
    assert await usernames(database) == set()
    # The writer goes on.
    await writer.submit(adding("after"))
    assert await usernames(database) == {"after"}


async def test_a_database_error_inside_a_unit_fails_the_whole_batch(database: Database, writer: GroupWriter) -> None:
    async def lost_connection(s: AsyncSession) -> None:
        raise OperationalError("INSERT", {}, Exception("server closed the connection"))

    results = await asyncio.gather(
        writer.submit(adding("x")), writer.submit(lost_connection), writer.submit(adding("y")), return_exceptions=True,
    )
    assert all(isinstance(r, Unavailable) for r in results), results
    assert await usernames(database) == set()


async def test_a_cancelled_caller_breaks_nothing(database: Database, writer: GroupWriter) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(s: AsyncSession) -> int:
        started.set()
        await release.wait()
        return await add_user(s, "in-flight")

    in_flight = asyncio.create_task(writer.submit(slow))
    await started.wait()
    # Queued behind the running batch: one caller gives up while waiting.
    waiting = asyncio.create_task(writer.submit(adding("gave-up")))
    patient = asyncio.create_task(writer.submit(adding("patient")))
    await until(lambda: writer._queue.qsize() == 2)
    waiting.cancel()
    in_flight.cancel()  # its unit is running: it still commits
    release.set()
    assert isinstance(await patient, int)
    for task in (waiting, in_flight):
        with pytest.raises(asyncio.CancelledError):
            await task
    # The unit whose caller left while queued never ran; the running one committed.
    assert await usernames(database) == {"in-flight", "patient"}
    await writer.submit(adding("later"))
    assert "later" in await usernames(database)


async def test_max_batch_bounds_a_transaction(database: Database) -> None:
    writer = GroupWriter(database, max_batch=2)
    try:
        await asyncio.gather(*(writer.submit(adding(f"m{i}")) for i in range(5)))
    finally:
        await writer.stop()
    assert (writer.stats.batches, writer.stats.largest_batch) == (3, 2)


async def test_max_wait_gathers_a_later_sender_and_a_full_batch_goes_at_once(database: Database) -> None:
    # A long wait that the test never sits through: the second unit fills the batch.
    writer = GroupWriter(database, max_batch=2, max_wait=60)
    try:
        first = asyncio.create_task(writer.submit(adding("early")))
        await until(lambda: writer._task is not None and writer._queue.empty())
        for _ in range(10):
            await asyncio.sleep(0)
        assert not first.done()  # the writer waits for company
        second = asyncio.create_task(writer.submit(adding("late")))
        await asyncio.wait_for(asyncio.gather(first, second), 30)
    finally:
        await writer.stop()
    assert (writer.stats.batches, writer.stats.largest_batch) == (1, 2)


async def test_stop_commits_what_is_queued_then_refuses(database: Database) -> None:
    writer = GroupWriter(database)
    await writer.stop()  # never started: nothing to do
    writer = GroupWriter(database)
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(s: AsyncSession) -> int:
        started.set()
        await release.wait()
        return await add_user(s, "running")

    running = asyncio.create_task(writer.submit(slow))
    await started.wait()
    queued = asyncio.create_task(writer.submit(adding("queued")))
    await until(lambda: writer._queue.qsize() == 1)
    stopping = asyncio.create_task(writer.stop())
    await until(lambda: writer._queue.qsize() == 2)  # the stop mark is behind "queued"
    with pytest.raises(WriterStopped):
        await writer.submit(adding("too-late"))
    release.set()
    await stopping
    assert isinstance(await running, int) and isinstance(await queued, int)
    assert writer._task is not None and writer._task.done()
    assert await usernames(database) == {"running", "queued"}
    await writer.stop()  # twice is fine


async def test_a_cancelled_stop_ends_the_writer_and_fails_what_is_queued(database: Database) -> None:
    writer = GroupWriter(database)
    started = asyncio.Event()

    async def stuck(s: AsyncSession) -> None:
        started.set()
        await asyncio.Event().wait()

    running = asyncio.create_task(writer.submit(stuck))
    await started.wait()
    queued = asyncio.create_task(writer.submit(adding("queued")))
    await until(lambda: writer._queue.qsize() == 1)
    stopping = asyncio.create_task(writer.stop())
    await until(lambda: writer._queue.qsize() == 2)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    for task in (running, queued):
        with pytest.raises(WriterStopped):
            await task
    assert writer._task is not None and writer._task.done()
    assert await usernames(database) == set()


async def test_a_cancelled_stop_answers_a_batch_still_being_gathered(database: Database) -> None:
    writer = GroupWriter(database, max_wait=60)
    waiting = asyncio.create_task(writer.submit(adding("gathered")))
    await until(lambda: writer._task is not None and writer._queue.empty())
    for _ in range(10):
        await asyncio.sleep(0)
    assert not waiting.done()
    writer._task.cancel()  # as a cancelled stop() does
    with pytest.raises(WriterStopped):
        await waiting
    await writer.stop()
    assert await usernames(database) == set()


@pytest.mark.parametrize("always_savepoints", [False, True], ids=["plain-first", "always-savepoints"])
async def test_first_runs_outside_every_savepoint_so_a_failed_unit_cannot_release_the_order_lock(
    database: Database, always_savepoints: bool
) -> None:
    """The app's writer takes the stream's order lock in ``first``. A unit that fails in its
    savepoint (PostgreSQL releases a subtransaction's locks when it rolls back) must not
    take the lock with it: the units after it still hold it."""
    from app.store.messages import commit_in_position_order

    if not database.url.startswith("postgresql"):
        pytest.skip("the advisory lock is PostgreSQL's")
    w = GroupWriter(database, always_savepoints=always_savepoints, first=commit_in_position_order)
    held: list[int] = []

    async def fails(s: AsyncSession) -> None:
        await commit_in_position_order(s)
        raise Conflict()

    async def looks(s: AsyncSession) -> None:
        held.append(int(await s.scalar(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted"
        )) or 0))

    try:
        results = await asyncio.gather(w.submit(fails), w.submit(looks), return_exceptions=True)
    finally:
        await w.stop()
    assert isinstance(results[0], Conflict) and results[1] is None
    assert held and held[-1] >= 1  # the second unit (its last run) still held the order lock


async def test_an_urgent_unit_joins_the_next_batch_before_earlier_ones_that_are_not(database: Database) -> None:
    """A send (urgent) queued behind a burst of receipts waits for one batch, not for all."""
    w = GroupWriter(database, max_batch=2)
    ran: list[str] = []
    release = asyncio.Event()

    def unit(name: str, hold: bool = False) -> Callable[[AsyncSession], Any]:
        async def work(s: AsyncSession) -> str:
            if hold:
                await release.wait()  # keeps the writer busy while the others queue
            ran.append(name)
            await s.execute(text("SELECT 1"))
            return name

        return work

    try:
        first = asyncio.create_task(w.submit(unit("busy", hold=True)))
        while w.stats.batches == 0:
            await asyncio.sleep(0)
        later = [asyncio.create_task(w.submit(unit(n))) for n in ("receipt 1", "receipt 2", "receipt 3")]
        urgent = asyncio.create_task(w.submit(unit("send"), urgent=True))
        for _ in range(5):
            await asyncio.sleep(0)
        release.set()
        assert await asyncio.gather(first, *later, urgent) == ["busy", "receipt 1", "receipt 2", "receipt 3", "send"]
    finally:
        await w.stop()
    assert ran == ["busy", "send", "receipt 1", "receipt 2", "receipt 3"]


# --- bulk units ----------------------------------------------------------------------------


async def test_the_items_of_a_bulk_function_share_one_call_and_each_gets_its_own_answer(database: Database, writer: GroupWriter) -> None:
    """A batch's items for one bulk function are one call (a few multi-row statements), in
    the order they queued, beside the plain units of the same batch; every answer comes
    after the one commit."""
    calls: list[list[str]] = []
    committed = commits(database)

    async def add_all(s: AsyncSession, names: list[str]) -> list[int]:
        calls.append(list(names))
        return [await add_user(s, name) for name in names]

    hold = asyncio.Event()

    async def holding(s: AsyncSession) -> int:
        await hold.wait()  # the next batch queues meanwhile
        return await add_user(s, "first")

    first = asyncio.create_task(writer.submit(holding))
    await until(lambda: writer.stats.batches == 1)
    names = [f"nurse{i}" for i in range(5)]
    bulk = [asyncio.create_task(writer.submit_bulk(add_all, name)) for name in names]
    plain = asyncio.create_task(writer.submit(adding("porter")))
    await until(lambda: writer._queue.qsize() == 6)
    hold.set()
    ids = await asyncio.gather(*bulk)
    await asyncio.gather(first, plain)
    if writer.always_savepoints:
        assert calls == [[name] for name in names]  # each alone in its savepoint
    else:
        assert calls == [names]
    assert len(set(ids)) == 5 and ids == sorted(ids)
    assert await usernames(database) == {"first", "porter", *names}
    assert len(committed) == 2  # the held batch, then everything that queued behind it


async def test_a_failing_bulk_call_fails_only_the_item_that_caused_it(database: Database) -> None:
    """A bulk function that raises is run again, each item alone in a savepoint: only the
    caller of the failing item hears of it, the rest commit, and the next batches use
    savepoints until one is clean (as plain units)."""
    w = GroupWriter(database)
    calls: list[list[str]] = []

    async def add_all(s: AsyncSession, names: list[str]) -> list[int]:
        calls.append(list(names))
        ids = [await add_user(s, name) for name in names]
        if "bad" in names:
            raise ValueError("refused")
        return ids

    hold = asyncio.Event()

    async def holding(s: AsyncSession) -> None:
        await hold.wait()

    try:
        first = asyncio.create_task(w.submit(holding))
        await until(lambda: w.stats.batches == 1)
        tasks = {name: asyncio.create_task(w.submit_bulk(add_all, name)) for name in ("a", "bad", "c")}
        await until(lambda: w._queue.qsize() == 3)
        hold.set()
        await first
        with pytest.raises(ValueError, match="refused"):
            await tasks["bad"]
        assert isinstance(await tasks["a"], int) and isinstance(await tasks["c"], int)
    finally:
        await w.stop()
    assert calls == [["a", "bad", "c"], ["a"], ["bad"], ["c"]]
    assert w.stats.reruns == 1
    assert await usernames(database) == {"a", "c"}


async def test_a_bulk_function_that_answers_the_wrong_number_of_items_stores_nothing(database: Database, writer: GroupWriter) -> None:
    async def short(s: AsyncSession, names: list[str]) -> list[int]:
        return [await add_user(s, name) for name in names[:-1]]

    with pytest.raises(RuntimeError, match="answered 0 of 1"):
        await writer.submit_bulk(short, "x")
    assert await usernames(database) == set()
