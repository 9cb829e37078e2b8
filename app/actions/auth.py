"""Logging in and out, and the server-side sessions behind quart-auth's cookie."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.actions import Actor, audit
from app.actions.audit import Who
from app.actions.errors import LoginFailed, NotFound
from app.actions.stream import unit_of_work
from app.lib.errors import Unavailable
from app.lib.tokens import new_token, token_hash
from app.realtime.events import Event
from app.records import SessionInfo, Staff
from app.services import Services
from app.store import sessions, staff
from app.store.db import Session
from app.vocab import AuditAction, EventKind

log = logging.getLogger("medchat.sessions")


@dataclass(frozen=True)
class LoggedIn:
    token: str  # goes into the cookie; only its hash is stored
    user: Staff


async def do_login(svc: Services, username: str, password: str, ip: str, user_agent: str) -> LoggedIn:
    """Check a password and open a session, or raise ``LoginFailed`` (always the same).

    The argon2 check runs outside any transaction and in a thread, so a burst of logins
    holds no database lock and does not block the event loop.
    """
    name = username.strip().lower()[:64]
    now = svc.clock.now()
    async with svc.db.reading() as s:
        found = await staff.credentials(s, name)
    stored_hash = found[1] if found else None
    ok = await asyncio.to_thread(svc.passwords.verify, stored_hash, password)
    if found is None:
        async with svc.db.transaction() as s:
            # Not the typed name: people type their password into the username field.
            await audit.record(s, None, AuditAction.LOGIN_FAILED, at=now, detail="unknown user", ip=ip)
        raise LoginFailed(svc.settings.lockout_after_failures)
    account = found[0]
    user_id, active = account.id, account.active
    locked = account.locked_at(now)
    if ok and active and not locked:
        token = new_token()
        async with svc.db.transaction() as s:
            await staff.clear_failures(s, user_id)
            await sessions.add_session(s, session_hash=token_hash(token), user_id=user_id, now=now, user_agent=user_agent, ip=ip)
            await audit.record(s, Who(user_id, name), AuditAction.LOGIN, at=now, ip=ip)
            user = await staff.get_staff(s, user_id)
        assert user is not None
        return LoggedIn(token=token, user=user)
    async with svc.db.transaction() as s:
        if not active:
            await audit.record(s, Who(user_id, name), AuditAction.LOGIN_FAILED, at=now, detail="account deactivated", ip=ip)
        elif locked:
            await audit.record(s, Who(user_id, name), AuditAction.LOGIN_FAILED, at=now, detail="account locked", ip=ip)
        else:
            await _count_failure(svc, s, user_id, name, ip)
    raise LoginFailed(svc.settings.lockout_after_failures)


async def do_sign_in_after_link(svc: Services, user: Staff, ip: str, user_agent: str, link: str) -> LoggedIn:
    """Open a session for someone who has just set their password through a one-time link
    (``link`` is "setup", "invite" or "reset"): the link proved who they are, so they are
    not sent to type the new password again at once."""
    now = svc.clock.now()
    token = new_token()
    async with svc.db.transaction() as s:
        await sessions.add_session(s, session_hash=token_hash(token), user_id=user.id, now=now, user_agent=user_agent, ip=ip)
        await audit.record(s, Who(user.id, user.username), AuditAction.LOGIN, at=now, detail=f"after the {link} link", ip=ip)
    return LoggedIn(token=token, user=user)


async def _count_failure(svc: Services, s: Session, user_id: int, name: str, ip: str) -> None:
    now = svc.clock.now()
    failures = await staff.add_failure(s, user_id)
    await audit.record(s, Who(user_id, name), AuditAction.LOGIN_FAILED, at=now, detail=f"wrong password ({failures} in a row)", ip=ip)
    threshold = svc.settings.lockout_after_failures
    if failures >= threshold:
        seconds = min(svc.settings.lockout_base_seconds * 2 ** (failures - threshold), svc.settings.lockout_max_seconds)
        await staff.lock_until(s, user_id, now + timedelta(seconds=seconds))
        await audit.record(s, Who(user_id, name), AuditAction.ACCOUNT_LOCKED, at=now, detail=f"locked for {seconds} s after {failures} failures", ip=ip)


@dataclass(frozen=True)
class ResolvedSession:
    user: Staff
    session_id: str  # hash
    # When it runs out if nobody uses it meanwhile (idle or lifetime, whichever comes
    # first): until then only an explicit end (logout, revocation, deactivation: each
    # published as SESSION_ENDED) stops it, so a socket can touch it without reading it.
    live_until: datetime | None = None
    lifetime_ends: datetime | None = None

    def touched(self, svc: Services, now: datetime) -> ResolvedSession:
        """The same session after a touch at ``now``: its idle limit starts again."""
        idle_ends = now + timedelta(seconds=svc.settings.session_idle_seconds)
        live_until = idle_ends if self.lifetime_ends is None else min(idle_ends, self.lifetime_ends)
        return ResolvedSession(self.user, self.session_id, live_until, self.lifetime_ends)


@dataclass(frozen=True)
class EndedSession:
    """Why the session behind a cookie is not live: the row's ``end_reason`` (idle,
    lifetime, deactivated, logout, revoked, signed_out_elsewhere, password_reset), or
    "unknown" when no row is behind the token."""

    reason: str


def _live(svc: Services, user_row: Staff, row: SessionInfo, last_seen: datetime) -> ResolvedSession:
    lifetime_ends = row.created_at + timedelta(seconds=svc.settings.session_max_seconds)
    idle_ends = last_seen + timedelta(seconds=svc.settings.session_idle_seconds)
    return ResolvedSession(user=user_row, session_id=row.id, live_until=min(idle_ends, lifetime_ends), lifetime_ends=lifetime_ends)


def _expiry(svc: Services, row: SessionInfo, user_active: bool, now: datetime) -> str | None:
    """The reason a still-open session has run out at ``now``, None while it is live."""
    if not user_active:
        return "deactivated"
    if now - row.created_at >= timedelta(seconds=svc.settings.session_max_seconds):
        return "lifetime"
    if now - row.last_seen_at >= timedelta(seconds=svc.settings.session_idle_seconds):
        return "idle"
    return None


async def check_session(svc: Services, token: str, *, activity: bool, ip: str | None = None) -> ResolvedSession | EndedSession:
    """Return the live session behind a cookie's token, or why there is none, ending a
    session that has run out (audited once, with ``ip``: the caller's address, or the
    address stored with the session when the caller has none).

    ``activity`` False (an automatic page refresh, a socket heartbeat) does not count as
    the person being there, so it does not hold off the idle timeout.
    """
    now = svc.clock.now()
    session_hash = token_hash(token)
    async with svc.db.reading() as s:
        found = await sessions.session_with_user(s, session_hash)
    if found is None:
        return EndedSession("unknown")
    row, user_row = found
    if row.ended_at is not None:
        return EndedSession(row.end_reason or "unknown")
    reason = _expiry(svc, row, user_row.active, now)
    if reason is not None:
        async with unit_of_work(svc, stream=False) as work:
            if await sessions.end_session(work.s, session_hash, now, reason):
                await audit.record(work.s, Who(user_row.id, user_row.username), AuditAction.SESSION_EXPIRED, at=now, detail=reason, ip=row.ip if ip is None else ip)
                work.on_commit(Event(EventKind.SESSION_ENDED, session_ids=(session_hash,)))
        return EndedSession(reason)
    if activity and (now - row.last_seen_at).total_seconds() >= svc.settings.session_touch_seconds:
        # Through the group writer: after a restart every client's first frame touches its
        # session, and one synced commit each would queue them for seconds.
        await svc.writer.submit(lambda s: sessions.touch_session(s, session_hash, now))
        return _live(svc, user_row, row, now)
    return _live(svc, user_row, row, row.last_seen_at)


async def resolve_sessions(svc: Services, tokens: list[str]) -> dict[str, ResolvedSession | None]:
    """``resolve_session`` (no activity) for many cookies in one query: the sockets'
    handshakes after a restart and their heartbeats' re-checks (1000 sockets). A session
    that ran out is ended as ``check_session`` ends it (that path reads it again: rare)."""
    now = svc.clock.now()
    hashes = {token: token_hash(token) for token in tokens}
    async with svc.db.reading() as s:
        found = await sessions.sessions_with_users(s, list(hashes.values()))
    resolved: dict[str, ResolvedSession | None] = {}
    for token, session_hash in hashes.items():
        row = found.get(session_hash)
        if row is None or row[0].ended_at is not None:
            resolved[token] = None
        elif _expiry(svc, row[0], row[1].active, now) is not None:
            resolved[token] = await resolve_session(svc, token, activity=False)
        else:
            resolved[token] = _live(svc, row[1], row[0], row[0].last_seen_at)
    return resolved


async def touch_sessions(svc: Services, session_hashes: list[str]) -> dict[str, None]:
    """Record that the people behind these live sessions did something now (one statement,
    through the group writer): the sockets' activity, batched (``ws.endpoint``), for
    sessions known to be live without reading them (``ResolvedSession.live_until``)."""
    now = svc.clock.now()
    await svc.writer.submit(lambda s: sessions.touch_sessions(s, session_hashes, now))
    return dict.fromkeys(session_hashes)


async def resolve_session(svc: Services, token: str, *, activity: bool, ip: str | None = None) -> ResolvedSession | None:
    """Return the live session behind a cookie's token, or None (see ``check_session``)."""
    found = await check_session(svc, token, activity=activity, ip=ip)
    return found if isinstance(found, ResolvedSession) else None


