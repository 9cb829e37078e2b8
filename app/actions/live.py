"""Short-lived signals of the real-time door: typing, presence, resume."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from app.actions import Actor
from app.actions.errors import NotFound
from app.realtime.events import Event
from app.services import Services
from app.store import chats, staff
from app.store.records import MessageRecord


async def do_typing(svc: Services, actor: Actor, conversation_id: int, typing: bool, socket_id: str) -> None:
    """Tell the other members that I started or stopped typing (expires by itself).

    Throttled per person and conversation, whatever the value (``ChangeThrottle``): a client
    alternating start and stop as fast as it can costs the others one frame per interval.
    """
    key = (actor.user.id, conversation_id)
    if not svc.typing_throttle.allows(key, typing):
        return
    async with svc.db.reading() as s:
        ids = await chats.member_ids(s, conversation_id)
    if actor.user.id not in ids:
        raise NotFound("No such conversation.")
    svc.typing_throttle.record(key, typing)
    others = tuple(i for i in ids if i != actor.user.id)
    frame = {
        "type": "typing",
        "conversation_id": conversation_id,
        "user_id": actor.user.id,
        "name": actor.user.display_name,
        "typing": typing,
        "ttl": svc.config["TYPING_TTL_SECONDS"],
    }
    if others:
        await svc.publish(Event("typing", others, frame, except_socket=socket_id))


async def contacts(svc: Services, user_id: int) -> list[int]:
    """Whose presence I see and who sees mine: direct chats and groups up to PRESENCE_MAX_GROUP."""
    async with svc.db.reading() as s:
        return await chats.contact_ids(s, user_id, svc.config["PRESENCE_MAX_GROUP"])


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
        shared = wanted.intersection(await chats.contact_ids(s, viewer_id, svc.config["PRESENCE_MAX_GROUP"]))
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


@dataclass(frozen=True)
class Missed:
    messages: list[MessageRecord]
    too_many: bool


async def missed_messages(svc: Services, actor: Actor, after_id: int, page: int, cap: int) -> Missed:
    """One page of what I missed after ``after_id``; ``too_many`` when more than ``cap`` wait."""
    async with svc.db.reading() as s:
        if await chats.count_messages_after(s, actor.user.id, after_id, cap) > cap:
            return Missed([], True)
        return Missed(await chats.messages_after(s, actor.user.id, after_id, page), False)
