"""Audit entries: one way to write them, one list of what they can say (``AuditAction``).

Every entry is written inside the transaction of the change it records, so the log and the
data never disagree; :func:`record_alone` is for events with no change of their own (a
refused CSRF token, a rate-limited login).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.actions import Actor
from app.records import Staff
from app.services import Services
from app.store import audit as audit_rows
from app.store.db import Session
from app.vocab import AuditAction


@dataclass(frozen=True)
class Who:
    """Someone an entry names as its actor who is not (yet) an :class:`Actor` with a session:
    a login attempt, a password set through a link, a session ending on its own."""

    id: int | None
    username: str
    ip: str = ""

    @classmethod
    def of(cls, user: Staff, ip: str = "") -> Who:
        return cls(user.id, user.username, ip)


async def record(
    s: Session,
    actor: Actor | Who | None,
    action: AuditAction,
    *,
    at: datetime,
    target_user_id: int | None = None,
    conversation_id: int | None = None,
    detail: str = "",
    ip: str | None = None,
) -> None:
    """Add one entry to the transaction ``s``. ``actor`` None is the system (command line,
    setup link); ``ip`` defaults to the actor's address."""
    actor_id: int | None
    if isinstance(actor, Actor):
        actor_id, actor_name, actor_ip = actor.user.id, actor.user.username, actor.ip
    elif actor is not None:
        actor_id, actor_name, actor_ip = actor.id, actor.username, actor.ip
    else:
        actor_id, actor_name, actor_ip = None, "", ""
    await audit_rows.add_entry(
        s, at=at, action=AuditAction(action), actor_id=actor_id, actor_name=actor_name,
        target_user_id=target_user_id, conversation_id=conversation_id,
        ip=actor_ip if ip is None else ip, detail=detail,
    )


async def record_alone(svc: Services, actor: Actor | Who | None, action: AuditAction, *, detail: str = "", ip: str | None = None) -> None:
    """One entry in a transaction of its own."""
    async with svc.db.transaction() as s:
        await record(s, actor, action, at=svc.clock.now(), detail=detail, ip=ip)
