"""Short-lived signals of the real-time door: typing, resume (presence: ``presence.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from app.actions import Actor
from app.actions.errors import NotFound
from app.realtime.events import Event
from app.services import Services
from app.store import chats
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
