"""Server-side login sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.lib.clock import as_utc
from app.records import SessionInfo, Staff
from app.store.models import AuthSession, User
from app.store.staff import to_staff


def to_info(row: AuthSession) -> SessionInfo:
    return SessionInfo(
        id=row.id,
        user_id=row.user_id,
        created_at=as_utc(row.created_at),
        last_seen_at=as_utc(row.last_seen_at),
        user_agent=row.user_agent,
        ip=row.ip,
        ended_at=as_utc(row.ended_at) if row.ended_at else None,
        end_reason=row.end_reason,
    )


async def add_session(
    s: AsyncSession, *, session_hash: str, user_id: int, now: datetime, user_agent: str, ip: str
) -> None:
    s.add(
        AuthSession(
            id=session_hash,
            user_id=user_id,
            created_at=now,
            last_seen_at=now,
            user_agent=user_agent[:300],
            ip=ip[:64],
        )
    )
    await s.flush()


async def session_with_user(s: AsyncSession, session_hash: str) -> tuple[SessionInfo, Staff] | None:
    """The session behind a cookie (ended or not) and its account."""
    row = (
        await s.execute(
            select(AuthSession, User)
            .join(User, User.id == AuthSession.user_id)
            .where(AuthSession.id == session_hash)
        )
    ).first()
    return (to_info(row[0]), to_staff(row[1])) if row else None


async def sessions_with_users(s: AsyncSession, session_hashes: list[str]) -> dict[str, tuple[SessionInfo, Staff]]:
    """``session_with_user`` for many sessions in one query (the sockets' heartbeats)."""
    if not session_hashes:
        return {}
    rows = await s.execute(
        select(AuthSession, User).join(User, User.id == AuthSession.user_id).where(AuthSession.id.in_(sorted(set(session_hashes))))
    )
    return {row[0].id: (to_info(row[0]), to_staff(row[1])) for row in rows.all()}


async def touch_session(s: AsyncSession, session_hash: str, now: datetime) -> None:
    await s.execute(
        update(AuthSession).where(AuthSession.id == session_hash).values(last_seen_at=now)
    )


async def touch_sessions(s: AsyncSession, session_hashes: list[str], now: datetime) -> None:
    """``touch_session`` for many open sessions in one statement (the sockets' activity)."""
    if session_hashes:
        await s.execute(
            update(AuthSession)
            .where(AuthSession.id.in_(sorted(set(session_hashes))), AuthSession.ended_at.is_(None))
            .values(last_seen_at=now)
        )


async def end_session(s: AsyncSession, session_hash: str, now: datetime, reason: str) -> bool:
    result = await s.execute(
        update(AuthSession)
        .where(AuthSession.id == session_hash, AuthSession.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def end_user_sessions(
    s: AsyncSession, user_id: int, now: datetime, reason: str, *, keep: str | None = None
) -> list[str]:
    """End every open session of a user (but ``keep``); return the ended session hashes."""
    stmt = select(AuthSession.id).where(
        AuthSession.user_id == user_id, AuthSession.ended_at.is_(None)
    )
    if keep is not None:
        stmt = stmt.where(AuthSession.id != keep)
    ids = list((await s.execute(stmt)).scalars())
    if ids:
        await s.execute(
            update(AuthSession)
            .where(AuthSession.id.in_(ids))
            .values(ended_at=now, end_reason=reason)
        )
    return ids


async def open_sessions(
    s: AsyncSession, user_id: int, *, seen_after: datetime | None = None, created_after: datetime | None = None
) -> list[SessionInfo]:
    """A user's sessions not ended yet; with the cut-offs, only those not run out either."""
    stmt = (
        select(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.ended_at.is_(None))
        .order_by(AuthSession.last_seen_at.desc())
    )
    if seen_after is not None:
        stmt = stmt.where(AuthSession.last_seen_at > seen_after)
    if created_after is not None:
        stmt = stmt.where(AuthSession.created_at > created_after)
    return [to_info(r) for r in (await s.execute(stmt)).scalars()]


async def expired_sessions(
    s: AsyncSession, *, seen_before: datetime, created_before: datetime, limit: int
) -> list[tuple[SessionInfo, str]]:
    """Sessions not ended yet that were last seen or created at or before the cut-offs,
    with their user's username."""
    rows = await s.execute(
        select(AuthSession, User.username)
        .join(User, User.id == AuthSession.user_id)
        .where(
            AuthSession.ended_at.is_(None),
            or_(AuthSession.last_seen_at <= seen_before, AuthSession.created_at <= created_before),
        )
        .order_by(AuthSession.last_seen_at)
        .limit(limit)
    )
    return [(to_info(row), username) for row, username in rows.all()]
