"""The one access check for conversations and messages, used by every action and door.

Like Zulip's ``access_message``: a conversation I am not a current member of, and a
message from before my history floor (``history_from_id``: sent before I last joined),
do not exist for me. Each raises ``NotFound``, so a stranger cannot tell "not yours"
from "no such thing".
"""

from __future__ import annotations

from app.actions.errors import NotFound
from app.records import MembershipRecord, MessageRecord, Staff
from app.services import Services
from app.store import conversations, messages
from app.store.db import Session


async def access_conversation(s_or_svc: Session | Services, user: Staff, conversation_id: int) -> MembershipRecord:
    """My membership of ``conversation_id`` (with its kind, title and newest id), or NotFound.

    Pass an open session to check inside a unit of work, or the services to read alone.
    """
    if isinstance(s_or_svc, Services):
        async with s_or_svc.db.reading() as s:
            mine = await conversations.membership(s, conversation_id, user.id)
    else:
        mine = await conversations.membership(s_or_svc, conversation_id, user.id)
    if mine is None:
        raise NotFound("No such conversation.")
    return mine


async def access_message(
    s_or_svc: Session | Services, user: Staff, conversation_id: int, message_id: int
) -> tuple[MembershipRecord, MessageRecord]:
    """A message of a conversation I am in, as I may see it (from my floor on), with my
    membership; NotFound for the conversation first, then for the message."""
    if isinstance(s_or_svc, Services):
        async with s_or_svc.db.reading() as s:
            return await _access_message(s, user, conversation_id, message_id)
    return await _access_message(s_or_svc, user, conversation_id, message_id)


async def _access_message(s: Session, user: Staff, conversation_id: int, message_id: int) -> tuple[MembershipRecord, MessageRecord]:
    mine = await access_conversation(s, user, conversation_id)
    rec = await messages.message_record(s, message_id)
    if rec is None or rec.conversation_id != conversation_id or rec.id <= mine.history_from_id:
        raise NotFound("No such message.")
    return mine, rec.seen_from(mine.history_from_id)


# What a group writer's unit answers when the actor is not a member: a refusal before any
# write is an answer, not a failure (raising would roll back and re-run the whole batch with
# savepoints, which any client could cause at will); the caller raises NotFound.
NOT_A_MEMBER = "not_a_member"


async def members_at(svc: Services, s: Session, conversation_id: int, version: int) -> dict[int, int]:
    """The conversation's members now, each with their ``history_from_id``, given the
    member list's version (``conversations.members_version(s)``) that the caller read in its
    transaction under the stream's order lock, which every change of members also takes:
    a stale list is never used. The list comes from this process's cache while that version
    stands, so a send to a 1000-member group does not read 1000 rows."""
    floors = svc.members.get(conversation_id, version)
    if floors is None:
        floors = await conversations.member_floors(s, conversation_id)
        svc.members.put(conversation_id, version, floors)
    return floors
