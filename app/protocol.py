"""The /ws wire protocol (v2): every frame in both directions is a declared type here.

docs/protocol.md documents each of them; tests/ws/test_protocol_schema.py checks that the
two agree (types, field names, optional fields, close codes).

- Client frames are tagged ``msgspec`` Structs (tag field ``"type"``) decoded by one
  ``msgspec.json.Decoder`` of their union (``parse_frame``). A frame that decoder refuses
  takes a slow path that gives the precise error (``bad_json``, ``bad_frame``,
  ``unknown_type``, ``bad_field``, ``bad_client_msg_id``, with ``ref``): errors are rare,
  valid frames are the common case and stay on the fast path.
- Server frames are tagged Structs too (``*Frame``); ``encode`` writes any of them as
  compact JSON text that is always valid UTF-8.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Final

import msgspec

from app.lib.ids import MAX_ID as MAX_ID
from app.lib.text import preview
from app.records import MessageRecord
from app.vocab import CloseCode

# --- close codes ------------------------------------------------------------------------------
# app/vocab.py holds the enum (the hub closes sockets too); 1011 is the WebSocket standard's.
CLOSE_NORMAL = CloseCode.NORMAL
CLOSE_TOO_BIG = CloseCode.TOO_BIG
CLOSE_SERVER_ERROR: Final = 1011
CLOSE_HEARTBEAT = CloseCode.HEARTBEAT
CLOSE_SESSION_ENDED = CloseCode.SESSION_ENDED
CLOSE_SLOW_CONSUMER = CloseCode.SLOW_CONSUMER
CLOSE_RESYNC = CloseCode.RESYNC  # reserved: a client too far behind gets a `resync` frame
CLOSE_CODES: Final = frozenset({*(int(code) for code in CloseCode), CLOSE_SERVER_ERROR})

# --- value types ------------------------------------------------------------------------------
Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]  # a row id: 1 .. 2**63-1 (bools are not ints)
IdOrZero = Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]  # a watermark / "after" id, 0 = none
Position = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]  # one change's place in the stream
PositionOrZero = Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]  # "after P", 0 = from the start

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


# --- client -> server -------------------------------------------------------------------------


class _ClientFrame(msgspec.Struct, tag_field="type", frozen=True):
    """A frame the client sends. Unknown fields are ignored."""


class Send(_ClientFrame, tag="send", frozen=True):
    client_msg_id: str
    conversation_id: Id
    body: str
    reply_to: Id | None = None


class Sync(_ClientFrame, tag="sync", frozen=True):
    """Resume: ``since`` a position (v2) or, legacy, ``after_id`` a message id. Exactly one."""

    since: PositionOrZero | None = None
    after_id: IdOrZero | None = None


class Watermark(_ClientFrame, frozen=True):
    """``read`` / ``delivered``: move my watermark in a conversation up to ``up_to_id``."""

    conversation_id: Id
    up_to_id: Id

    @property
    def kind(self) -> str:
        """``"read"`` or ``"delivered"``: the frame's type."""
        return str(self.__struct_config__.tag)


class Read(Watermark, tag="read", frozen=True):
    pass


class Delivered(Watermark, tag="delivered", frozen=True):
    pass


class Typing(_ClientFrame, tag="typing", frozen=True):
    conversation_id: Id
    typing: bool


class Pong(_ClientFrame, tag="pong", frozen=True):
    pass


ClientFrame = Send | Sync | Read | Delivered | Typing | Pong
CLIENT_FRAMES: Final[tuple[type[_ClientFrame], ...]] = (Send, Sync, Read, Delivered, Typing, Pong)
_CLIENT_TAGS: Final = frozenset(str(cls.__struct_config__.tag) for cls in CLIENT_FRAMES)
_client_decoder: Final = msgspec.json.Decoder(ClientFrame)

# bad_field messages by field name (anything else: the generic one).
_FIELD_MESSAGES: Final = {
    "client_msg_id": "client_msg_id must be a UUID string.",
    "body": "body must be a string.",
    "typing": "typing must be true or false.",
    "since": "since must be a position (an integer >= 0).",
    "after_id": "after_id must be a positive integer id.",
    "conversation_id": "conversation_id must be a positive integer id.",
    "up_to_id": "up_to_id must be a positive integer id.",
    "reply_to": "reply_to must be a positive integer id.",
}
_FIELD_IN_ERROR = re.compile(r"at `\$\.(\w+)`|missing required field `(\w+)`")


