"""Conversations, memberships and messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.lib.clock import as_utc
from app.store.models import Conversation, Membership, Message, User, WatermarkMove
from app.store.records import (
    ConversationDetail,
    ConversationSummary,
    MemberRecord,
    MessageRecord,
)

_Sender = aliased(User)
_Reply = aliased(Message)
_ReplySender = aliased(User)


def _message_select() -> Select[Message, str, str, str]:
    return (
        select(Message, _Sender.display_name, _Reply.body, _ReplySender.display_name)
        .outerjoin(_Sender, _Sender.id == Message.sender_id)
        .outerjoin(_Reply, _Reply.id == Message.reply_to_id)
        .outerjoin(_ReplySender, _ReplySender.id == _Reply.sender_id)
    )


def _to_record(row: Any) -> MessageRecord:
    msg, sender_name, reply_body, reply_sender = row
    return MessageRecord(
        id=msg.id,
        conversation_id=msg.conversation_id,
        sender_id=msg.sender_id,
        sender_name=sender_name or "",
        kind=msg.kind,
        body=msg.body,
        created_at=as_utc(msg.created_at),
        client_msg_id=msg.client_msg_id,
        reply_to_id=msg.reply_to_id,
        reply_sender_name=reply_sender,
        reply_body=reply_body,
    )


def direct_key(a: int, b: int) -> str:
    low, high = sorted((a, b))
    return f"{low}:{high}"


async def conversation_row(s: AsyncSession, conversation_id: int) -> Conversation | None:
    return await s.get(Conversation, conversation_id)


async def direct_conversation_id(s: AsyncSession, key: str) -> int | None:
    return await s.scalar(select(Conversation.id).where(Conversation.direct_key == key))


async def add_conversation(
    s: AsyncSession, *, kind: str, title: str, key: str | None, created_by: int, now: datetime
) -> Conversation:
    row = Conversation(
        kind=kind, title=title, direct_key=key, created_by=created_by, created_at=now,
        last_message_id=0,
    )
    s.add(row)
    await s.flush()
    return row


async def membership_row(
    s: AsyncSession, conversation_id: int, user_id: int, *, include_left: bool = False
) -> Membership | None:
    stmt = select(Membership).where(
        Membership.conversation_id == conversation_id, Membership.user_id == user_id
    )
    if not include_left:
        stmt = stmt.where(Membership.left_at.is_(None))
    return (await s.execute(stmt)).scalar_one_or_none()


async def add_member(
    s: AsyncSession, conversation_id: int, user_id: int, role: str, now: datetime, start_after: int
) -> Membership:
    """Add (or bring back) a member; their watermarks start at ``start_after``."""
    row = await membership_row(s, conversation_id, user_id, include_left=True)
    if row is None:
        row = Membership(
            conversation_id=conversation_id, user_id=user_id, role=role, joined_at=now,
            last_read_id=start_after, last_delivered_id=start_after, history_from_id=start_after,
        )
        s.add(row)
    else:
        row.role, row.joined_at, row.left_at = role, now, None
        row.history_from_id = start_after
        row.last_read_id = max(row.last_read_id, start_after)
        row.last_delivered_id = max(row.last_delivered_id, start_after)
    await s.flush()
    return row


async def member_ids(s: AsyncSession, conversation_id: int) -> list[int]:
    return list(
        (
            await s.execute(
                select(Membership.user_id).where(
                    Membership.conversation_id == conversation_id, Membership.left_at.is_(None)
                )
            )
        ).scalars()
    )


async def senders_between(s: AsyncSession, conversation_id: int, after_id: int, up_to_id: int) -> list[int]:
    """Who sent the text messages with ids in (after_id, up_to_id] of a conversation."""
    rows = await s.execute(
        select(Message.sender_id)
        .where(
            Message.conversation_id == conversation_id,
            Message.id > after_id,
            Message.id <= up_to_id,
            Message.kind == "text",
        )
        .distinct()
    )
    return [uid for uid in rows.scalars() if uid is not None]


async def member_floors(s: AsyncSession, conversation_id: int) -> dict[int, int]:
    """The current members of a conversation, each with their ``history_from_id`` (one
    light query: the send path's membership check and recipient list)."""
    rows = await s.execute(
        select(Membership.user_id, Membership.history_from_id).where(
            Membership.conversation_id == conversation_id, Membership.left_at.is_(None)
        )
    )
    return {uid: floor for uid, floor in rows.all()}


async def conversation_detail(s: AsyncSession, conversation_id: int) -> ConversationDetail | None:
    conv = await s.get(Conversation, conversation_id)
    if conv is None:
        return None
    rows = await s.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.conversation_id == conversation_id, Membership.left_at.is_(None))
        .order_by(User.display_name, User.id)
    )
    members = [
        MemberRecord(
            user_id=u.id, username=u.username, display_name=u.display_name,
            department=u.department, job_title=u.job_title, role=m.role,
            last_read_id=m.last_read_id, last_delivered_id=m.last_delivered_id, active=u.active,
            history_from_id=m.history_from_id,
        )
        for m, u in rows.all()
    ]
    return ConversationDetail(
        id=conv.id, kind=conv.kind, title=conv.title, created_at=as_utc(conv.created_at),
        last_message_id=conv.last_message_id, members=members,
    )


