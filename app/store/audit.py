"""The audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.lib.clock import as_utc
from app.records import AuditRecord
from app.store.models import AuditEntry, User
from app.vocab import AuditAction


async def add_entry(
    s: AsyncSession,
    *,
    at: datetime,
    action: AuditAction,
    actor_id: int | None = None,
    actor_name: str = "",
    target_user_id: int | None = None,
    conversation_id: int | None = None,
    ip: str = "",
    detail: str = "",
) -> None:
    s.add(
        AuditEntry(
            at=at,
            action=action,
            actor_id=actor_id,
            actor_name=actor_name[:64],
            target_user_id=target_user_id,
            conversation_id=conversation_id,
            ip=ip[:64],
            detail=detail[:200],
        )
    )


async def entries(
    s: AsyncSession,
    *,
    action: str | None = None,
    username: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditRecord]:
    """Newest first, filtered; ``before_id`` pages back (keyset)."""
    target = aliased(User)
    stmt = (
        select(AuditEntry, target.username)
        .outerjoin(target, target.id == AuditEntry.target_user_id)
        .order_by(AuditEntry.id.desc())
        .limit(limit)
    )
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if username:
        name = username.strip().lower()
        stmt = stmt.where((AuditEntry.actor_name == name) | (target.username == name))
    if since:
        stmt = stmt.where(AuditEntry.at >= since)
    if until:
        stmt = stmt.where(AuditEntry.at < until)
    if before_id:
        stmt = stmt.where(AuditEntry.id < before_id)
    out = []
    for row, target_name in (await s.execute(stmt)).all():
        out.append(
            AuditRecord(
                id=row.id,
                at=as_utc(row.at),
                action=row.action,
                actor_id=row.actor_id,
                actor_name=row.actor_name,
                target_user_id=row.target_user_id,
                target_name=target_name,
                conversation_id=row.conversation_id,
                ip=row.ip,
                detail=row.detail,
            )
        )
    return out
