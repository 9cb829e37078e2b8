"""The change stream for actions: a unit of work that publishes on commit, the changes it
appends, and what a device missed (resume by position).

Every change a member can see (a message, a watermark move, a conversation created or
renamed, a member added, removed or gone) is appended to the stream in the same
transaction as the change itself (``app/store/changes.py``), and its event leaves only
after that transaction committed, carrying the position. The broker stays a wake-up: a
device that missed the event gets the change from the database when it resumes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from app.actions.frames import message_frame, receipt_frame, stored_conversation_frame
from app.realtime.events import Event
from app.records import MessageRecord, Staff
from app.services import Services
from app.store import changes, messages
from app.store.db import Session
from app.vocab import ChangeKind, EventKind


class Work:
    """One transaction (``s``) and the events to publish once it has committed."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.events: list[Event] = []

    def on_commit(self, event: Event) -> None:
        """Publish ``event`` after the commit; never if the transaction rolls back."""
        self.events.append(event)


@asynccontextmanager
async def unit_of_work(svc: Services, *, stream: bool = True) -> AsyncIterator[Work]:
    """A write transaction whose ``on_commit`` events go out only after it committed.

    ``stream``: it appends changes, so it takes the stream's order lock first (PostgreSQL;
    SQLite has one writer): before any row lock (a member list's version, a membership),
    which keeps it from deadlocking with a send that holds the lock (taken at the first
    insert, after a rename's or a leaver's row locks, PostgreSQL broke such a deadlock by
    failing one of them: tests/realtime/test_stream_two_processes.py, the racing burst).
    Work that only ends sessions (events that are wake-ups, not changes) passes
    ``stream=False``.
    """
    async with svc.db.transaction() as s:
        if stream:
            await messages.commit_in_position_order(s)
        work = Work(s)
        yield work
    for event in work.events:
        await svc.publish(event)


def message_events(rec: MessageRecord, floors: dict[int, int], position: int) -> list[Event]:
    """A message's events, one per way members may see it.

    ``floors`` maps each recipient to their ``history_from_id``. Recipients who may see the
    whole message share one frame; those who joined after a quoted message get a frame
    whose quote has no text (``MessageRecord.seen_from``), as their pages and resume do.
    """
    variants: dict[MessageRecord, list[int]] = {}
    for user_id, floor in floors.items():
        variants.setdefault(rec.seen_from(floor), []).append(user_id)
    return [
        Event(EventKind.MESSAGE, tuple(sorted(user_ids)), message_frame(variant, position), position=position)
        for variant, user_ids in variants.items()
    ]


async def append_message(work: Work, rec: MessageRecord, floors: dict[int, int]) -> int:
    """The change of a stored message, published to ``floors``' members; its position."""
    position = await changes.append(work.s, rec.conversation_id, ChangeKind.MESSAGE, message_id=rec.id)
    for event in message_events(rec, floors, position):
        work.on_commit(event)
    return position


async def append_stored_message(work: Work, message_id: int, floors: dict[int, int]) -> int:
    """``append_message`` for a message inserted earlier in this unit of work (a system line)."""
    rec = await messages.message_record(work.s, message_id)
    assert rec is not None  # inserted in this transaction
    return await append_message(work, rec, floors)


def receipt_event(
    conversation_id: int, user_id: int, read_id: int, delivered_id: int, told: tuple[int, ...], position: int
) -> Event:
    """A member's watermarks moved (their receipt change, replacing their previous one, is
    at ``position``): the event for ``told``."""
    frame = receipt_frame(conversation_id, user_id, read_id, delivered_id, position)
    return Event(EventKind.RECEIPT, told, frame, position=position)


async def append_conversation(
    work: Work,
    kind: ChangeKind,
    conversation_id: int,
    conversation_kind: str,
    title: str,
    told: list[int],
    *,
    user_ids: list[int] | None = None,
    history_from_id: int | None = None,
    starts: list[int] | None = None,
) -> int:
    """A conversation was created or renamed, or members came or went. A removal names the
    one member removed (``user_ids``), who gets this change and nothing after it. For the
    members in ``starts`` (created, or just added) the stream of the conversation begins
    with this change."""
    subject = user_ids[0] if kind == ChangeKind.MEMBER_REMOVED and user_ids else None
    data: dict[str, Any] = {"event": str(kind), "conversation": {"id": conversation_id, "kind": conversation_kind, "title": title}}
    if user_ids is not None:
        data["user_ids"] = user_ids
    if history_from_id is not None:
        data["history_from_id"] = history_from_id
    position = await changes.append(work.s, conversation_id, kind, user_id=subject, data=data)
    if starts:
        await changes.set_floor(work.s, conversation_id, starts, position - 1)
    if subject is not None:
        await changes.set_ceiling(work.s, conversation_id, subject, position)
    frame = stored_conversation_frame(position, data)
    work.on_commit(Event(EventKind.CONVERSATION, tuple(sorted(set(told))), frame, position=position))
    return position


@dataclass(frozen=True)
class Missed:
    """One page of what a device missed: the frames (oldest first) and where it ends."""

    frames: list[dict[str, Any]]
    messages: list[MessageRecord]  # the messages among them (a v1 client's sync page)
    position: int  # the newest position this page covers
    too_many: bool
    complete: bool = True  # nothing after this page (it held fewer changes than asked)

    @property
    def positions(self) -> list[int]:
        """The positions of the frames, in order."""
        return [int(f["position"]) for f in self.frames]


async def legacy_position(svc: Services, after_message_id: int) -> int:
    """A v1 client resumes "after message id N": the stream position that corresponds."""
    async with svc.db.reading() as s:
        return await changes.position_of_message(s, after_message_id)


async def current_position(svc: Services) -> int:
    """The newest committed position: a page read after it misses nothing up to it."""
    async with svc.db.reading() as s:
        return await changes.current_position(s)


async def missed_changes(svc: Services, user: Staff, since: int, page: int, cap: int) -> Missed:
    """One page of the changes after ``since`` that ``user`` may see, as frames; ``too_many``
    (and nothing else) when more than ``cap`` wait."""
    async with svc.db.reading() as s:
        rows = await changes.changes_after(s, user.id, since, page)
        # Counting only when a full page came back: a short page is all there is.
        if len(rows) > cap or (len(rows) == page and await changes.count_after(s, user.id, since, cap) > cap):
            return Missed([], [], since, True)
        ids = [r.message_id for r in rows if r.kind == ChangeKind.MESSAGE and r.message_id is not None]
        records = {m.id: m for m in await messages.message_records(s, ids)} if ids else {}
    frames: list[dict[str, Any]] = []
    found: list[MessageRecord] = []
    for r in rows:
        if r.kind == ChangeKind.MESSAGE:
            rec = records.get(r.message_id or 0)
            if rec is None:
                continue  # deleted with its conversation since
            rec = rec.seen_from(r.history_from_id)
            found.append(rec)
            frames.append(message_frame(rec, r.position))
        elif r.kind == ChangeKind.RECEIPT:
            frames.append(receipt_frame(r.conversation_id, r.user_id or 0, int(r.data["read_id"]), int(r.data["delivered_id"]), r.position))
        else:
            frames.append(stored_conversation_frame(r.position, r.data))
    return Missed(frames, found, rows[-1].position if rows else since, False, len(rows) < page)
