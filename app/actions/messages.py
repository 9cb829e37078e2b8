"""Messages: send, pages of history, one message."""

from __future__ import annotations

from dataclasses import dataclass

from app.actions import Actor
from app.actions.access import NOT_A_MEMBER, access_conversation, access_message, current_members
from app.actions.errors import ActionError, NotFound, RateLimited
from app.actions.receipts import do_mark_delivered, do_mark_read
from app.actions.stream import message_events
from app.lib.errors import Unavailable
from app.lib.text import TextError, clean_body
from app.lib.tokens import is_client_msg_id
from app.records import ConversationDetail, MessageRecord, Staff
from app.services import Services
from app.store import changes, conversations, messages, receipts
from app.store.db import Conflict, Session
from app.vocab import ChangeKind, MessageKind


@dataclass(frozen=True)
class ConversationView:
    detail: ConversationDetail
    title: str
    messages: list[MessageRecord]
    has_older: bool
    my_role: str
    my_last_read_id: int  # before this view moved it: where "new messages" starts


@dataclass(frozen=True)
class Sent:
    message: MessageRecord
    created: bool  # False: a repeat of a client_msg_id already stored
    position: int  # the message's change in the stream


async def view_conversation(
    svc: Services, actor: Actor, conversation_id: int, *, before_id: int | None, mark_read: bool
) -> ConversationView:
    """A page of history; the newest page moves my watermarks (read, or only delivered)."""
    async with svc.db.reading() as s:
        me = await access_conversation(s, actor.user, conversation_id)
        detail = await conversations.conversation_detail(s, conversation_id)
        assert detail is not None
        page, has_older = await messages.messages_page(
            s, conversation_id, before_id=before_id, limit=svc.settings.page_size,
            history_from=me.history_from_id,
        )
    if before_id is None and detail.last_message_id:
        if mark_read:
            await do_mark_read(svc, actor, conversation_id, detail.last_message_id)
        else:
            await do_mark_delivered(svc, actor, conversation_id, detail.last_message_id)
    return ConversationView(
        detail=detail, title=detail.title_for(actor.user.id), messages=page,
        has_older=has_older, my_role=me.role, my_last_read_id=me.last_read_id,
    )


async def add_system_line(s: Session, svc: Services, conversation_id: int, actor: Actor, text: str) -> int:
    """Insert a system line ("Alice added Bob") in the caller's unit of work; return its id."""
    return await messages.insert_message(
        s, conversation_id=conversation_id, sender_id=actor.user.id, kind=MessageKind.SYSTEM, body=text,
        client_msg_id=None, reply_to_id=None, now=svc.clock.now(),
    )


async def do_send_message(
    svc: Services,
    actor: Actor,
    conversation_id: int,
    body: str,
    client_msg_id: str,
    reply_to: int | None = None,
) -> Sent:
    """Store a message once per (sender, client_msg_id), then wake the members.

    A repeat of a client_msg_id returns the stored message and publishes nothing, so a
    double-clicked form or a resend after reconnect never makes a second message.
    """
    if not is_client_msg_id(client_msg_id):
        raise ActionError("bad_client_msg_id", "client_msg_id must be a UUID.", field="client_msg_id")
    try:
        text = clean_body(body, svc.settings.message_max_chars)
    except TextError as exc:
        raise ActionError("bad_body", str(exc), field="body") from exc
    # The hot path: one unit of the group writer's batch, no read-back. Only a reply reads
    # first (for a non-member the quoted message is not found).
    quoted = None
    if reply_to is not None:
        async with svc.db.reading() as s:
            try:
                _mine, quoted = await access_message(s, actor.user, conversation_id, reply_to)
            except NotFound as exc:
                raise ActionError("bad_reply_to", "The message you reply to is not in this conversation.", field="reply_to") from exc
    wait = await svc.message_buckets.take(actor.user.id)
    if wait:
        # A resend of a stored message is not a new send: answered even past the limit.
        repeat = await _stored_before(svc, actor, conversation_id, client_msg_id)
        if repeat is not None:
            return repeat
        raise RateLimited(wait)
    now = svc.clock.now()

    async def store(s: Session) -> tuple[int, int, dict[int, int]] | str | None:
        # One unit of the group writer's batch transaction (it may run twice: pure database
        # work). The membership check comes first and is the only one: the members as of
        # this commit, under the stream's order lock (BEGIN IMMEDIATE on SQLite, the advisory
        # lock on PostgreSQL), so one added meanwhile hears it and one gone cannot send.
        # None: that client_msg_id is stored already (a resend): nothing is written and the
        # stored message is the answer, as before the membership check.
        await messages.commit_in_position_order(s)
        if await messages.message_id_by_client_id(s, actor.user.id, client_msg_id) is not None:
            return None
        members = await current_members(svc, s, conversation_id)
        if actor.user.id not in members:
            # Refused before writing anything: an answer, not a failure (a raise would roll
            # back and re-run the whole batch with savepoints).
            return NOT_A_MEMBER
        msg_id = await messages.insert_message(
            s, conversation_id=conversation_id, sender_id=actor.user.id, kind=MessageKind.TEXT,
            body=text, client_msg_id=client_msg_id, reply_to_id=reply_to, now=now,
        )
        await receipts.raise_watermarks(s, conversation_id, actor.user.id, read_id=msg_id)
        position = await changes.append(s, conversation_id, ChangeKind.MESSAGE, message_id=msg_id)
        return msg_id, position, members

    try:
        stored = await svc.writer.submit(store, urgent=True)
    except Conflict:
        stored = None  # the same client_msg_id committed by a concurrent request (double submit)
    if stored == NOT_A_MEMBER:
        raise NotFound("No such conversation.")
    if stored is None or isinstance(stored, str):
        repeat = await _stored_before(svc, actor, conversation_id, client_msg_id)
        if repeat is None:
            raise Unavailable()  # a unique clash with nothing left to show: the client resends
        return repeat
    msg_id, position, members = stored
    rec = MessageRecord(
        id=msg_id, conversation_id=conversation_id, sender_id=actor.user.id,
        sender_name=actor.user.display_name, kind=MessageKind.TEXT, body=text, created_at=now,
        client_msg_id=client_msg_id, reply_to_id=reply_to,
        reply_sender_name=quoted.sender_name if quoted else None,
        reply_body=quoted.body if quoted else None,
    )
    # Committed: every sender of the batch is answered and every member woken only now.
    for event in message_events(rec, members, position):
        await svc.publish(event)
    return Sent(rec, True, position)


async def _stored_before(svc: Services, actor: Actor, conversation_id: int, client_msg_id: str) -> Sent | None:
    """The answer to a resend: the message stored under this client_msg_id, with its
    position (None when there is none)."""
    async with svc.db.reading() as s:
        earlier = await messages.message_by_client_id(s, actor.user.id, client_msg_id)
        if earlier is None:
            return None
        position = await changes.position_of_message(s, earlier.id)
    if earlier.conversation_id != conversation_id:
        raise ActionError("client_msg_id_reused", "That client_msg_id was used for another conversation.", field="client_msg_id")
    return Sent(earlier, False, position)


async def message_for(svc: Services, user: Staff, conversation_id: int, message_id: int) -> MessageRecord:
    """One message of a conversation I am in (the reply preview)."""
    _mine, rec = await access_message(svc, user, conversation_id, message_id)
    return rec
