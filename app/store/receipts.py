"""Read state: each member's read and delivered watermarks, and when they moved."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.lib.clock import as_utc
from app.records import Watermarks
from app.store.models import Membership, WatermarkMove


async def raise_watermarks(
    s: AsyncSession,
    conversation_id: int,
    user_id: int,
    *,
    read_id: int | None = None,
    delivered_id: int | None = None,
) -> Watermarks | None:
    """Move a member's read/delivered watermarks forward (never back); return both as they
    are now if one moved, None if neither did (or the member is gone)."""
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
        return None
    conn = await s.connection()  # Core, not the ORM: every send and receipt moves one
    row = (await conn.execute(
        update(Membership)
        .where(
            Membership.conversation_id == conversation_id,
            Membership.user_id == user_id,
            Membership.left_at.is_(None),
            or_(*conds),
        )
        .values(**values)
        .returning(Membership.last_read_id, Membership.last_delivered_id)
    )).first()
    return Watermarks(read_id=row[0], delivered_id=row[1]) if row is not None else None


async def record_watermark_move(
    s: AsyncSession, conversation_id: int, user_id: int, *, read_id: int, delivered_id: int, now: datetime
) -> None:
    """Keep when a member's watermarks reached these ids (message info times)."""
    await (await s.connection()).execute(
        insert(WatermarkMove).values(conversation_id=conversation_id, user_id=user_id, read_id=read_id, delivered_id=delivered_id, at=now)
    )


async def receipt_times(
    s: AsyncSession, conversation_id: int, message_id: int, user_ids: list[int]
) -> tuple[dict[int, datetime], dict[int, datetime]]:
    """When the delivered and read watermarks of each of ``user_ids`` first reached
    ``message_id`` in a conversation: (delivered, read), by user id.

    Watermarks only move up, so the first move that reached the message is the earliest
    with an id at or past it; each side is a range on its own index
    (conversation, user, delivered_id / read_id), never a scan of the conversation.
    """
    if not user_ids:
        return {}, {}
    result: list[dict[int, datetime]] = []
    for column in (WatermarkMove.delivered_id, WatermarkMove.read_id):
        rows = await s.execute(
            select(WatermarkMove.user_id, func.min(WatermarkMove.at))
            .where(
                WatermarkMove.conversation_id == conversation_id,
                WatermarkMove.user_id.in_(sorted(set(user_ids))),
                column >= message_id,
            )
            .group_by(WatermarkMove.user_id)
        )
        result.append({uid: as_utc(at) for uid, at in rows.all()})
    return result[0], result[1]
