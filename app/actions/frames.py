"""The JSON frames that events carry to clients (documented in docs/protocol.md)."""

from __future__ import annotations

from typing import Any

from app.lib.text import preview
from app.records import MessageRecord


def message_dict(m: MessageRecord) -> dict[str, Any]:
    return {
        "id": m.id,
        "conversation_id": m.conversation_id,
        "sender_id": m.sender_id,
        "sender_name": m.sender_name,
        "kind": m.kind,
        "body": m.body,
        "created_at": m.created_at.isoformat(),
        "client_msg_id": m.client_msg_id,
        "reply_to": (
            {"id": m.reply_to_id, "sender_name": m.reply_sender_name or "", "preview": preview(m.reply_body or "")}
            if m.reply_to_id
            else None
        ),
    }


def message_frame(m: MessageRecord, position: int) -> dict[str, Any]:
    return {"type": "message", "position": position, "message": message_dict(m)}


def receipt_frame(conversation_id: int, user_id: int, read_id: int, delivered_id: int, position: int) -> dict[str, Any]:
    return {
        "type": "receipt",
        "position": position,
        "conversation_id": conversation_id,
        "user_id": user_id,
        "read_id": read_id,
        "delivered_id": delivered_id,
    }


def conversation_frame(event: str, conversation_id: int, kind: str, title: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "conversation",
        "event": event,
        "conversation": {"id": conversation_id, "kind": kind, "title": title},
        **extra,
    }
