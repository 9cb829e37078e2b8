"""Conversations and their members."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.lib.clock import as_utc
from app.records import (
    ConversationDetail,
    ConversationSummary,
    MemberRecord,
    MembershipRecord,
    MessageRecord,
)
from app.store.messages import message_select, to_record
from app.store.models import Conversation, Membership, Message, User
from app.vocab import ConversationKind, MemberRole, MessageKind


def direct_key(a: int, b: int) -> str:
    low, high = sorted((a, b))
    return f"{low}:{high}"


async def direct_conversation_id(s: AsyncSession, key: str) -> int | None:
    return await s.scalar(select(Conversation.id).where(Conversation.direct_key == key))


async def add_conversation(
    s: AsyncSession, *, kind: str, title: str, key: str | None, created_by: int, now: datetime
) -> int:
    """Insert a conversation with no messages yet; return its id."""
    row = Conversation(
        kind=kind, title=title, direct_key=key, created_by=created_by, created_at=now,
        last_message_id=0,
    )
    s.add(row)
    await s.flush()
    return row.id


async def set_title(s: AsyncSession, conversation_id: int, title: str) -> None:
    await s.execute(update(Conversation).where(Conversation.id == conversation_id).values(title=title))


async def _membership_row(
    s: AsyncSession, conversation_id: int, user_id: int, *, include_left: bool = False
) -> Membership | None:
    stmt = select(Membership).where(
        Membership.conversation_id == conversation_id, Membership.user_id == user_id
    )
    if not include_left:
        stmt = stmt.where(Membership.left_at.is_(None))
    return (await s.execute(stmt)).scalar_one_or_none()


async def membership(
    s: AsyncSession, conversation_id: int, user_id: int, *, include_left: bool = False
) -> MembershipRecord | None:
    """A member's place in a conversation, with the conversation's fields (one indexed
    query: the access check). Only a current member's unless ``include_left``."""
    # Plain columns, not ORM entities: this runs on every send, receipt and typing frame,
    # and loading two mapped objects into the identity map costs more than the query.
    stmt = (
        select(
            Conversation.kind, Conversation.title, Conversation.last_message_id, Membership.role,
            Membership.joined_at, Membership.history_from_id, Membership.last_read_id,
            Membership.last_delivered_id,
        )
        .join(Conversation, Conversation.id == Membership.conversation_id)
        .where(Membership.conversation_id == conversation_id, Membership.user_id == user_id)
    )
    if not include_left:
        stmt = stmt.where(Membership.left_at.is_(None))
    row = (await s.execute(stmt)).first()
    if row is None:
        return None
    return MembershipRecord(
        conversation_id=conversation_id, kind=row.kind, title=row.title,
        last_message_id=row.last_message_id, user_id=user_id, role=row.role,
        joined_at=as_utc(row.joined_at), history_from_id=row.history_from_id,
        last_read_id=row.last_read_id, last_delivered_id=row.last_delivered_id,
    )


async def add_member(
    s: AsyncSession, conversation_id: int, user_id: int, role: str, now: datetime, start_after: int
) -> None:
    """Add (or bring back) a member; their watermarks start at ``start_after``."""
    row = await _membership_row(s, conversation_id, user_id, include_left=True)
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
    await _members_changed(s, conversation_id)


async def _members_changed(s: AsyncSession, conversation_id: int) -> None:
    """The member list changed: cached copies of it (``members_version``) are stale."""
    await s.execute(
        update(Conversation).where(Conversation.id == conversation_id).values(members_version=Conversation.members_version + 1)
    )


async def members_version(s: AsyncSession, conversation_id: int) -> int | None:
    """The version of a conversation's member list; None when there is no such conversation."""
    conn = await s.connection()  # Core: every send and receipt reads it
    return await conn.scalar(select(Conversation.members_version).where(Conversation.id == conversation_id))


async def members_versions(s: AsyncSession, conversation_ids: list[int]) -> dict[int, int]:
    """``members_version`` of many conversations at once (those that exist)."""
    if not conversation_ids:
        return {}
    conn = await s.connection()
    rows = await conn.execute(
        select(Conversation.id, Conversation.members_version).where(Conversation.id.in_(sorted(set(conversation_ids))))
    )
    return {int(c): int(v) for c, v in rows.all()}


async def set_role(s: AsyncSession, conversation_id: int, user_id: int, role: str) -> None:
    """Give a current member a role in the conversation (owner, admin or member)."""
    await s.execute(
        update(Membership)
        .where(Membership.conversation_id == conversation_id, Membership.user_id == user_id, Membership.left_at.is_(None))
        .values(role=role)
    )


async def end_membership(
    s: AsyncSession, conversation_id: int, user_id: int, now: datetime, *, admin_roles: tuple[str, ...]
) -> int | None:
    """Mark a member gone. If then no current member holds one of ``admin_roles``, the
    longest-standing remaining member (earliest ``joined_at``; ties: lowest user id)
    becomes "admin". Return that heir's user id, or None when nobody was promoted."""
    await s.execute(
        update(Membership)
        .where(Membership.conversation_id == conversation_id, Membership.user_id == user_id, Membership.left_at.is_(None))
        .values(left_at=now)
    )
    await _members_changed(s, conversation_id)
    current = (Membership.conversation_id == conversation_id) & Membership.left_at.is_(None)
    if await s.scalar(select(Membership.user_id).where(current, Membership.role.in_(admin_roles)).limit(1)) is not None:
        return None
    heir = await s.scalar(
        select(Membership.user_id).where(current).order_by(Membership.joined_at, Membership.user_id).limit(1)
    )
    if heir is not None:
        await set_role(s, conversation_id, heir, MemberRole.ADMIN)
    return heir


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
            Message.kind == MessageKind.TEXT,
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
                Conversation.kind == ConversationKind.DIRECT,
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
        for row in (await s.execute(message_select().where(Message.id.in_(last_ids)))).all():
            rec = to_record(row)
            last[rec.id] = rec
    return [
        ConversationSummary(
            id=conv.id,
            kind=conv.kind,
            title=(other_name or "(former colleague)") if conv.kind == ConversationKind.DIRECT else conv.title,
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


async def contact_ids(s: AsyncSession, user_id: int, max_group: int | None = None) -> list[int]:
    """Everyone who shares a current conversation with ``user_id`` (not the user).

    With ``max_group``, groups of more members do not count: presence in a 1000-member
    group would send every member a frame whenever anyone connects.
    """
    mine = select(Membership.conversation_id).where(
        Membership.user_id == user_id, Membership.left_at.is_(None)
    )
    if max_group is not None:
        # Count the members of my conversations only (counting every conversation's was a
        # scan of the whole table for each socket that opened: seconds for a restart's 1000).
        sizes = (
            select(Membership.conversation_id)
            .where(Membership.conversation_id.in_(mine), Membership.left_at.is_(None))
            .group_by(Membership.conversation_id)
            .having(func.count() <= max_group)
        )
        mine = sizes
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


