"""Group commit: one writer task runs the queued units of work in one transaction.

Many senders at once (forms and sockets alike) each wait for a commit; a commit costs a
disk sync (SQLite ``synchronous=FULL``, PostgreSQL ``synchronous_commit=on``). The writer
takes whatever queued while its previous commit ran, runs each unit in order in one
transaction, commits once, and only then answers every caller: natural batching, as in
PostgreSQL's and Synapse's group commit. It adds no latency when the writer is idle (a lone
send is a batch of one) unless ``max_wait`` asks for it.

A unit that fails on its own (a domain error, a ``Conflict`` from a unique constraint) is
undone alone and only its caller gets the error; the other units of the batch commit. For
that each unit runs in its own SAVEPOINT, but only when needed: a SAVEPOINT and its RELEASE
are two more round trips per unit (on SQLite each is a hop to aiosqlite's thread, which
halved the rows/s of bench/writer_speed.py). So a batch first runs its units plainly; if one
fails on its own, the transaction is rolled back and the whole batch runs again, each unit
in a savepoint, and the batches that follow start with savepoints until one batch has no
failure (``always_savepoints=True`` skips the plain attempt). A failure of the connection
or of the commit itself (``Unavailable``) fails every unit of the batch that had not failed
on its own: nothing of the batch was stored.

What a unit may do: reads and writes through the session it is given, nothing else (no
commit, no events, no I/O, no waiting on other tasks), because it may run twice (a first
attempt rolled back as above) and the whole batch waits for it. A unit that catches a
database error and goes on must put the failing statement in its own
``session.begin_nested()`` (on PostgreSQL an error spoils the transaction otherwise).
Keep units short: validation and reads that need not be in the transaction belong before
``submit``. Whatever must happen after the commit (publishing events, answering the client)
the caller does once ``submit`` returns: that is after the commit, so ``submit`` needs no
``on_commit`` hooks of its own.

Bulk units: ``submit_bulk(bulk, item)`` queues one item for a function that takes every
queued item of its kind at once (``bulk(session, items) -> answers``, one answer per item, in
order). A batch of 60 receipts is then a handful of multi-row statements instead of 60 x 6
single-row ones: on SQLite every statement is a trip to aiosqlite's thread and back through
the event loop, and under load those trips, not the disk, limited the writer (3-5 commits
a second, docs/performance.md). A batch runs its plain units and its bulk groups in the
order each first appeared (sends are urgent and come first). A bulk function follows the
rules of a unit; if it raises, the batch runs again with savepoints and each of its items
alone (``bulk(session, [item])``), so only the item that fails gets the error.

Cancellation: a caller cancelled while its unit waits in the queue has its unit skipped (it
never runs). Once the unit's batch has started, it runs and may commit even though nobody
is left to hear the answer; the sender's ``client_msg_id`` makes a resend return the stored
message. A cancelled caller never disturbs the writer or the other callers.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from app.lib.errors import Unavailable
from app.store.db import Conflict, Database

T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[T]]
# Every queued item of one kind at once; one answer per item, in the items' order.
Bulk = Callable[[AsyncSession, list[Any]], Awaitable[list[Any]]]

log = logging.getLogger(__name__)


class WriterStopped(Unavailable):
    """The writer was stopped (the process is shutting down); nothing was stored."""


@dataclass(eq=False)
class _Unit:
    work: Work[Any] | None  # None: an item of ``bulk``
    future: asyncio.Future[Any]
    bulk: Bulk | None = None
    item: Any = None
    # Set when the unit failed on its own (its savepoint rolled back).
    own_error: BaseException | None = None
    result: Any = None
    ran: bool = False


@dataclass
class WriterStats:
    """What the writer has done so far (for tests, benchmarks and logs)."""

    batches: int = 0  # batches formed (each ends in one commit, or in a failure for all)
    units: int = 0
    largest_batch: int = 0
    failed_batches: int = 0  # the commit (or the connection) failed
    reruns: int = 0  # a plain attempt rolled back to run again with savepoints


_STOP = object()


class _RunAgainWithSavepoints(Exception):
    """A unit failed on its own in a plain attempt: roll back, run the batch with savepoints."""


def _own_error(exc: Exception) -> Exception:
    """The error a unit's caller gets for a failure of its own unit (as db.transaction())."""
    if isinstance(exc, IntegrityError):
        return Conflict()
    return exc


