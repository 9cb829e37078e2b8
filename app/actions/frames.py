"""The frames that events carry to clients, built as the declared types of ``app/protocol.py``
(documented in docs/protocol.md) and kept as plain dicts: events travel through the broker."""

from __future__ import annotations

from typing import Any

import msgspec

from app.protocol import ConversationFrame, ConversationInfo, MessageFrame, ReceiptFrame, message_of
from app.records import MessageRecord


def message_dict(m: MessageRecord) -> dict[str, Any]:
    return msgspec.to_builtins(message_of(m))  # type: ignore[no-any-return]


def message_frame(m: MessageRecord, position: int) -> dict[str, Any]:
    return msgspec.to_builtins(MessageFrame(position=position, message=message_of(m)))  # type: ignore[no-any-return]


def receipt_frame(conversation_id: int, user_id: int, read_id: int, delivered_id: int, position: int) -> dict[str, Any]:
    frame = ReceiptFrame(
        position=position, conversation_id=conversation_id, user_id=user_id, read_id=read_id, delivered_id=delivered_id
    )
    return msgspec.to_builtins(frame)  # type: ignore[no-any-return]


def conversation_frame(
    position: int,
    event: str,
    conversation_id: int,
    kind: str,
    title: str,
    *,
    user_ids: list[int] | None = None,
    history_from_id: int | None = None,
) -> dict[str, Any]:
    frame = ConversationFrame(
        position=position, event=event, conversation=ConversationInfo(id=conversation_id, kind=kind, title=title),
        user_ids=user_ids, history_from_id=history_from_id,
    )
    return msgspec.to_builtins(frame)  # type: ignore[no-any-return]


def stored_conversation_frame(position: int, data: dict[str, Any]) -> dict[str, Any]:
    """A conversation change read back from the stream (``data``: its frame without type and
    position), checked against the declared type."""
    frame = msgspec.convert({**data, "type": "conversation", "position": position}, ConversationFrame)
    return msgspec.to_builtins(frame)  # type: ignore[no-any-return]