def parse_frame(raw: str | bytes) -> ClientFrame:
    """Parse one client frame or raise ``FrameError``."""
    if isinstance(raw, bytes):
        raise FrameError("bad_frame", "Frames are JSON text, not binary.")
    try:
        frame = _client_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        frame = _parse_refused(raw)
    if isinstance(frame, Sync) and (frame.since is None) == (frame.after_id is None):
        raise FrameError("bad_field", "sync takes exactly one of since and after_id.")
    return frame


def _parse_refused(raw: str) -> ClientFrame:
    """The frame the fast decoder refused, parsed as v1 did: the precise error, or the frame.

    The decoder refuses more than errors: a lone surrogate escape (valid JSON, not UTF-8) in
    a body or an ignored field is a frame, and a duplicate key is read as its last value.
    """
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise FrameError("bad_json", "The frame is not valid JSON.") from exc
    if not isinstance(obj, dict):
        raise FrameError("bad_frame", "A frame is a JSON object with a type.")
    kind = obj.get("type")
    if not isinstance(kind, str) or kind not in _CLIENT_TAGS:
        raise FrameError("unknown_type", "Unknown frame type.")
    ref = None
    if kind == "send":
        # client_msg_id is echoed as the ref of any error about this frame (the body is
        # not: the action refuses one with a lone surrogate), so it must be clean text.
        client_msg_id = obj.get("client_msg_id")
        if isinstance(client_msg_id, str):
            if _SURROGATE.search(client_msg_id):
                raise FrameError("bad_client_msg_id", "client_msg_id must be a UUID string.")
            ref = client_msg_id
    # msgspec cannot look at a key or a misplaced string holding a lone surrogate (it raises
    # UnicodeEncodeError): validate a clean copy, then put the original strings back.
    clean = {
        key: _SURROGATE.sub("\ufffd", value) if isinstance(value, str) else value
        for key, value in obj.items()
        if not _SURROGATE.search(key)
    }
    try:
        frame: ClientFrame = msgspec.convert(clean, ClientFrame)
    except (msgspec.ValidationError, UnicodeEncodeError, RecursionError) as exc:
        found = _FIELD_IN_ERROR.search(str(exc))
        field = (found.group(1) or found.group(2)) if found else ""
        raise FrameError("bad_field", _FIELD_MESSAGES.get(field, "A field has the wrong type."), ref) from None
    originals = {name: obj[name] for name in frame.__struct_fields__ if isinstance(obj.get(name), str)}
    return msgspec.structs.replace(frame, **originals) if originals else frame


# --- server -> client -------------------------------------------------------------------------


class _ServerFrame(msgspec.Struct, tag_field="type", frozen=True, kw_only=True, omit_defaults=True):
    """A frame the server sends. A field with a default (None) is left out while unset."""


class ReplyTo(msgspec.Struct, frozen=True, kw_only=True):
    """The quoted message: empty ``sender_name``/``preview`` when it is before my history."""

    id: Id
    sender_name: str
    preview: str


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """One message (text or system line) as every frame carries it."""

    id: Id
    conversation_id: Id
    sender_id: Id | None  # None: a system line
    sender_name: str
    kind: str  # MessageKind: "text" | "system"
    body: str
    created_at: str  # ISO 8601 UTC
    client_msg_id: str | None
    reply_to: ReplyTo | None


class PresenceUser(msgspec.Struct, frozen=True, kw_only=True):
    user_id: Id
    online: bool
    last_seen: str | None  # ISO 8601 UTC; None while online or never seen


class ConversationInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: Id
    kind: str  # ConversationKind: "direct" | "group"
    title: str


class HelloFrame(_ServerFrame, tag="hello", frozen=True):
    user_id: Id
    socket_id: str
    heartbeat: float  # seconds
    max_frame: int  # bytes


class PresenceSnapshotFrame(_ServerFrame, tag="presence_snapshot", frozen=True):
    users: list[PresenceUser]


class PresenceFrame(_ServerFrame, tag="presence", frozen=True):
    user_id: Id
    online: bool
    last_seen: str | None


class PresenceBatchFrame(_ServerFrame, tag="presence_batch", frozen=True):
    users: list[PresenceUser]


class MessageFrame(_ServerFrame, tag="message", frozen=True):
    position: Position
    message: Message


class AckFrame(_ServerFrame, tag="ack", frozen=True):
    client_msg_id: str
    message: Message
    duplicate: bool
    position: Position


class ReceiptFrame(_ServerFrame, tag="receipt", frozen=True):
    position: Position
    conversation_id: Id
    user_id: Id
    read_id: IdOrZero
    delivered_id: IdOrZero