async def do_end_expired_sessions(svc: Services, *, batch: int = 500) -> int:
    """End every open session that ran out unseen (idle or lifetime); return how many.

    Safe with several processes sweeping at once: each session is ended by one
    ``UPDATE ... WHERE ended_at IS NULL``, and only the process whose update ended it
    writes the audit entry (with the address stored with the session) and publishes.
    """
    total = 0
    while True:
        now = svc.clock.now()
        idle_cut = now - timedelta(seconds=svc.settings.session_idle_seconds)
        life_cut = now - timedelta(seconds=svc.settings.session_max_seconds)
        async with svc.db.reading() as s:
            expired = await sessions.expired_sessions(s, seen_before=idle_cut, created_before=life_cut, limit=batch)
        ended: list[str] = []
        async with unit_of_work(svc, stream=False) as work:
            for info, username in expired:
                reason = "lifetime" if info.created_at <= life_cut else "idle"
                if await sessions.end_session(work.s, info.id, now, reason):
                    await audit.record(work.s, Who(info.user_id, username), AuditAction.SESSION_EXPIRED, at=now, detail=reason, ip=info.ip)
                    ended.append(info.id)
            if ended:
                work.on_commit(Event(EventKind.SESSION_ENDED, session_ids=tuple(ended)))
        total += len(ended)
        if len(expired) < batch:
            return total