async def conversation_summaries(s: AsyncSession, user_id: int) -> list[ConversationSummary]:
    """My conversations, the most recently active first, with preview and unread count."""
    mine = aliased(Membership)
    other = aliased(Membership)
    other_user = aliased(User)
    unread = (
        select(func.count(Message.id))
        .where(
            Message.conversation_id == Conversation.id,
            Message.id > mine.last_read_id,
            Message.kind == "text",
            Message.sender_id != user_id,
        )
        .correlate(Conversation, mine)
        .scalar_subquery()
    )
    rows = await s.execute(
        select(Conversation, mine.role, unread, other_user.id, other_user.display_name, mine.history_from_id)
        .join(mine, and_(mine.conversation_id == Conversation.id, mine.user_id == user_id))
        .outerjoin(
            other,
            and_(
                Conversation.kind == "direct",
                other.conversation_id == Conversation.id,
                other.user_id != user_id,
            ),
        )
        .outerjoin(other_user, other_user.id == other.user_id)
        .where(mine.left_at.is_(None))
        .order_by(
            case((Conversation.last_message_id > 0, Conversation.last_message_id), else_=0).desc(),
            Conversation.id.desc(),
        )
    )
    result = rows.all()
    last_ids = [conv.last_message_id for conv, *_ in result if conv.last_message_id]
    last: dict[int, MessageRecord] = {}
    if last_ids:
        for row in (await s.execute(_message_select().where(Message.id.in_(last_ids)))).all():
            rec = _to_record(row)
            last[rec.id] = rec
    return [
        ConversationSummary(
            id=conv.id,
            kind=conv.kind,
            title=(other_name or "(former colleague)") if conv.kind == "direct" else conv.title,
            my_role=role,
            last_message=_seen_last(last.get(conv.last_message_id), floor),
            unread=int(count or 0),
            other_user_id=other_id,
        )
        for conv, role, count, other_id, other_name, floor in result
    ]


def _seen_last(rec: MessageRecord | None, history_from: int) -> MessageRecord | None:
    """The chat list's preview, as the member may see it (nothing from before they joined)."""
    if rec is None or rec.id <= history_from:
        return None
    return rec.seen_from(history_from)


async def message_by_client_id(
    s: AsyncSession, sender_id: int, client_msg_id: str
) -> MessageRecord | None:
    row = (
        await s.execute(
            _message_select().where(
                Message.sender_id == sender_id, Message.client_msg_id == client_msg_id
            )
        )
    ).first()
    return _to_record(row) if row else None


async def message_record(s: AsyncSession, message_id: int) -> MessageRecord | None:
    row = (await s.execute(_message_select().where(Message.id == message_id))).first()
    return _to_record(row) if row else None


# Any constant shared by every MedChat process: the key of the advisory lock below.
_MESSAGE_ORDER_LOCK = 0x6D656463  # "medc"


async def _commit_in_id_order(s: AsyncSession) -> None:
    """Make message ids become visible in the order they were given.

    Resume means "everything after id N": if id 101 could commit before id 100, a client
    that saw 101 would never ask for 100. SQLite has one writer at a time, so its ids
    already commit in order. On PostgreSQL, transactions that insert messages take one
    transaction-scoped advisory lock, held until commit; the id is drawn after it.
    """
    if s.get_bind().dialect.name == "postgresql":
        await s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MESSAGE_ORDER_LOCK})


async def insert_message(
    s: AsyncSession,
    *,
    conversation_id: int,
    sender_id: int | None,
    kind: str,
    body: str,
    client_msg_id: str | None,
    reply_to_id: int | None,
    now: datetime,
) -> int:
    """Insert a message and move the conversation's ``last_message_id``; return the id."""
    await _commit_in_id_order(s)
    msg = Message(
        conversation_id=conversation_id, sender_id=sender_id, kind=kind, body=body,
        client_msg_id=client_msg_id, reply_to_id=reply_to_id, created_at=now,
    )
    s.add(msg)
    await s.flush()
    await s.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.last_message_id < msg.id)
        .values(last_message_id=msg.id)
    )
    return msg.id


async def messages_page(
    s: AsyncSession, conversation_id: int, *, before_id: int | None, limit: int, history_from: int = 0
) -> tuple[list[MessageRecord], bool]:
    """Up to ``limit`` messages before ``before_id`` (newest page when None), oldest first,
    and whether older ones exist. Keyset pagination on id; nothing at or below ``history_from``."""
    stmt = (
        _message_select()
        .where(Message.conversation_id == conversation_id, Message.id > history_from)
        .order_by(Message.id.desc())
        .limit(limit + 1)
    )
    if before_id is not None:
        stmt = stmt.where(Message.id < before_id)
    rows = [_hide_old_reply(_to_record(r), history_from) for r in (await s.execute(stmt)).all()]
    has_more = len(rows) > limit
    return list(reversed(rows[:limit])), has_more


