"""Read state: move my watermarks (ticks for the senders), and a message's info view."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.actions import Actor
from app.actions.access import NOT_A_MEMBER, access_conversation, access_message, current_members
from app.actions.errors import NotFound
from app.actions.stream import receipt_event
from app.records import MessageRecord, Staff
from app.services import Services
from app.store import changes, conversations, messages, receipts
from app.store.db import Session
from app.vocab import ChangeKind, MessageKind


@dataclass(frozen=True)
class Receipt:
    name: str
    at: datetime | None  # None: reached before times were kept


@dataclass(frozen=True)
class MessageInfo:
    """Who a message of mine has reached and who has read it, with times (WhatsApp's info)."""

    message: MessageRecord
    title: str
    read: list[Receipt]
    delivered: list[Receipt]  # reached a device, not read yet
    waiting: list[str]  # not delivered to any device yet


async def _move_watermarks(svc: Services, actor: Actor, conversation_id: int, *, read_id: int | None, delivered_id: int | None) -> bool:
    """Raise my watermarks and tell whoever's ticks changed.

    In conversations of up to RECEIPTS_ALL_MEMBERS_MAX members everyone hears (live "read
    by" lists); in bigger groups only the senders of the newly covered messages and my own
    other tabs do, or each message would cost members x members receipt frames.
    """
    now = svc.clock.now()

    async def store(s: Session) -> tuple[int, int, tuple[int, ...], int] | str | None:
        # One unit of the group writer's batch (pure database work: it may run twice).
        await messages.commit_in_position_order(s)
        try:
            before = await access_conversation(s, actor.user, conversation_id)
        except NotFound:
            return NOT_A_MEMBER  # an answer, not a failure: no rollback and re-run of the batch
        members = await current_members(svc, s, conversation_id)
        old_low = min(before.last_read_id, before.last_delivered_id)
        limit = before.last_message_id
        moved = await receipts.raise_watermarks(
            s, conversation_id, actor.user.id,
            read_id=min(read_id, limit) if read_id is not None else None,
            delivered_id=min(delivered_id, limit) if delivered_id is not None else None,
        )
        if moved is None:
            return None
        read, delivered = moved.read_id, moved.delivered_id
        await receipts.record_watermark_move(s, conversation_id, actor.user.id, read_id=read, delivered_id=delivered, now=now)
        if len(members) <= svc.settings.receipts_all_members_max:
            told = tuple(members)
        else:
            senders = await messages.senders_between(s, conversation_id, old_low, max(read, delivered))
            # Senders who have left since hear nothing of this conversation.
            told = tuple({actor.user.id, *(u for u in senders if u in members)})
        position = await changes.append(
            s, conversation_id, ChangeKind.RECEIPT, user_id=actor.user.id, data={"read_id": read, "delivered_id": delivered}
        )
        return read, delivered, told, position

    # Receipts share the group writer's batches with the sends: at a ward's pace every
    # message brings a delivered receipt from each member's device.
    result = await svc.writer.submit(store)
    if result == NOT_A_MEMBER:
        raise NotFound("No such conversation.")
    if result is None or isinstance(result, str):
        return False
    read, delivered, told, position = result
    await svc.publish(receipt_event(conversation_id, actor.user.id, read, delivered, told, position))
    return True


async def do_mark_read(svc: Services, actor: Actor, conversation_id: int, up_to_id: int) -> bool:
    """Move my read watermark (and so delivered) up to ``up_to_id``; never back."""
    return await _move_watermarks(svc, actor, conversation_id, read_id=up_to_id, delivered_id=None)


async def do_mark_delivered(svc: Services, actor: Actor, conversation_id: int, up_to_id: int) -> bool:
    return await _move_watermarks(svc, actor, conversation_id, read_id=None, delivered_id=up_to_id)


async def message_info(svc: Services, user: Staff, conversation_id: int, message_id: int) -> MessageInfo:
    """The info view of one of my messages: every member it was sent to (the members now
    who were there when it was sent), read / delivered with times, or still waiting.
    Only the sender may look; for anyone else the message does not exist."""
    async with svc.db.reading() as s:
        _mine, rec = await access_message(s, user, conversation_id, message_id)
        if rec.sender_id != user.id or rec.kind != MessageKind.TEXT:
            raise NotFound("No such message.")
        detail = await conversations.conversation_detail(s, conversation_id)
        assert detail is not None
        # Me, and colleagues added after it was sent, are not among its recipients.
        recipients = [m for m in detail.members if m.user_id != user.id and m.history_from_id < message_id]
        delivered_at, read_at = await receipts.receipt_times(s, conversation_id, message_id, [m.user_id for m in recipients])
    read: list[Receipt] = []
    delivered: list[Receipt] = []
    waiting: list[str] = []
    for m in recipients:
        if m.last_read_id >= message_id:
            read.append(Receipt(m.display_name, read_at.get(m.user_id)))
        elif m.last_delivered_id >= message_id:
            delivered.append(Receipt(m.display_name, delivered_at.get(m.user_id)))
        else:
            waiting.append(m.display_name)
    return MessageInfo(message=rec, title=detail.title_for(user.id), read=read, delivered=delivered, waiting=waiting)
