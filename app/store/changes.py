"""The change stream: one increasing position per change a member can see, committed in order.

Synapse's stream positions are the model. A change is written in the same transaction as
what it describes; resume is "every change after position P in my conversations" with the
member's floor and ceiling (``Membership.from_position``, ``until_position``): nothing from
before they (last) joined, and nothing after the change that removed them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.db import insert_returning
from app.store.messages import commit_in_position_order
from app.store.models import Change, Membership
from app.vocab import ChangeKind


@dataclass(frozen=True)
class ChangeRow:
    """One change as a member reads it back (``history_from_id``: their message floor)."""

    position: int
    conversation_id: int
    kind: str
    message_id: int | None
    user_id: int | None
    data: dict[str, Any]
    history_from_id: int


async def append(
    s: AsyncSession,
    conversation_id: int,
    kind: ChangeKind,
    *,
    message_id: int | None = None,
    user_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> int:
    """Add a change in the caller's transaction; return its position.

    A receipt replaces the member's earlier receipt in that conversation: watermarks only
    move up, so a device that was away needs only the newest (they collapse on write).
    """
    [position] = await append_many(s, [(conversation_id, kind, message_id, user_id, data)])
    return position


async def append_many(s: AsyncSession, rows: list[tuple[int, ChangeKind, int | None, int | None, dict[str, Any] | None]]) -> list[int]:
    """``append`` for many (conversation_id, kind, message_id, user_id, data), in one
    multi-row INSERT; their positions, in the rows' order. Receipts replace the member's
    earlier receipt in that conversation, as in ``append`` (at most one receipt per member
    and conversation among ``rows``)."""
    if not rows:
        return []
    await commit_in_position_order(s)
    conn = await s.connection()
    receipts = [{"b_conversation": c, "b_user": u} for c, kind, _m, u, _d in rows if kind == ChangeKind.RECEIPT]
    if receipts:
        await conn.execute(
            delete(Change).where(
                Change.conversation_id == bindparam("b_conversation"), Change.user_id == bindparam("b_user"),
                Change.kind == ChangeKind.RECEIPT,
            ),
            receipts,
        )
    table = Change.__table__
    positions = await insert_returning(
        conn, table, table.c.position, [table.c.conversation_id, table.c.kind, table.c.message_id, table.c.user_id],
        [
            {
                "conversation_id": c, "kind": kind, "message_id": m, "user_id": u,
                "data": json.dumps(d, separators=(",", ":")) if d else "",
            }
            for c, kind, m, u, d in rows
        ],
    )
    return [int(p) for p in positions]


async def set_floor(s: AsyncSession, conversation_id: int, user_ids: list[int], from_position: int) -> None:
    """The stream starts after ``from_position`` for these (new or returning) members."""
    if user_ids:
        await s.execute(
            update(Membership)
            .where(Membership.conversation_id == conversation_id, Membership.user_id.in_(user_ids))
            .values(from_position=from_position, until_position=None)
        )


async def set_ceiling(s: AsyncSession, conversation_id: int, user_id: int, until_position: int) -> None:
    """The stream ends at ``until_position`` (the change that removed them) for this member."""
    await s.execute(
        update(Membership)
        .where(Membership.conversation_id == conversation_id, Membership.user_id == user_id)
        .values(until_position=until_position)
    )


async def current_position(s: AsyncSession) -> int:
    """The newest committed position (a page read after it shows everything up to it)."""
    return int(await s.scalar(select(func.max(Change.position))) or 0)


async def position_of_message(s: AsyncSession, message_id: int) -> int:
    """Where a v1 client's "after message id N" starts in the stream: the position of the
    newest message change at or below N (message ids and positions commit in the same order)."""
    if message_id <= 0:
        return 0
    found = await s.scalar(
        select(Change.position)
        .where(Change.kind == ChangeKind.MESSAGE, Change.message_id <= message_id)
        .order_by(Change.message_id.desc())
        .limit(1)
    )
    return int(found or 0)


def _visible_to(user_id: int) -> Any:
    """Join condition: a change of a conversation I am (or was) in, after my floor and, once
    I am gone, up to the change that removed me."""
    return and_(
        Membership.conversation_id == Change.conversation_id,
        Membership.user_id == user_id,
        Change.position > Membership.from_position,
        or_(Membership.until_position.is_(None), Change.position <= Membership.until_position),
    )


async def changes_after(s: AsyncSession, user_id: int, since: int, limit: int) -> list[ChangeRow]:
    """Up to ``limit`` changes after ``since`` that ``user_id`` may see, in position order."""
    rows = await s.execute(
        select(
            Change.position, Change.conversation_id, Change.kind, Change.message_id, Change.user_id,
            Change.data, Membership.history_from_id,
        )
        .join(Membership, _visible_to(user_id))
        .where(Change.position > since)
        .order_by(Change.position)
        .limit(limit)
    )
    return [
        ChangeRow(position=r[0], conversation_id=r[1], kind=r[2], message_id=r[3], user_id=r[4],
                  data=json.loads(r[5]) if r[5] else {}, history_from_id=r[6])
        for r in rows.all()
    ]


async def count_after(s: AsyncSession, user_id: int, since: int, cap: int) -> int:
    """How many changes after ``since`` ``user_id`` may see, counting at most ``cap + 1``."""
    inner = (
        select(Change.position)
        .join(Membership, _visible_to(user_id))
        .where(Change.position > since)
        .limit(cap + 1)
        .subquery()
    )
    return int(await s.scalar(select(func.count()).select_from(inner)) or 0)
