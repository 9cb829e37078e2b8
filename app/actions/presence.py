"""Presence: who sees whom online, and when they were last seen."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from app.realtime.events import Event
from app.services import Services
from app.store import conversations, staff


async def contacts(svc: Services, user_id: int) -> list[int]:
    """Whose presence I see and who sees mine: direct chats and groups up to PRESENCE_MAX_GROUP."""
    async with svc.db.reading() as s:
        return await conversations.contact_ids(s, user_id, svc.config["PRESENCE_MAX_GROUP"])


@dataclass(frozen=True)
class Presence:
    """What a page may show of someone's presence: online now, or when last seen."""

    online: bool
    last_seen: datetime | None


async def shared_presence(svc: Services, viewer_id: int, user_ids: Collection[int]) -> dict[int, Presence]:
    """The presence of those among ``user_ids`` who share it with ``viewer_id``, by id.

    The live rule (``contacts``): a direct chat or a group of at most PRESENCE_MAX_GROUP
    members together. Anyone else is left out, so a page cannot show when they were last seen.
    """
    wanted = set(user_ids)
    if not wanted:
        return {}
    async with svc.db.reading() as s:
        shared = wanted.intersection(await conversations.contact_ids(s, viewer_id, svc.config["PRESENCE_MAX_GROUP"]))
        seen = await staff.last_seen(s, sorted(shared))
    return {uid: Presence(online=svc.hub.is_online(uid), last_seen=seen.get(uid)) for uid in shared}


async def announce_presence(svc: Services, user_id: int, online: bool, origin: str) -> None:
    """Publish that this process has (or no longer has) sockets of ``user_id``."""
    now = svc.clock.now()
    if not online:
        async with svc.db.transaction() as s:
            await staff.set_last_seen(s, user_id, now)
    ids = await contacts(svc, user_id)
    frame = {"type": "presence", "user_id": user_id, "online": online, "last_seen": None if online else now.isoformat()}
    await svc.publish(Event("presence", tuple(ids), frame, origin=origin))


async def last_seen(svc: Services, user_ids: list[int]) -> dict[int, datetime | None]:
    async with svc.db.reading() as s:
        return await staff.last_seen(s, user_ids)
