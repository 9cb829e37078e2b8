"""Client frames: JSON text -> dataclasses, with a clear error for anything else.

Every frame type and close code is documented in docs/protocol.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from app.lib.ids import MAX_ID as MAX_ID
from app.vocab import CloseCode

# Close codes (app/vocab.py: the hub triggers two of them too).
CLOSE_NORMAL = CloseCode.NORMAL
CLOSE_TOO_BIG = CloseCode.TOO_BIG
CLOSE_HEARTBEAT = CloseCode.HEARTBEAT
CLOSE_SESSION_ENDED = CloseCode.SESSION_ENDED
CLOSE_SLOW_CONSUMER = CloseCode.SLOW_CONSUMER
CLOSE_RESYNC = CloseCode.RESYNC

# JSON may spell a lone surrogate ("\ud800"): Python then holds a string UTF-8 cannot encode,
# and echoing it (an error frame's ref) would fail the send and close the socket with 1011.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class FrameError(ValueError):
    """A frame the server cannot use; answered with an error frame, the socket stays open."""

    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref


@dataclass(frozen=True)
class Send:
    client_msg_id: str
    conversation_id: int
    body: str
    reply_to: int | None


@dataclass(frozen=True)
class Sync:
    since: int | None  # a position (v2)
    after_id: int | None = None  # a message id (v1 clients)


@dataclass(frozen=True)
class Watermark:
    kind: str  # "read" | "delivered"
    conversation_id: int
    up_to_id: int


@dataclass(frozen=True)
class Typing:
    conversation_id: int
    typing: bool


@dataclass(frozen=True)
class Pong:
    pass


ClientFrame = Send | Sync | Watermark | Typing | Pong


def _id(obj: dict[str, Any], key: str, *, optional: bool = False, zero_ok: bool = False) -> int | None:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < (0 if zero_ok else 1) or value > MAX_ID:
        raise FrameError("bad_field", f"{key} must be a positive integer id.")
    return value


def parse_frame(raw: str | bytes) -> ClientFrame:
    """Parse one client frame or raise ``FrameError``."""
    if isinstance(raw, bytes):
        raise FrameError("bad_frame", "Frames are JSON text, not binary.")
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise FrameError("bad_json", "The frame is not valid JSON.") from exc
    if not isinstance(obj, dict):
        raise FrameError("bad_frame", "A frame is a JSON object with a type.")
    kind = obj.get("type")
    if kind == "send":
        # client_msg_id is echoed as the ref of any error about this frame (the body is
        # not: the action refuses one with a lone surrogate), so it must be clean text.
        client_msg_id = obj.get("client_msg_id")
        if isinstance(client_msg_id, str) and _SURROGATE.search(client_msg_id):
            raise FrameError("bad_client_msg_id", "client_msg_id must be a UUID string.")
        ref = client_msg_id if isinstance(client_msg_id, str) else None
        try:
            if not isinstance(client_msg_id, str):
                raise FrameError("bad_field", "client_msg_id must be a UUID string.")
            if not isinstance(obj.get("body"), str):
                raise FrameError("bad_field", "body must be a string.")
            conversation_id = _id(obj, "conversation_id")
            reply_to = _id(obj, "reply_to", optional=True)
        except FrameError as exc:
            raise FrameError(exc.code, exc.message, ref) from None
        assert conversation_id is not None
        return Send(obj["client_msg_id"], conversation_id, obj["body"], reply_to)
    if kind == "sync":
        if ("since" in obj) == ("after_id" in obj):
            raise FrameError("bad_field", "sync needs since (or, from older clients, after_id).")
        if "since" in obj:
            return Sync(_id(obj, "since", zero_ok=True))
        return Sync(None, _id(obj, "after_id", zero_ok=True))
    if kind in ("read", "delivered"):
        conversation_id = _id(obj, "conversation_id")
        up_to = _id(obj, "up_to_id")
        assert conversation_id is not None and up_to is not None
        return Watermark(kind, conversation_id, up_to)
    if kind == "typing":
        conversation_id = _id(obj, "conversation_id")
        if not isinstance(obj.get("typing"), bool):
            raise FrameError("bad_field", "typing must be true or false.")
        assert conversation_id is not None
        return Typing(conversation_id, obj["typing"])
    if kind == "pong":
        return Pong()
    raise FrameError("unknown_type", "Unknown frame type.")


def dumps(frame: dict[str, Any]) -> str:
    """Return a frame as JSON text that is always valid UTF-8 to send.

    A lone surrogate (none should get this far: text is checked where it comes in) is
    written as a ``\\uXXXX`` escape instead of failing the send.
    """
    text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
    if not text.isascii() and _SURROGATE.search(text):
        text = json.dumps(frame, separators=(",", ":"))
    return text


def error_frame(code: str, message: str, ref: str | None = None, **extra: Any) -> str:
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if ref is not None and not _SURROGATE.search(ref):
        frame["ref"] = ref
    frame.update(extra)
    return dumps(frame)
