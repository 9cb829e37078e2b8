"""Read state: move my watermarks (ticks for the senders), and a message's info view."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.actions import Actor
from app.actions.access import NOT_A_MEMBER, access_message, members_at
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


@dataclass(frozen=True, eq=False)
class _ReceiptItem:
    """One watermark move queued for the group writer (``_store_receipts``)."""

    svc: Services
    user_id: int
    conversation_id: int
    read_id: int | None
    delivered_id: int | None
    now: datetime


@dataclass(frozen=True)
class _Moved:
    """A receipt that moved watermarks; ``position`` None when a later receipt of the same
    batch, for the same member and conversation, carries the news (one change, one event)."""

    read_id: int
    delivered_id: int
    told: tuple[int, ...]
    position: int | None


async def _store_receipts(s: Session, items: list[_ReceiptItem]) -> list[_Moved | str | None]:
    """Every receipt of a group writer's batch in a few multi-row statements (pure database
    work: it may run twice). One read of the members' watermarks, one update, one row of
    times and one receipt change per member and conversation that moved, whatever the
    number of receipts (a 100-member ward sends ~100 a second).

    Answers per receipt: ``_Moved``, None when nothing moved, ``NOT_A_MEMBER`` (an answer,
    not a failure: no rollback and re-run of the batch)."""
    svc = items[0].svc
    await messages.commit_in_position_order(s)
    states = await receipts.watermark_states(s, [(i.conversation_id, i.user_id) for i in items])
    members = {
        c: await members_at(svc, s, c, version)
        for c, version in {(c, st.members_version) for (c, _u), st in states.items()}
    }
    answers: list[_Moved | str | None] = []
    before: dict[tuple[int, int], tuple[int, int]] = {}  # (read, delivered) before the batch, per pair
    last: dict[tuple[int, int], int] = {}  # the answer that carries each pair's news
    for index, item in enumerate(items):
        key = (item.conversation_id, item.user_id)
        st = states.get(key)
        if st is None:
            answers.append(NOT_A_MEMBER)
            continue
        read = max(st.read_id, min(item.read_id, st.last_message_id) if item.read_id is not None else 0)
        # Read implies delivered.
        delivered = max(
            st.delivered_id, read,
            min(item.delivered_id, st.last_message_id) if item.delivered_id is not None else 0,
        )
        if (read, delivered) == (st.read_id, st.delivered_id):
            answers.append(None)
            continue
        before.setdefault(key, (st.read_id, st.delivered_id))
        st.read_id, st.delivered_id = read, delivered
        last[key] = index
        answers.append(_Moved(read, delivered, (), None))
    if not last:
        return answers
    moved = sorted(last)
    rows = [(c, u, states[c, u].read_id, states[c, u].delivered_id) for c, u in moved]
    await receipts.set_watermarks(s, rows)
    await receipts.record_watermark_moves(s, rows, items[0].now)
    told = await _told(svc, s, members, before, {k: (states[k].read_id, states[k].delivered_id) for k in moved})
    positions = await changes.append_many(
        s, [(c, ChangeKind.RECEIPT, None, u, {"read_id": r, "delivered_id": d}) for c, u, r, d in rows]
    )
    for key, position in zip(moved, positions, strict=True):
        st = states[key]
        answers[last[key]] = _Moved(st.read_id, st.delivered_id, told[key], position)
    return answers


async def _told(
    svc: Services,
    s: Session,
    members: dict[int, dict[int, int]],
    before: dict[tuple[int, int], tuple[int, int]],
    after: dict[tuple[int, int], tuple[int, int]],
) -> dict[tuple[int, int], tuple[int, ...]]:
    """Who hears of each (conversation, member)'s moved watermarks, given (read, delivered)
    before and after.

    In conversations of up to RECEIPTS_ALL_MEMBERS_MAX members (a direct chat) both do; in
    groups only the senders of the messages whose ticks changed (newly delivered or newly
    read, each range on its own: a member who reads nothing must not tell everyone who ever
    wrote) who are still members, and my own other tabs: ticks are drawn under one's own
    messages only, and telling everyone made each message cost members x members receipt
    frames. The senders come from one read of every range in the batch, except for a long
    range (a member back after days): one read of its distinct senders."""
    told: dict[tuple[int, int], tuple[int, ...]] = {}
    ranges: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for key, (read, delivered) in after.items():
        conv_members = members.get(key[0], {})
        if len(conv_members) <= svc.settings.receipts_all_members_max:
            told[key] = tuple(conv_members)
            continue
        old_read, old_delivered = before[key]
        ranges[key] = [(low, high) for low, high in ((old_read, read), (old_delivered, delivered)) if high > low]
    short = [(c, low, high) for (c, _u), spans in ranges.items() for low, high in spans if high - low <= _ONE_READ_SPAN]
    covered: dict[int, list[tuple[int, int]]] = {}
    for c, msg_id, sender in await messages.text_senders_in(s, short):
        covered.setdefault(c, []).append((msg_id, sender))
    for key, spans in ranges.items():
        senders: set[int] = set()
        for low, high in spans:
            if high - low <= _ONE_READ_SPAN:
                senders.update(u for i, u in covered.get(key[0], ()) if low < i <= high)
            else:
                senders.update(await messages.senders_between(s, key[0], low, high))
        told[key] = _senders_told(key, senders, members[key[0]])
    return told


def _senders_told(key: tuple[int, int], senders: set[int], conv_members: dict[int, int]) -> tuple[int, ...]:
    """The member who moved (their other tabs) and the senders still in the conversation."""
    return tuple(sorted({key[1], *(u for u in senders if u in conv_members)}))


# A batch's receipts in one big conversation read the senders of at most this many ids at once.
_ONE_READ_SPAN = 2000


async def _move_watermarks(svc: Services, actor: Actor, conversation_id: int, *, read_id: int | None, delivered_id: int | None) -> bool:
    """Raise my watermarks and tell whoever's ticks changed (``_told``)."""
    # Receipts share the group writer's batches with the sends: at a ward's pace every
    # message brings a delivered receipt from each member's device.
    answer = await svc.writer.submit_bulk(
        _store_receipts, _ReceiptItem(svc, actor.user.id, conversation_id, read_id, delivered_id, svc.clock.now())
    )
    if answer == NOT_A_MEMBER:
        raise NotFound("No such conversation.")
    if not isinstance(answer, _Moved):
        return False
    if answer.position is not None:
        await svc.publish(
            receipt_event(conversation_id, actor.user.id, answer.read_id, answer.delivered_id, answer.told, answer.position)
        )
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
