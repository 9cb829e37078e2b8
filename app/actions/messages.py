"""Messages: send, pages of history, one message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.actions import Actor
from app.actions.access import NOT_A_MEMBER, access_conversation, access_message, members_at
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
    item = _SendItem(svc, actor.user.id, conversation_id, text, client_msg_id, reply_to, svc.clock.now())
    try:
        stored = await svc.writer.submit_bulk(_store_sends, item, urgent=True)
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
        sender_name=actor.user.display_name, kind=MessageKind.TEXT, body=text, created_at=item.now,
        client_msg_id=client_msg_id, reply_to_id=reply_to,
        reply_sender_name=quoted.sender_name if quoted else None,
        reply_body=quoted.body if quoted else None,
    )
    # Committed: every sender of the batch is answered and every member woken only now.
    for event in message_events(rec, members, position):
        await svc.publish(event)
    return Sent(rec, True, position)


@dataclass(frozen=True, eq=False)
class _SendItem:
    """One message queued for the group writer (``_store_sends``)."""

    svc: Services
    sender_id: int
    conversation_id: int
    body: str
    client_msg_id: str
    reply_to: int | None
    now: datetime


async def _store_sends(s: Session, items: list[_SendItem]) -> list[tuple[int, int, dict[int, int]] | str | None]:
    """Every send of a group writer's batch in a few multi-row statements (pure database
    work: it may run twice): one duplicate check, one read of the member lists' versions,
    one INSERT of the messages, one update of the conversations' newest ids and one of the
    senders' watermarks, one INSERT of their changes.

    The membership check is the only one: the members as of this commit, under the
    stream's order lock (BEGIN IMMEDIATE on SQLite, the advisory lock on PostgreSQL), so
    one added meanwhile hears it and one gone cannot send. Answers per send: (message id,
    position, members); None when that client_msg_id is stored already (a resend, or twice
    in this batch: nothing is written, the stored message is the answer); ``NOT_A_MEMBER``,
    refused before writing anything (an answer, not a failure: a raise would roll back and
    re-run the whole batch with savepoints)."""
    svc = items[0].svc
    await messages.commit_in_position_order(s)
    seen = await messages.stored_client_ids(s, [(i.sender_id, i.client_msg_id) for i in items])
    versions = await conversations.members_versions(s, [i.conversation_id for i in items])
    members = {c: await members_at(svc, s, c, v) for c, v in versions.items()}
    answers: list[tuple[int, int, dict[int, int]] | str | None] = []
    new: list[int] = []  # indexes of the items to store
    for item in items:
        if (item.sender_id, item.client_msg_id) in seen:
            answers.append(None)
        elif item.sender_id not in members.get(item.conversation_id, {}):
            answers.append(NOT_A_MEMBER)
        else:
            seen.add((item.sender_id, item.client_msg_id))
            new.append(len(answers))
            answers.append(None)
    if not new:
        return answers
    stored = [items[i] for i in new]
    ids = await messages.insert_messages(s, [
        {
            "conversation_id": i.conversation_id, "sender_id": i.sender_id, "kind": MessageKind.TEXT, "body": i.body,
            "client_msg_id": i.client_msg_id, "reply_to_id": i.reply_to, "created_at": i.now,
        }
        for i in stored
    ])
    # My own message is read by me (and so delivered).
    await receipts.set_watermarks(s, [(i.conversation_id, i.sender_id, m, m) for i, m in zip(stored, ids, strict=True)])
    positions = await changes.append_many(
        s, [(i.conversation_id, ChangeKind.MESSAGE, m, None, None) for i, m in zip(stored, ids, strict=True)]
    )
    for index, item, msg_id, position in zip(new, stored, ids, positions, strict=True):
        answers[index] = (msg_id, position, members[item.conversation_id])
    return answers


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
