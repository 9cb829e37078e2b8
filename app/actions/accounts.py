"""Staff accounts: the first administrator, invites, passwords, activation, roles."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.actions import Actor, audit, presence
from app.actions.audit import Who
from app.actions.errors import ActionError, Forbidden, NotFound
from app.actions.presence import Presence
from app.actions.stream import unit_of_work
from app.lib.passwords import password_problem
from app.lib.text import TextError, clean_line
from app.lib.tokens import new_token, token_hash
from app.lib.usernames import USERNAME, normal_username
from app.realtime.events import Event
from app.records import AuditRecord, Staff, StaffPage
from app.services import Services
from app.store import audit as audit_rows
from app.store import invites, sessions, staff
from app.store.db import Conflict, Session
from app.vocab import AuditAction, EventKind, LinkPurpose, StaffRole

ROLES = (StaffRole.ADMIN, StaffRole.MEMBER)


@dataclass(frozen=True)
class StaffFields:
    username: str
    display_name: str
    department: str = ""
    job_title: str = ""
    role: str = StaffRole.MEMBER


def _check_fields(fields: StaffFields) -> StaffFields:
    username = normal_username(fields.username)
    if not USERNAME.fullmatch(username):
        raise ActionError(
            "bad_username",
            "A username is 2 to 64 characters: lower-case letters, digits, dot, dash or underscore.",
            field="username",
        )
    if fields.role not in ROLES:
        raise ActionError("bad_role", "The role is admin or member.", field="role")
    try:
        display = clean_line(fields.display_name, 100, "The display name")
        department = clean_line(fields.department, 100, "The department") if fields.department.strip() else ""
        job = clean_line(fields.job_title, 100, "The job title") if fields.job_title.strip() else ""
    except TextError as exc:
        raise ActionError("bad_field", str(exc)) from exc
    return StaffFields(username, display, department, job, fields.role)


def _check_password(svc: Services, password: str, personal: list[str]) -> None:
    problem = password_problem(password, svc.policy, personal)
    if problem:
        raise ActionError("weak_password", problem, field="password")


async def _hash(svc: Services, password: str) -> str:
    return await asyncio.to_thread(svc.passwords.hash, password)


async def do_issue_setup_link(svc: Services) -> str | None:
    """Return a fresh first-administrator setup token while no account exists, else None.

    Older setup links stop working: only the newest printed one is valid.
    """
    now = svc.clock.now()
    async with svc.db.transaction() as s:
        if await staff.count_users(s):
            return None
        await invites.cancel_invites(s, now, purpose=LinkPurpose.SETUP)
        token = new_token()
        await invites.add_invite(
            s, token_hash=token_hash(token), purpose=LinkPurpose.SETUP, user_id=None, created_by=None,
            now=now, expires_at=now + timedelta(hours=svc.settings.setup_link_hours),
        )
        await audit.record(s, None, AuditAction.SETUP_LINK_ISSUED, at=now)
    return token


async def setup_link_valid(svc: Services, token: str) -> bool:
    """Tell whether a setup link can still create the first administrator (none exists yet)."""
    async with svc.db.reading() as s:
        if await staff.count_users(s):
            return False
        return await invites.usable_invite(s, token_hash(token), (LinkPurpose.SETUP,), svc.clock.now()) is not None


async def do_setup_admin(svc: Services, token: str, fields: StaffFields, password: str, ip: str) -> Staff:
    """Create the first administrator through the one-time setup link."""
    checked = _check_fields(StaffFields(fields.username, fields.display_name, fields.department, fields.job_title, StaffRole.ADMIN))
    _check_password(svc, password, [checked.username, *checked.display_name.split()])
    hashed = await _hash(svc, password)
    now = svc.clock.now()
    async with svc.db.transaction() as s:
        if await invites.usable_invite(s, token_hash(token), (LinkPurpose.SETUP,), now) is None or await staff.count_users(s):
            raise NotFound("This setup link has been used or has expired.")
        if not await invites.use_invite(s, token_hash(token), now):
            raise NotFound("This setup link has been used or has expired.")
        row = await staff.add_user(
            s, username=checked.username, display_name=checked.display_name,
            department=checked.department, job_title=checked.job_title, role=StaffRole.ADMIN,
            password_hash=hashed, now=now,
        )
        await audit.record(s, Who(row.id, row.username), AuditAction.ACCOUNT_CREATED, at=now, target_user_id=row.id, detail="first administrator via setup link", ip=ip)
        return row


async def invite_for(svc: Services, token: str) -> Staff | None:
    """Return whom an invite or reset link is for, if it is still usable."""
    async with svc.db.reading() as s:
        inv = await invites.usable_invite(s, token_hash(token), (LinkPurpose.INVITE, LinkPurpose.RESET), svc.clock.now())
        if inv is None or inv.user_id is None:
            return None
        user = await staff.get_staff(s, inv.user_id)
    return user if user is not None and user.active else None


async def do_accept_invite(svc: Services, token: str, password: str, ip: str) -> Staff:
    """Set a password through an invite or reset link; the link dies. Returns the account
    (the door then signs the person in: ``auth.do_sign_in_after_link``)."""
    user = await invite_for(svc, token)
    if user is None:
        raise NotFound("This link has been used or has expired. Ask an administrator for a new one.")
    _check_password(svc, password, [user.username, *user.display_name.split()])
    hashed = await _hash(svc, password)
    now = svc.clock.now()
    async with svc.db.transaction() as s:
        if not await invites.use_invite(s, token_hash(token), now):
            raise NotFound("This link has been used or has expired. Ask an administrator for a new one.")
        await staff.set_password(s, user.id, hashed)
        await audit.record(s, Who(user.id, user.username), AuditAction.PASSWORD_SET, at=now, target_user_id=user.id, ip=ip)
    return user


def _require_admin(actor: Actor) -> None:
    if not actor.user.is_admin:
        raise Forbidden("Only administrators can manage accounts.")


async def _new_invite(svc: Services, s: Session, user_id: int, purpose: str, actor: Actor) -> str:
    now = svc.clock.now()
    await invites.cancel_invites(s, now, user_id=user_id)
    token = new_token()
    await invites.add_invite(
        s, token_hash=token_hash(token), purpose=purpose, user_id=user_id,
        created_by=actor.user.id, now=now, expires_at=now + timedelta(hours=svc.settings.invite_hours),
    )
    return token


async def _insert_account(s: Session, checked: StaffFields, password_hash: str | None, now: datetime) -> Staff:
    """Add an account row, or refuse a taken username (the unique index backs this up)."""
    if await staff.staff_named(s, checked.username) is not None:
        raise ActionError("username_taken", "That username is taken.", field="username")
    return await staff.add_user(
        s, username=checked.username, display_name=checked.display_name,
        department=checked.department, job_title=checked.job_title, role=checked.role,
        password_hash=password_hash, now=now,
    )


async def do_create_staff(svc: Services, actor: Actor, fields: StaffFields) -> tuple[Staff, str]:
    """Create an account with no password and return it with its invite token."""
    _require_admin(actor)
    checked = _check_fields(fields)
    now = svc.clock.now()
    try:
        async with svc.db.transaction() as s:
            row = await _insert_account(s, checked, None, now)
            token = await _new_invite(svc, s, row.id, LinkPurpose.INVITE, actor)
            await audit.record(s, actor, AuditAction.ACCOUNT_CREATED, at=now, target_user_id=row.id, detail=f"role {checked.role}")
            created = row
    except Conflict as exc:
        raise ActionError("username_taken", "That username is taken.", field="username") from exc
    return created, token


async def create_user_with_password(svc: Services, fields: StaffFields, password: str) -> Staff:
    """Create an account with a password (the command line, for scripts)."""
    checked = _check_fields(fields)
    _check_password(svc, password, [checked.username, *checked.display_name.split()])
    hashed = await _hash(svc, password)
    now = svc.clock.now()
    try:
        async with svc.db.transaction() as s:
            row = await _insert_account(s, checked, hashed, now)
            await audit.record(s, None, AuditAction.ACCOUNT_CREATED, at=now, target_user_id=row.id, detail=f"command line, role {checked.role}")
            return row
    except Conflict as exc:
        raise ActionError("username_taken", "That username is taken.", field="username") from exc


async def do_set_active(svc: Services, actor: Actor, user_id: int, active: bool) -> None:
    """Deactivate (ending every session and cancelling every unused link at once) or
    reactivate an account (an administrator then sends a new link if one is needed)."""
    _require_admin(actor)
    now = svc.clock.now()
    ended: list[str] = []
    async with unit_of_work(svc, stream=False) as work:
        s = work.s
        row = await staff.get_staff(s, user_id, for_update=True)
        if row is None:
            raise NotFound("No such account.")
        if row.active == active:
            return
        if not active and row.role == StaffRole.ADMIN and await staff.active_admin_count(s) <= 1:
            raise ActionError("last_admin", "The last active administrator cannot be deactivated.")
        await staff.set_active(s, user_id, active)
        if not active:
            ended = await sessions.end_user_sessions(s, user_id, now, "deactivated")
            # An invite or reset link issued before must not come back to life at reactivation.
            await invites.cancel_invites(s, now, user_id=user_id)
        await audit.record(s, actor, AuditAction.ACCOUNT_DEACTIVATED if not active else AuditAction.ACCOUNT_REACTIVATED, at=now, target_user_id=user_id, detail=f"{len(ended)} sessions ended" if ended else "")
        if ended:
            work.on_commit(Event(EventKind.SESSION_ENDED, session_ids=tuple(ended)))


async def do_unlock_account(svc: Services, actor: Actor, user_id: int) -> bool:
    """Lift a lockout after wrong passwords (and forget the failures); False if none was on."""
    _require_admin(actor)
    now = svc.clock.now()
    async with svc.db.transaction() as s:
        row = await staff.get_staff(s, user_id, for_update=True)
        if row is None:
            raise NotFound("No such account.")
        locked_until = row.locked_until
        if (locked_until is None or locked_until <= now) and not row.failed_logins:
            return False
        detail = f"was locked until {locked_until.isoformat(timespec='seconds')}" if locked_until and locked_until > now else f"{row.failed_logins} failures forgotten"
        await staff.clear_failures(s, user_id)
        await audit.record(s, actor, AuditAction.ACCOUNT_UNLOCKED, at=now, target_user_id=user_id, detail=detail)
    return True


async def do_reset_password(svc: Services, actor: Actor, user_id: int) -> tuple[Staff, str]:
    """Clear the password, end every session and return a new one-time link."""
    _require_admin(actor)
    now = svc.clock.now()
    async with unit_of_work(svc, stream=False) as work:
        s = work.s
        row = await staff.get_staff(s, user_id, for_update=True)
        if row is None:
            raise NotFound("No such account.")
        await staff.set_password(s, user_id, None)
        ended = await sessions.end_user_sessions(s, user_id, now, "password_reset")
        token = await _new_invite(svc, s, user_id, LinkPurpose.RESET, actor)
        await audit.record(s, actor, AuditAction.PASSWORD_RESET, at=now, target_user_id=user_id, detail=f"{len(ended)} sessions ended")
        target = await staff.get_staff(s, user_id)
        assert target is not None
        if ended:
            work.on_commit(Event(EventKind.SESSION_ENDED, session_ids=tuple(ended)))
    return target, token


async def do_change_role(svc: Services, actor: Actor, user_id: int, role: str) -> None:
    _require_admin(actor)
    if role not in ROLES:
        raise ActionError("bad_role", "The role is admin or member.", field="role")
    now = svc.clock.now()
    async with svc.db.transaction() as s:
        row = await staff.get_staff(s, user_id, for_update=True)
        if row is None:
            raise NotFound("No such account.")
        if row.role == role:
            return
        if row.role == StaffRole.ADMIN and row.active and await staff.active_admin_count(s) <= 1:
            raise ActionError("last_admin", "The last active administrator cannot stop being one.")
        old = row.role
        await staff.set_role(s, user_id, role)
        await audit.record(s, actor, AuditAction.ROLE_CHANGED, at=now, target_user_id=user_id, detail=f"{old} -> {role}")


async def get_staff(svc: Services, user_id: int) -> Staff | None:
    async with svc.db.reading() as s:
        return await staff.get_staff(s, user_id)


async def find_staff(svc: Services, query: str, *, include_inactive: bool = False, limit: int = 50) -> list[Staff]:
    """Staff matching ``query``, at most ``limit`` (the administrators' staff list)."""
    async with svc.db.reading() as s:
        return await staff.search_staff(s, query[:100], include_inactive=include_inactive, limit=limit)


# Pages beyond this are refused: 25 000 people at 25 a page, far more than a hospital has.
DIRECTORY_MAX_PAGE = 1000


@dataclass(frozen=True)
class Directory:
    """A page of the staff directory (or of a list to pick group members from).

    ``pinned`` are shown above the page whatever the search (the people already ticked) and
    are not on any page. ``presence`` holds only the people, among those shown, who share
    presence with the viewer (``presence.shared_presence``); nobody else's is ever looked up.
    """

    found: StaffPage
    pinned: list[Staff]
    departments: list[str]
    department: str
    presence: dict[int, Presence]


async def directory(
    svc: Services,
    viewer: Staff,
    query: str,
    *,
    department: str = "",
    page: int = 1,
    pinned: list[Staff] | None = None,
    exclude_ids: Collection[int] = (),
) -> Directory:
    """One page of the active staff whose name, username, department or job title matches
    every word of ``query``, in ``department`` (one that exists; "" is every department).

    Refuses a department no active colleague belongs to and a page past DIRECTORY_MAX_PAGE.
    """
    if page > DIRECTORY_MAX_PAGE:
        raise ActionError("bad_page", f"There are at most {DIRECTORY_MAX_PAGE} pages.", field="page")
    pinned = pinned or []
    left_out = {*exclude_ids, *(p.id for p in pinned)}
    async with svc.db.reading() as s:
        known = await staff.departments(s)
        if department and department not in known:
            raise ActionError("bad_department", "There is no such department.", field="department")
        found = await staff.staff_page(
            s, query[:100], department=department or None, page=page,
            per_page=svc.settings.directory_page_size, exclude_ids=left_out,
        )
    shown = [p.id for p in pinned] + [p.id for p in found.people]
    shared = await presence.shared_presence(svc, viewer.id, shown)
    return Directory(found=found, pinned=pinned, departments=known, department=department, presence=shared)


async def active_staff_named(svc: Services, usernames: list[str]) -> list[Staff]:
    """The active accounts among ``usernames`` (unknown names are left out)."""
    async with svc.db.reading() as s:
        return [u for u in await staff.staff_by_usernames(s, usernames) if u.active]


async def pending_invites(svc: Services) -> dict[int, datetime]:
    async with svc.db.reading() as s:
        return await invites.pending_invite_users(s, svc.clock.now())


async def audit_entries(
    svc: Services,
    actor: Actor,
    *,
    action: str | None = None,
    username: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
) -> list[AuditRecord]:
    _require_admin(actor)
    async with svc.db.reading() as s:
        return await audit_rows.entries(s, action=action, username=username, since=since, until=until, before_id=before_id)