def _hide_old_reply(rec: MessageRecord, history_from: int) -> MessageRecord:
    """A reply quoting a message from before the reader joined shows no quote text."""
    return rec.seen_from(history_from)


async def message_in_conversation(
    s: AsyncSession, message_id: int, conversation_id: int, history_from: int = 0
) -> bool:
    return (
        await s.scalar(
            select(Message.id).where(
                Message.id == message_id,
                Message.conversation_id == conversation_id,
                Message.id > history_from,
            )
        )
    ) is not None


def _my_current_membership(user_id: int) -> Any:
    """Join condition: the message's conversation is one ``user_id`` is in now."""
    return and_(
        Membership.conversation_id == Message.conversation_id,
        Membership.user_id == user_id,
        Membership.left_at.is_(None),
    )


async def messages_after(
    s: AsyncSession, user_id: int, after_id: int, limit: int
) -> list[MessageRecord]:
    """Messages after ``after_id`` in the conversations the user is in now (and from their
    joining on), oldest first."""
    stmt = (
        _message_select()
        .join(Membership, _my_current_membership(user_id))
        .add_columns(Membership.history_from_id)
        .where(Message.id > after_id, Message.id > Membership.history_from_id)
        .order_by(Message.id)
        .limit(limit)
    )
    return [_hide_old_reply(_to_record(r[:4]), r[4]) for r in (await s.execute(stmt)).all()]


async def raise_watermarks(
    s: AsyncSession,
    conversation_id: int,
    user_id: int,
    *,
    read_id: int | None = None,
    delivered_id: int | None = None,
) -> bool:
    """Move a member's read/delivered watermarks forward (never back). True if one moved."""
    values: dict[str, Any] = {}
    conds = []
    if read_id is not None:
        values["last_read_id"] = case(
            (Membership.last_read_id < read_id, read_id), else_=Membership.last_read_id
        )
        conds.append(Membership.last_read_id < read_id)
        # Read implies delivered.
        delivered_id = max(delivered_id or 0, read_id)
    if delivered_id is not None:
        values["last_delivered_id"] = case(
            (Membership.last_delivered_id < delivered_id, delivered_id),
            else_=Membership.last_delivered_id,
        )
        conds.append(Membership.last_delivered_id < delivered_id)
    if not values:
        return False
    result = await s.execute(
        update(Membership)
        .where(
            Membership.conversation_id == conversation_id,
            Membership.user_id == user_id,
            Membership.left_at.is_(None),
            or_(*conds),
        )
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def contact_ids(s: AsyncSession, user_id: int, max_group: int | None = None) -> list[int]:
    """Everyone who shares a current conversation with ``user_id`` (not the user).

    With ``max_group``, groups of more members do not count: presence in a 1000-member
    group would send every member a frame whenever anyone connects.
    """
    mine = select(Membership.conversation_id).where(
        Membership.user_id == user_id, Membership.left_at.is_(None)
    )
    if max_group is not None:
        sizes = (
            select(Membership.conversation_id)
            .where(Membership.left_at.is_(None))
            .group_by(Membership.conversation_id)
            .having(func.count() <= max_group)
        )
        mine = mine.where(Membership.conversation_id.in_(sizes))
    rows = await s.execute(
        select(Membership.user_id)
        .where(
            Membership.conversation_id.in_(mine),
            Membership.left_at.is_(None),
            Membership.user_id != user_id,
        )
        .distinct()
    )
    return list(rows.scalars())


async def count_messages_after(s: AsyncSession, user_id: int, after_id: int, cap: int) -> int:
    """How many messages after ``after_id`` in my conversations, counting at most ``cap + 1``."""
    inner = (
        select(Message.id)
        .join(Membership, _my_current_membership(user_id))
        .where(Message.id > after_id, Message.id > Membership.history_from_id)
        .limit(cap + 1)
        .subquery()
    )
    return int(await s.scalar(select(func.count()).select_from(inner)) or 0)


async def record_watermark_move(
    s: AsyncSession, conversation_id: int, user_id: int, *, read_id: int, delivered_id: int, now: datetime
) -> None:
    """Keep when a member's watermarks reached these ids (message info times)."""
    s.add(WatermarkMove(conversation_id=conversation_id, user_id=user_id, read_id=read_id, delivered_id=delivered_id, at=now))
    await s.flush()


async def receipt_times(s: AsyncSession, conversation_id: int, message_id: int) -> tuple[dict[int, datetime], dict[int, datetime]]:
    """When each member's delivered and read watermarks first reached ``message_id``."""
    result: list[dict[int, datetime]] = []
    for column in (WatermarkMove.delivered_id, WatermarkMove.read_id):
        rows = await s.execute(
            select(WatermarkMove.user_id, func.min(WatermarkMove.at))
            .where(WatermarkMove.conversation_id == conversation_id, column >= message_id)
            .group_by(WatermarkMove.user_id)
        )
        result.append({uid: as_utc(at) for uid, at in rows.all()})
    return result[0], result[1]
