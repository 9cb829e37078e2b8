"""Staff accounts."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.lib.clock import as_utc
from app.lib.text import search_words
from app.lib.usernames import is_username, normal_username
from app.records import Staff, StaffPage
from app.store.models import User
from app.vocab import StaffRole


def to_staff(row: User) -> Staff:
    return Staff(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        department=row.department,
        job_title=row.job_title,
        role=row.role,
        active=row.active,
        has_password=row.password_hash is not None,
        locked_until=as_utc(row.locked_until) if row.locked_until else None,
        failed_logins=row.failed_logins,
    )


async def count_users(s: AsyncSession) -> int:
    return int(await s.scalar(select(func.count()).select_from(User)) or 0)


async def user_row(s: AsyncSession, user_id: int, *, for_update: bool = False) -> User | None:
    stmt = select(User).where(User.id == user_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await s.execute(stmt)).scalar_one_or_none()


async def user_row_by_username(s: AsyncSession, username: str) -> User | None:
    name = normal_username(username)
    if not is_username(name):
        return None  # names nobody; NUL and the like must not reach the database
    return (await s.execute(select(User).where(User.username == name))).scalar_one_or_none()


async def get_staff(s: AsyncSession, user_id: int, *, for_update: bool = False) -> Staff | None:
    """The account, or None; ``for_update`` locks its row until the transaction ends."""
    row = await user_row(s, user_id, for_update=for_update)
    return to_staff(row) if row else None


async def staff_named(s: AsyncSession, username: str) -> Staff | None:
    row = await user_row_by_username(s, username)
    return to_staff(row) if row else None


async def credentials(s: AsyncSession, username: str) -> tuple[Staff, str | None] | None:
    """The account named ``username`` with its password hash (None: no password set)."""
    row = await user_row_by_username(s, username)
    return (to_staff(row), row.password_hash) if row else None


async def set_password(s: AsyncSession, user_id: int, password_hash: str | None) -> None:
    """Set (or, with None, clear) the password; wrong-password failures and a lock go too."""
    await s.execute(
        update(User).where(User.id == user_id).values(password_hash=password_hash, failed_logins=0, locked_until=None)
    )


async def set_active(s: AsyncSession, user_id: int, active: bool) -> None:
    await s.execute(update(User).where(User.id == user_id).values(active=active))


async def set_role(s: AsyncSession, user_id: int, role: str) -> None:
    await s.execute(update(User).where(User.id == user_id).values(role=role))


async def staff_by_usernames(s: AsyncSession, usernames: list[str]) -> list[Staff]:
    """The accounts among ``usernames``; names that cannot be usernames are left out."""
    names = sorted({n for n in map(normal_username, usernames) if is_username(n)})
    if not names:
        return []
    rows = (await s.execute(select(User).where(User.username.in_(names)))).scalars()
    return [to_staff(r) for r in rows]


async def add_user(
    s: AsyncSession,
    *,
    username: str,
    display_name: str,
    department: str,
    job_title: str,
    role: str,
    password_hash: str | None,
    now: datetime,
) -> Staff:
    row = User(
        username=username,
        display_name=display_name,
        department=department,
        job_title=job_title,
        role=role,
        password_hash=password_hash,
        active=True,
        failed_logins=0,
        created_at=now,
    )
    s.add(row)
    await s.flush()
    return to_staff(row)


def _search(query: str, *, department: str | None = None, include_inactive: bool = False) -> Select[User]:
    """Staff whose name, username, department or job title holds every word of ``query``
    (case-insensitive; at most five words), in ``department`` if given, by name."""
    stmt = select(User).order_by(User.display_name, User.id)
    if not include_inactive:
        stmt = stmt.where(User.active.is_(True))
    if department is not None:
        stmt = stmt.where(User.department == department)
    for word in search_words(query):
        pattern = "%" + word.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(
            or_(
                func.lower(User.display_name).like(pattern, escape="\\"),
                func.lower(User.username).like(pattern, escape="\\"),
                func.lower(User.department).like(pattern, escape="\\"),
                func.lower(User.job_title).like(pattern, escape="\\"),
            )
        )
    return stmt


async def search_staff(
    s: AsyncSession, query: str, *, limit: int = 50, include_inactive: bool = False
) -> list[Staff]:
    """Find staff by name, username, department or job title (case-insensitive)."""
    stmt = _search(query, include_inactive=include_inactive).limit(limit)
    return [to_staff(r) for r in (await s.execute(stmt)).scalars()]


async def staff_page(
    s: AsyncSession,
    query: str,
    *,
    department: str | None,
    page: int,
    per_page: int,
    exclude_ids: Collection[int] = (),
) -> StaffPage:
    """One page (numbered from 1) of the active staff matching ``query`` and ``department``,
    by name; ``exclude_ids`` are left out (people already listed above the page)."""
    stmt = _search(query, department=department)
    if exclude_ids:
        stmt = stmt.where(User.id.notin_(list(exclude_ids)))
    stmt = stmt.offset((page - 1) * per_page).limit(per_page + 1)
    rows = [to_staff(r) for r in (await s.execute(stmt)).scalars()]
    return StaffPage(people=rows[:per_page], page=page, has_next=len(rows) > per_page)


async def departments(s: AsyncSession) -> list[str]:
    """The departments active staff belong to, sorted (the directory's filter offers these)."""
    rows = await s.execute(
        select(User.department)
        .where(User.active.is_(True), User.department != "")
        .distinct()
        .order_by(User.department)
    )
    return list(rows.scalars())


async def clear_failures(s: AsyncSession, user_id: int) -> None:
    await s.execute(update(User).where(User.id == user_id).values(failed_logins=0, locked_until=None))


async def add_failure(s: AsyncSession, user_id: int) -> int:
    """Count one more failed login in a row; return the new count."""
    count = await s.scalar(
        update(User)
        .where(User.id == user_id)
        .values(failed_logins=User.failed_logins + 1)
        .returning(User.failed_logins)
    )
    return int(count or 0)


async def lock_until(s: AsyncSession, user_id: int, until: datetime) -> None:
    await s.execute(update(User).where(User.id == user_id).values(locked_until=until))


async def active_admin_count(s: AsyncSession) -> int:
    return int(
        await s.scalar(
            select(func.count()).select_from(User).where(User.role == StaffRole.ADMIN, User.active.is_(True))
        )
        or 0
    )


async def set_last_seen(s: AsyncSession, user_id: int, at: datetime) -> None:
    await s.execute(update(User).where(User.id == user_id).values(last_seen_at=at))


async def last_seen(s: AsyncSession, user_ids: list[int]) -> dict[int, datetime | None]:
    if not user_ids:
        return {}
    rows = await s.execute(select(User.id, User.last_seen_at).where(User.id.in_(user_ids)))
    return {uid: (as_utc(at) if at else None) for uid, at in rows.all()}