async def sweep_sessions_forever(svc: Services, interval: float) -> None:
    """Every ``interval`` seconds, end the sessions that ran out unseen (a background task:
    create_app starts it in before_serving and cancels it in after_serving)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await do_end_expired_sessions(svc)
        except Unavailable:
            log.warning("session sweep skipped: the database is busy")
        except Exception:  # noqa: BLE001 - a failed sweep must not end the sweeping
            log.exception("session sweep failed")


async def do_logout(svc: Services, actor: Actor) -> None:
    """End the current session."""
    if actor.session_id is None:
        return
    now = svc.clock.now()
    async with unit_of_work(svc, stream=False) as work:
        if await sessions.end_session(work.s, actor.session_id, now, "logout"):
            await audit.record(work.s, actor, AuditAction.LOGOUT, at=now)
        work.on_commit(Event(EventKind.SESSION_ENDED, session_ids=(actor.session_id,)))


async def do_end_other_sessions(svc: Services, actor: Actor) -> int:
    """End every session of mine but this one; return how many."""
    now = svc.clock.now()
    async with unit_of_work(svc, stream=False) as work:
        ended = await sessions.end_user_sessions(work.s, actor.user.id, now, "signed_out_elsewhere", keep=actor.session_id)
        if ended:
            await audit.record(work.s, actor, AuditAction.SESSIONS_REVOKED, at=now, target_user_id=actor.user.id, detail=f"{len(ended)} other sessions")
            work.on_commit(Event(EventKind.SESSION_ENDED, session_ids=tuple(ended)))
    return len(ended)


async def do_end_session(svc: Services, actor: Actor, session_id: str) -> None:
    """End one of my own sessions, picked from the list."""
    now = svc.clock.now()
    async with unit_of_work(svc, stream=False) as work:
        mine = {info.id for info in await sessions.open_sessions(work.s, actor.user.id)}
        if session_id not in mine:
            raise NotFound("No such session.")
        await sessions.end_session(work.s, session_id, now, "revoked")
        await audit.record(work.s, actor, AuditAction.SESSION_REVOKED, at=now, target_user_id=actor.user.id)
        work.on_commit(Event(EventKind.SESSION_ENDED, session_ids=(session_id,)))


async def my_sessions(svc: Services, user_id: int) -> list[SessionInfo]:
    """My live sessions: not those that ran out, even before anything ended their rows."""
    now = svc.clock.now()
    async with svc.db.reading() as s:
        return await sessions.open_sessions(
            s, user_id,
            seen_after=now - timedelta(seconds=svc.settings.session_idle_seconds),
            created_after=now - timedelta(seconds=svc.settings.session_max_seconds),
        )
