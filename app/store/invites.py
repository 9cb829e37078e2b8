"""One-time links: setup, invite, reset. Only the token's hash is stored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.lib.clock import as_utc
from app.records import InviteRecord
from app.store.models import Invite


async def add_invite(
    s: AsyncSession,
    *,
    token_hash: str,
    purpose: str,
    user_id: int | None,
    created_by: int | None,
    now: datetime,
    expires_at: datetime,
) -> None:
    s.add(
        Invite(
            token_hash=token_hash,
            purpose=purpose,
            user_id=user_id,
            created_by=created_by,
            created_at=now,
            expires_at=expires_at,
        )
    )
    await s.flush()


async def usable_invite(
    s: AsyncSession, token_hash: str, purposes: tuple[str, ...], now: datetime
) -> InviteRecord | None:
    """Return the invite if it exists, has one of ``purposes``, is unused and unexpired."""
    row = (
        await s.execute(
            select(Invite).where(
                Invite.token_hash == token_hash,
                Invite.purpose.in_(purposes),
                Invite.used_at.is_(None),
                Invite.expires_at > now,
            )
        )
    ).scalar_one_or_none()
    return InviteRecord(purpose=row.purpose, user_id=row.user_id, expires_at=as_utc(row.expires_at)) if row else None


async def use_invite(s: AsyncSession, token_hash: str, now: datetime) -> bool:
    """Mark an invite used; False when another request used it first."""
    result = await s.execute(
        update(Invite)
        .where(Invite.token_hash == token_hash, Invite.used_at.is_(None))
        .values(used_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def cancel_invites(
    s: AsyncSession, now: datetime, *, user_id: int | None = None, purpose: str | None = None
) -> None:
    """Expire the unused invites of a user, or of a purpose (older setup links)."""
    stmt = update(Invite).where(Invite.used_at.is_(None)).values(used_at=now)
    if user_id is not None:
        stmt = stmt.where(Invite.user_id == user_id)
    if purpose is not None:
        stmt = stmt.where(Invite.purpose == purpose)
    await s.execute(stmt)


async def pending_invite_users(s: AsyncSession, now: datetime) -> dict[int, datetime]:
    """Map user id to the expiry of their newest usable invite."""
    rows = await s.execute(
        select(Invite.user_id, Invite.expires_at).where(
            Invite.used_at.is_(None), Invite.expires_at > now, Invite.user_id.is_not(None)
        )
    )
    return {uid: exp for uid, exp in rows if uid is not None}