class GroupWriter:
    """Gather concurrent units of work and commit them together, one transaction a batch.

    ``max_batch`` bounds the units of one transaction (and so the work a failed commit
    throws away and the time the write lock is held). ``max_wait`` (seconds, default 0)
    lets the writer wait that long after the first unit of a batch for more to arrive;
    0 means natural batching only: a batch is what queued while the previous one ran.
    The writer task starts on the first ``submit``; ``stop()`` ends it.
    """

    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 256,
        max_wait: float = 0.0,
        always_savepoints: bool = False,
        first: Callable[[AsyncSession], Awaitable[None]] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if max_wait < 0:
            raise ValueError("max_wait must not be negative")
        self.db = db
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.always_savepoints = always_savepoints
        # Run at the start of every batch transaction, before any unit and outside every
        # savepoint (the app: take the stream's order lock, so a unit that fails in its
        # savepoint cannot release it for the units after it, and no unit's row lock comes
        # before it: a deadlock with another process's batch otherwise).
        self.first = first
        self.stats = WriterStats()
        # The last batch had a unit that failed on its own: expect another, use savepoints.
        self._failures_lately = False
        # (priority, arrival, unit): urgent units (sends) go before the rest (receipts,
        # session touches) that queued earlier; among equals, arrival order. The stop mark
        # sorts after everything.
        self._queue: asyncio.PriorityQueue[tuple[int, int, Any]] = asyncio.PriorityQueue()
        self._arrivals = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def submit(self, work: Work[T], *, urgent: bool = False) -> T:
        """Run ``work(session)`` in the next batch's transaction; return its result after the commit.

        Raises what ``work`` raised (an ``IntegrityError`` as ``Conflict``) if it failed on
        its own: nothing of it is stored, the rest of the batch is. Raises
        ``Unavailable`` if the batch's transaction could not commit (nothing of the batch is
        stored), and ``WriterStopped`` (an ``Unavailable``) after ``stop()``.

        ``urgent`` units (a message someone waits to see acknowledged) join the next batch
        before units queued earlier that are not (receipts, session touches): behind a
        burst of receipts a send waits for one batch, not for all of them.
        """
        result: T = await self._enqueue(_Unit(work, self._future()), urgent)
        return result

    async def submit_bulk(self, bulk: Bulk, item: Any, *, urgent: bool = False) -> Any:
        """Queue ``item`` for ``bulk``, which runs once per batch with every item queued for
        it (see the module's docstring); return this item's answer after the commit.

        Errors as ``submit``: what ``bulk`` raised for this item alone, ``Unavailable`` for
        the batch, ``WriterStopped`` after ``stop()``."""
        return await self._enqueue(_Unit(None, self._future(), bulk, item), urgent)

    def _future(self) -> asyncio.Future[Any]:
        if self._stopping:
            raise WriterStopped()
        return asyncio.get_running_loop().create_future()

    async def _enqueue(self, unit: _Unit, urgent: bool) -> Any:
        self._queue.put_nowait((0 if urgent else 1, next(self._arrivals), unit))
        if self._task is None or self._task.done():
            # Started on first use (inside the serving loop); started again should it ever
            # have ended, so a queued unit is never left without a writer.
            self._task = asyncio.create_task(self._run(), name="group-writer")
        return await unit.future

    async def stop(self) -> None:
        """Refuse new units, commit every unit already queued, and end the writer task."""
        self._stopping = True
        task = self._task
        if task is None:
            return
        self._queue.put_nowait((2, next(self._arrivals), _STOP))
        try:
            # wait() does not raise the task's own end (cancelled, failed), only ours.
            await asyncio.wait({task})
        except asyncio.CancelledError:
            # The caller of stop() was cancelled: end the writer now rather than leave it
            # running unowned. Units still queued get WriterStopped.
            task.cancel()
            await asyncio.wait({task})
            raise
        finally:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("the group writer failed", exc_info=task.exception())
            self._fail_queued()

    async def _run(self) -> None:
        batch: list[_Unit] = []
        try:
            while True:
                batch = []
                first = (await self._queue.get())[2]
                if first is _STOP:
                    return
                assert isinstance(first, _Unit)
                batch.append(first)
                stop_after = await self._gather(batch)
                await self._commit(batch)
                if stop_after:
                    return
        except asyncio.CancelledError:
            # Cancelled by a cancelled stop(): no caller is left waiting for ever.
            for unit in batch:
                _settle(unit, error=WriterStopped())
            self._fail_queued()
            raise

    async def _gather(self, batch: list[_Unit]) -> bool:
        """Fill ``batch`` with what is queued (waiting ``max_wait`` for more); tell whether
        the stop mark was reached."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while len(batch) < self.max_batch:
            if self._queue.empty():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = (await asyncio.wait_for(self._queue.get(), remaining))[2]
                except TimeoutError:
                    break
            else:
                item = self._queue.get_nowait()[2]
            if item is _STOP:
                return True
            assert isinstance(item, _Unit)
            batch.append(item)
        return False

    async def _commit(self, batch: list[_Unit]) -> None:
        """Run the batch's live units in one transaction, commit, answer every caller."""
        live = [unit for unit in batch if not unit.future.done()]
        if not live:
            return
        self.stats.batches += 1
        self.stats.units += len(live)
        self.stats.largest_batch = max(self.stats.largest_batch, len(live))
        savepoints = self.always_savepoints or self._failures_lately
        while True:
            try:
                await self._attempt(live, savepoints)
            except _RunAgainWithSavepoints:
                self.stats.reruns += 1
                savepoints = True
                continue
            except asyncio.CancelledError:
                for unit in live:
                    _settle(unit, error=WriterStopped())
                raise
            except Exception as exc:  # noqa: BLE001 - every caller must hear of it
                self.stats.failed_batches += 1
                failure = exc if isinstance(exc, Unavailable) else Unavailable()
                if failure is not exc:
                    log.exception("group commit failed")
                for unit in live:
                    _settle(unit, error=unit.own_error or failure)
                return
            break
        self._failures_lately = any(unit.own_error is not None for unit in live)
        for unit in live:
            if unit.ran:
                _settle(unit, result=unit.result)
            elif unit.own_error is not None:
                _settle(unit, error=unit.own_error)
            # else: skipped, its caller was cancelled (the future is done already).

    async def _attempt(self, live: list[_Unit], savepoints: bool) -> None:
        """Run the units in order in one transaction and commit it."""
        for unit in live:
            unit.own_error, unit.result, unit.ran = None, None, False
        async with self.db.transaction(immediate=True) as session:
            if self.first is not None:
                await self.first(session)
            for step in _steps(live, alone=savepoints):
                # Callers cancelled while an earlier step of this batch ran: skip them.
                units = [unit for unit in step if not unit.future.cancelled()]
                if not units:
                    continue
                await self._run_step(session, units, savepoints)
                if not savepoints and any(unit.own_error is not None for unit in units):
                    raise _RunAgainWithSavepoints()

    async def _run_step(self, session: AsyncSession, units: list[_Unit], savepoint: bool) -> None:
        """Run one plain unit, or one bulk call for ``units`` (in a savepoint if asked: its
        own failure rolls back only that).

        A failure of the connection (``OperationalError``, ``InterfaceError``,
        ``Unavailable``) is not the unit's own: it ends the whole batch.
        """
        try:
            if savepoint:
                async with session.begin_nested():
                    results = await _call(session, units)
            else:
                results = await _call(session, units)
                # What the step added but did not write yet fails here, as its own, and
                # not in the next step or at the commit.
                await session.flush()
        except (OperationalError, InterfaceError, Unavailable):
            raise
        except Exception as exc:  # noqa: BLE001 - the unit's own failure goes to its caller
            for unit in units:
                unit.own_error = _own_error(exc)
            return
        for unit, result in zip(units, results, strict=True):
            unit.result = result
            unit.ran = True

    def _fail_queued(self) -> None:
        while not self._queue.empty():
            item = self._queue.get_nowait()[2]
            if isinstance(item, _Unit):
                _settle(item, error=WriterStopped())