class ConversationFrame(_ServerFrame, tag="conversation", frozen=True):
    position: Position
    event: str  # "created" | "renamed" | "member_added" | "member_removed"
    conversation: ConversationInfo
    user_ids: list[Id] | None = None
    history_from_id: IdOrZero | None = None  # member_added: the new members' history floor


Change = MessageFrame | ReceiptFrame | ConversationFrame  # the frames the stream carries


class SyncFrame(_ServerFrame, tag="sync", frozen=True):
    """One page of a resume. ``messages``/``last_id`` only for a legacy (v1) resume."""

    changes: list[Change]
    done: bool
    position: PositionOrZero
    messages: list[Message] | None = None
    last_id: IdOrZero | None = None


class ResyncFrame(_ServerFrame, tag="resync", frozen=True):
    reason: str


class SyncNeededFrame(_ServerFrame, tag="sync_needed", frozen=True):
    pass


class TypingFrame(_ServerFrame, tag="typing", frozen=True):
    conversation_id: Id
    user_id: Id
    name: str
    typing: bool
    ttl: float  # seconds


class PingFrame(_ServerFrame, tag="ping", frozen=True):
    pass


class ErrorFrame(_ServerFrame, tag="error", frozen=True):
    code: str
    message: str
    ref: str | None = None
    retry_after: float | None = None


ServerFrame = (
    HelloFrame | PresenceSnapshotFrame | PresenceFrame | PresenceBatchFrame | MessageFrame | AckFrame
    | SyncFrame | ResyncFrame | SyncNeededFrame | ReceiptFrame | TypingFrame | ConversationFrame
    | PingFrame | ErrorFrame
)
SERVER_FRAMES: Final[tuple[type[_ServerFrame], ...]] = (
    HelloFrame, PresenceSnapshotFrame, PresenceFrame, PresenceBatchFrame, MessageFrame, AckFrame,
    SyncFrame, ResyncFrame, SyncNeededFrame, ReceiptFrame, TypingFrame, ConversationFrame,
    PingFrame, ErrorFrame,
)
_server_decoder: Final = msgspec.json.Decoder(ServerFrame)
_encoder: Final = msgspec.json.Encoder()


def decode_server(raw: str | bytes) -> ServerFrame:
    """Parse a server frame (clients and tests); raises ``msgspec.DecodeError``/``ValidationError``."""
    return _server_decoder.decode(raw)


def encode(frame: msgspec.Struct | dict[str, Any]) -> str:
    """Return a frame as compact JSON text that is always valid UTF-8 to send.

    A lone surrogate (none should get this far: text is checked where it comes in) is
    written as a ``\\uXXXX`` escape instead of failing the send.
    """
    try:
        return _encoder.encode(frame).decode()
    except UnicodeEncodeError:
        return json.dumps(msgspec.to_builtins(frame), separators=(",", ":"))


dumps = encode  # v1's name: a dict frame is encoded the same way


def error_frame(code: str, message: str, ref: str | None = None, **extra: Any) -> str:
    """The ``error`` frame, encoded; a ``ref`` that is not clean text is left out.

    ``retry_after`` is the one declared extra; any other keyword is passed through as is.
    """
    retry_after = extra.pop("retry_after", None)
    frame = ErrorFrame(
        code=code, message=message, ref=ref if ref is None or not _SURROGATE.search(ref) else None,
        retry_after=retry_after,
    )
    if extra:
        return encode({**msgspec.to_builtins(frame), **extra})
    return encode(frame)


# --- constructors -----------------------------------------------------------------------------


def message_of(m: MessageRecord) -> Message:
    """The wire form of a stored message (as the recipient may see it: ``MessageRecord.seen_from``)."""
    return Message(
        id=m.id,
        conversation_id=m.conversation_id,
        sender_id=m.sender_id,
        sender_name=m.sender_name,
        kind=m.kind,
        body=m.body,
        created_at=m.created_at.isoformat(),
        client_msg_id=m.client_msg_id,
        reply_to=(
            ReplyTo(id=m.reply_to_id, sender_name=m.reply_sender_name or "", preview=preview(m.reply_body or ""))
            if m.reply_to_id
            else None
        ),
    )


def sync_page(changes: list[Change], *, done: bool, position: int, legacy_last_id: int | None = None) -> SyncFrame:
    """A ``sync`` page; with ``legacy_last_id`` (a v1 resume) also ``messages`` and ``last_id``."""
    if legacy_last_id is None:
        return SyncFrame(changes=changes, done=done, position=position)
    messages = [change.message for change in changes if isinstance(change, MessageFrame)]
    return SyncFrame(changes=changes, done=done, position=position, messages=messages, last_id=legacy_last_id)
