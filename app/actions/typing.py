"""Typing: tell the other members that I started or stopped typing."""

from __future__ import annotations

from app.actions import Actor
from app.actions.access import access_conversation
from app.realtime.events import Event
from app.services import Services
from app.store import conversations
from app.vocab import EventKind


async def do_typing(svc: Services, actor: Actor, conversation_id: int, typing: bool, socket_id: str) -> None:
    """Tell the other members that I started or stopped typing (expires by itself).

    Throttled per person and conversation, whatever the value (``ChangeThrottle``): a client
    alternating start and stop as fast as it can costs the others one frame per interval.
    """
    key = (actor.user.id, conversation_id)
    if not svc.typing_throttle.allows(key, typing):
        return
    async with svc.db.reading() as s:
        await access_conversation(s, actor.user, conversation_id)
        ids = await conversations.member_ids(s, conversation_id)
    svc.typing_throttle.record(key, typing)
    others = tuple(i for i in ids if i != actor.user.id)
    frame = {
        "type": "typing",
        "conversation_id": conversation_id,
        "user_id": actor.user.id,
        "name": actor.user.display_name,
        "typing": typing,
        "ttl": svc.settings.typing_ttl_seconds,
    }
    if others:
        await svc.publish(Event(EventKind.TYPING, others, frame, except_socket=socket_id))