def _steps(live: list[_Unit], *, alone: bool) -> list[list[_Unit]]:
    """The batch's steps: each plain unit alone, and the items of each bulk function together
    (where its first item stood), or each alone when ``alone``."""
    steps: list[list[_Unit]] = []
    groups: dict[Any, list[_Unit]] = {}
    for unit in live:
        if unit.bulk is None or alone:
            steps.append([unit])
        elif unit.bulk in groups:
            groups[unit.bulk].append(unit)
        else:
            groups[unit.bulk] = [unit]
            steps.append(groups[unit.bulk])
    return steps


async def _call(session: AsyncSession, units: list[_Unit]) -> list[Any]:
    """Run a step: a plain unit's work, or its bulk function with the items of ``units``."""
    first = units[0]
    if first.bulk is None:
        assert first.work is not None and len(units) == 1
        return [await first.work(session)]
    answers = await first.bulk(session, [unit.item for unit in units])
    if len(answers) != len(units):
        raise RuntimeError(f"a bulk function answered {len(answers)} of {len(units)} items")
    return answers


def _settle(unit: _Unit, *, result: Any = None, error: BaseException | None = None) -> None:
    """Answer a unit's caller unless it stopped waiting (cancelled)."""
    if unit.future.done():
        return
    if error is not None:
        unit.future.set_exception(error)
    else:
        unit.future.set_result(result)
