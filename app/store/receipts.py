"""Read state: each member's read and delivered watermarks, and when they moved."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, bindparam, case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.lib.clock import as_utc
from app.store.db import select_any_of
from app.store.models import Membership, WatermarkMove


@dataclass
class WatermarkState:
    """A current member's watermarks and what bounds them (the group writer's receipts)."""

    read_id: int
    delivered_id: int
    last_message_id: int  # the conversation's newest message: no watermark goes past it
    members_version: int  # the conversation's member list version (app.actions.access)


async def watermark_states(s: AsyncSession, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], WatermarkState]:
    """For (conversation_id, user_id) pairs, each current member's watermarks with the
    conversation's newest id and member version, in one query; pairs that are not a
    current membership are missing."""
    rows = await select_any_of(
        await s.connection(),
        "SELECT m.conversation_id, m.user_id, m.last_read_id, m.last_delivered_id, c.last_message_id, c.members_version"
        " FROM memberships m JOIN conversations c ON c.id = m.conversation_id"
        " WHERE m.left_at IS NULL",
        ("m.conversation_id =", "m.user_id ="), pairs,
    )
    return {(c, u): WatermarkState(r, d, last, version) for c, u, r, d, last, version in rows}


async def set_watermarks(s: AsyncSession, rows: list[tuple[int, int, int, int]]) -> None:
    """Move (conversation_id, user_id, read_id, delivered_id) watermarks forward, never
    back, in one multi-row statement (current members only)."""
    if not rows:
        return
    conn = await s.connection()
    read, delivered = bindparam("b_read", type_=BigInteger), bindparam("b_delivered", type_=BigInteger)
    await conn.execute(
        update(Membership)
        .where(
            Membership.conversation_id == bindparam("b_conversation"),
            Membership.user_id == bindparam("b_user"),
            Membership.left_at.is_(None),
        )
        .values(
            last_read_id=case((Membership.last_read_id < read, read), else_=Membership.last_read_id),
            last_delivered_id=case((Membership.last_delivered_id < delivered, delivered), else_=Membership.last_delivered_id),
        ),
        [{"b_conversation": c, "b_user": u, "b_read": r, "b_delivered": d} for c, u, r, d in rows],
    )


async def record_watermark_moves(s: AsyncSession, rows: list[tuple[int, int, int, int]], now: datetime) -> None:
    """Keep when members' watermarks reached these ids (message info times): one row per
    (conversation_id, user_id, read_id, delivered_id)."""
    if not rows:
        return
    await (await s.connection()).execute(
        insert(WatermarkMove),
        [{"conversation_id": c, "user_id": u, "read_id": r, "delivered_id": d, "at": now} for c, u, r, d in rows],
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
