"""Messages: insert in id order, pages of history, what a member missed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Select, bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.lib.clock import as_utc
from app.records import MessageRecord
from app.store.db import insert_returning, select_any_of
from app.store.models import Conversation, Message, User
from app.vocab import MessageKind

_Sender = aliased(User)
_Reply = aliased(Message)
_ReplySender = aliased(User)


def message_select() -> Select[Message, str, str, str]:
    return (
        select(Message, _Sender.display_name, _Reply.body, _ReplySender.display_name)
        .outerjoin(_Sender, _Sender.id == Message.sender_id)
        .outerjoin(_Reply, _Reply.id == Message.reply_to_id)
        .outerjoin(_ReplySender, _ReplySender.id == _Reply.sender_id)
    )


def to_record(row: Any) -> MessageRecord:
    msg, sender_name, reply_body, reply_sender = row
    return MessageRecord(
        id=msg.id,
        conversation_id=msg.conversation_id,
        sender_id=msg.sender_id,
        sender_name=sender_name or "",
        kind=msg.kind,
        body=msg.body,
        created_at=as_utc(msg.created_at),
        client_msg_id=msg.client_msg_id,
        reply_to_id=msg.reply_to_id,
        reply_sender_name=reply_sender,
        reply_body=reply_body,
    )



async def senders_between(s: AsyncSession, conversation_id: int, after_id: int, up_to_id: int) -> list[int]:
    """Who sent the text messages with ids in (after_id, up_to_id] of a conversation."""
    rows = await s.execute(
        select(Message.sender_id)
        .where(
            Message.conversation_id == conversation_id,
            Message.id > after_id,
            Message.id <= up_to_id,
            Message.kind == MessageKind.TEXT,
        )
        .distinct()
    )
    return [uid for uid in rows.scalars() if uid is not None]



async def message_by_client_id(
    s: AsyncSession, sender_id: int, client_msg_id: str
) -> MessageRecord | None:
    row = (
        await s.execute(
            message_select().where(
                Message.sender_id == sender_id, Message.client_msg_id == client_msg_id
            )
        )
    ).first()
    return to_record(row) if row else None


async def message_records(s: AsyncSession, message_ids: list[int]) -> list[MessageRecord]:
    """The messages with these ids (those that still exist), in id order."""
    rows = await s.execute(message_select().where(Message.id.in_(sorted(set(message_ids)))).order_by(Message.id))
    return [to_record(r) for r in rows.all()]


async def stored_client_ids(s: AsyncSession, pairs: list[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which (sender_id, client_msg_id) pairs are stored already (one query on the unique
    index: the duplicate check of a batch of sends)."""
    rows = await select_any_of(
        await s.connection(), "SELECT sender_id, client_msg_id FROM messages WHERE 1 = 1",
        ("sender_id =", "client_msg_id ="), pairs,
    )
    return {(int(u), str(c)) for u, c in rows}


async def text_senders_in(s: AsyncSession, ranges: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """(conversation_id, id, sender_id) of the text messages with ids in (after_id, up_to_id]
    of each (conversation_id, after_id, up_to_id), in one query (a range search of the
    (conversation_id, id) index per range)."""
    rows = await select_any_of(
        await s.connection(),
        # MessageKind.TEXT, spelled out: a constant of the statement, not a parameter.
        "SELECT conversation_id, id, sender_id FROM messages WHERE kind = 'text' AND sender_id IS NOT NULL",
        ("conversation_id =", "id >", "id <="), ranges,
    )
    return [(int(c), int(i), int(u)) for c, i, u in rows]


async def insert_messages(s: AsyncSession, rows: list[dict[str, Any]]) -> list[int]:
    """Insert many messages (the columns of ``insert_message``) in one multi-row INSERT and
    move each conversation's ``last_message_id``; their ids, in the rows' order."""
    if not rows:
        return []
    await commit_in_position_order(s)
    conn = await s.connection()
    table = Message.__table__
    ids = [int(i) for i in await insert_returning(conn, table, table.c.id, [table.c.sender_id, table.c.client_msg_id], rows)]
    newest: dict[int, int] = {}
    for row, msg_id in zip(rows, ids, strict=True):
        newest[row["conversation_id"]] = max(newest.get(row["conversation_id"], 0), msg_id)
    last = bindparam("b_last", type_=BigInteger)
    await conn.execute(
        update(Conversation)
        .where(Conversation.id == bindparam("b_conversation"), Conversation.last_message_id < last)
        .values(last_message_id=last),
        [{"b_conversation": c, "b_last": i} for c, i in sorted(newest.items())],
    )
    return ids


async def message_record(s: AsyncSession, message_id: int) -> MessageRecord | None:
    row = (await s.execute(message_select().where(Message.id == message_id))).first()
    return to_record(row) if row else None


# Any constant shared by every MedChat process: the key of the advisory lock below.
_STREAM_ORDER_LOCK = 0x6D656463  # "medc"


async def commit_in_position_order(s: AsyncSession) -> None:
    """Make message ids and stream positions become visible in the order they were given.

    Resume means "everything after position P": if position 101 could commit before 100, a
    client that saw 101 would never ask for 100. SQLite has one writer at a time, so its
    ids already commit in order. On PostgreSQL, transactions that insert messages or
    changes take one transaction-scoped advisory lock, held until commit; ids and
    positions are drawn after it. A session takes it once.
    """
    if s.info.get("stream_order_lock") or s.get_bind().dialect.name != "postgresql":
        return
    await s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _STREAM_ORDER_LOCK})
    # Held until this transaction ends; every session here is one transaction (store.db).
    s.info["stream_order_lock"] = True


async def insert_message(
    s: AsyncSession,
    *,
    conversation_id: int,
    sender_id: int | None,
    kind: str,
    body: str,
    client_msg_id: str | None,
    reply_to_id: int | None,
    now: datetime,
) -> int:
    """Insert a message and move the conversation's ``last_message_id``; return the id
    (``insert_messages`` with one row: system lines; sends go in batches)."""
    [msg_id] = await insert_messages(s, [{
        "conversation_id": conversation_id, "sender_id": sender_id, "kind": kind, "body": body,
        "client_msg_id": client_msg_id, "reply_to_id": reply_to_id, "created_at": now,
    }])
    return msg_id


async def messages_page(
    s: AsyncSession, conversation_id: int, *, before_id: int | None, limit: int, history_from: int = 0
) -> tuple[list[MessageRecord], bool]:
    """Up to ``limit`` messages before ``before_id`` (newest page when None), oldest first,
    and whether older ones exist. Keyset pagination on id; nothing at or below ``history_from``."""
    stmt = (
        message_select()
        .where(Message.conversation_id == conversation_id, Message.id > history_from)
        .order_by(Message.id.desc())
        .limit(limit + 1)
    )
    if before_id is not None:
        stmt = stmt.where(Message.id < before_id)
    rows = [_hide_old_reply(to_record(r), history_from) for r in (await s.execute(stmt)).all()]
    has_more = len(rows) > limit
    return list(reversed(rows[:limit])), has_more


def _hide_old_reply(rec: MessageRecord, history_from: int) -> MessageRecord:
    """A reply quoting a message from before the reader joined shows no quote text."""
    return rec.seen_from(history_from)
