"""The wire protocol as declared types (app/protocol.py) against docs/protocol.md.

One schema test per frame type (the idea of Zulip's event_schema): a valid example of every
server frame encodes to exactly its documented keys and decodes back; every client frame
type has valid and invalid examples. Then the tables of docs/protocol.md are parsed and
compared with the declared types, both ways, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from app import protocol as p
from app.actions.frames import message_dict
from app.records import MessageRecord

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")

MESSAGE = p.Message(
    id=41, conversation_id=7, sender_id=3, sender_name="Alice", kind="text", body="K+ 3.1 \u00e9",
    created_at="2026-01-05T09:00:00+00:00", client_msg_id="6f1c0e4e-8d4b-4a53-9a51-7d1e1f0b2c3d",
    reply_to=p.ReplyTo(id=40, sender_name="Bob", preview="Potassium?"),
)
MESSAGE_JSON: dict[str, Any] = {
    "id": 41, "conversation_id": 7, "sender_id": 3, "sender_name": "Alice", "kind": "text", "body": "K+ 3.1 \u00e9",
    "created_at": "2026-01-05T09:00:00+00:00", "client_msg_id": "6f1c0e4e-8d4b-4a53-9a51-7d1e1f0b2c3d",
    "reply_to": {"id": 40, "sender_name": "Bob", "preview": "Potassium?"},
}
SYSTEM = p.Message(
    id=42, conversation_id=7, sender_id=None, sender_name="", kind="system", body="Alice added Bob",
    created_at="2026-01-05T09:01:00+00:00", client_msg_id=None, reply_to=None,
)
SYSTEM_JSON: dict[str, Any] = {
    "id": 42, "conversation_id": 7, "sender_id": None, "sender_name": "", "kind": "system", "body": "Alice added Bob",
    "created_at": "2026-01-05T09:01:00+00:00", "client_msg_id": None, "reply_to": None,
}
INFO = p.ConversationInfo(id=7, kind="group", title="Ward 3")
INFO_JSON = {"id": 7, "kind": "group", "title": "Ward 3"}

# (frame, its JSON exactly): every server frame type, optional fields set and unset.
SERVER_EXAMPLES: list[tuple[msgspec.Struct, dict[str, Any]]] = [
    (p.HelloFrame(user_id=3, socket_id="ab12", heartbeat=20.0, max_frame=65536),
     {"type": "hello", "user_id": 3, "socket_id": "ab12", "heartbeat": 20.0, "max_frame": 65536}),
    (p.PresenceSnapshotFrame(users=[p.PresenceUser(user_id=4, online=False, last_seen="2026-01-05T08:00:00+00:00"),
                                    p.PresenceUser(user_id=5, online=True, last_seen=None)]),
     {"type": "presence_snapshot", "users": [{"user_id": 4, "online": False, "last_seen": "2026-01-05T08:00:00+00:00"},
                                             {"user_id": 5, "online": True, "last_seen": None}]}),
    (p.PresenceFrame(user_id=4, online=True, last_seen=None),
     {"type": "presence", "user_id": 4, "online": True, "last_seen": None}),
    (p.PresenceBatchFrame(users=[p.PresenceUser(user_id=4, online=True, last_seen=None)]),
     {"type": "presence_batch", "users": [{"user_id": 4, "online": True, "last_seen": None}]}),
    (p.MessageFrame(position=90, message=MESSAGE),
     {"type": "message", "position": 90, "message": MESSAGE_JSON}),
    (p.MessageFrame(position=91, message=SYSTEM),
     {"type": "message", "position": 91, "message": SYSTEM_JSON}),
    (p.AckFrame(client_msg_id="c-1", message=MESSAGE, duplicate=False, position=90),
     {"type": "ack", "client_msg_id": "c-1", "message": MESSAGE_JSON, "duplicate": False, "position": 90}),
    (p.SyncFrame(changes=[p.MessageFrame(position=90, message=MESSAGE),
                          p.ReceiptFrame(position=92, conversation_id=7, user_id=4, read_id=41, delivered_id=41),
                          p.ConversationFrame(position=93, event="renamed", conversation=INFO)],
                 done=True, position=93),
     {"type": "sync", "changes": [{"type": "message", "position": 90, "message": MESSAGE_JSON},
                                  {"type": "receipt", "position": 92, "conversation_id": 7, "user_id": 4, "read_id": 41, "delivered_id": 41},
                                  {"type": "conversation", "position": 93, "event": "renamed", "conversation": INFO_JSON}],
      "done": True, "position": 93}),
    (p.SyncFrame(changes=[p.MessageFrame(position=90, message=MESSAGE)], done=False, position=90, messages=[MESSAGE], last_id=41),
     {"type": "sync", "changes": [{"type": "message", "position": 90, "message": MESSAGE_JSON}], "done": False, "position": 90,
      "messages": [MESSAGE_JSON], "last_id": 41}),
    (p.SyncFrame(changes=[], done=True, position=0),
     {"type": "sync", "changes": [], "done": True, "position": 0}),
    (p.ResyncFrame(reason="too_far_behind"), {"type": "resync", "reason": "too_far_behind"}),
    (p.SyncNeededFrame(), {"type": "sync_needed"}),
    (p.ReceiptFrame(position=92, conversation_id=7, user_id=4, read_id=0, delivered_id=41),
     {"type": "receipt", "position": 92, "conversation_id": 7, "user_id": 4, "read_id": 0, "delivered_id": 41}),
    (p.TypingFrame(conversation_id=7, user_id=4, name="Bob", typing=True, ttl=6.0),
     {"type": "typing", "conversation_id": 7, "user_id": 4, "name": "Bob", "typing": True, "ttl": 6.0}),
    (p.ConversationFrame(position=93, event="created", conversation=INFO),
     {"type": "conversation", "position": 93, "event": "created", "conversation": INFO_JSON}),
    (p.ConversationFrame(position=94, event="member_added", conversation=INFO, user_ids=[5, 6], history_from_id=41),
     {"type": "conversation", "position": 94, "event": "member_added", "conversation": INFO_JSON, "user_ids": [5, 6], "history_from_id": 41}),
    (p.ConversationFrame(position=95, event="member_removed", conversation=INFO, user_ids=[5]),
     {"type": "conversation", "position": 95, "event": "member_removed", "conversation": INFO_JSON, "user_ids": [5]}),
    (p.PingFrame(), {"type": "ping"}),
    (p.ErrorFrame(code="not_found", message="No such conversation."),
     {"type": "error", "code": "not_found", "message": "No such conversation."}),
    (p.ErrorFrame(code="rate_limited", message="Slow down.", ref="c-1", retry_after=2.5),
     {"type": "error", "code": "rate_limited", "message": "Slow down.", "ref": "c-1", "retry_after": 2.5}),
]


def _tag(cls: type[msgspec.Struct]) -> str:
    return str(cls.__struct_config__.tag)


def _fields(cls: type[msgspec.Struct]) -> dict[str, bool]:
    """Field name -> optional (has a default, left out while unset)."""
    return {f.name: not f.required for f in msgspec.structs.fields(cls)}


@pytest.mark.parametrize(("frame", "expected"), SERVER_EXAMPLES, ids=lambda v: getattr(v, "__class__", type(v)).__name__)
def test_server_frame_encodes_to_exactly_its_keys_and_decodes_back(frame: msgspec.Struct, expected: dict[str, Any]) -> None:
    text = p.encode(frame)
    assert json.loads(text) == expected
    # Byte for byte what v1's json.dumps wrote: compact, type first, fields in order, no escapes.
    assert text == json.dumps(expected, separators=(",", ":"), ensure_ascii=False)
    assert p.decode_server(text) == frame


def test_every_server_frame_type_has_an_example() -> None:
    assert {_tag(type(frame)) for frame, _ in SERVER_EXAMPLES} == {_tag(cls) for cls in p.SERVER_FRAMES}


@pytest.mark.parametrize("raw", [
    '{"type":"message","message":{}}',  # no position
    '{"type":"message","position":0,"message":' + json.dumps(MESSAGE_JSON) + "}",  # positions start at 1
    '{"type":"receipt","position":1,"conversation_id":7,"user_id":4,"read_id":-1,"delivered_id":0}',
    '{"type":"sync","changes":[{"type":"typing","conversation_id":7,"user_id":4,"name":"B","typing":true,"ttl":6}],"done":true,"position":1}',
    '{"type":"ack","client_msg_id":"c","message":' + json.dumps(MESSAGE_JSON) + ',"duplicate":"no","position":1}',
    '{"type":"conversation","position":1,"event":"created","conversation":{"id":7,"kind":"group"}}',
    '{"type":"pong"}',  # a client frame
])
def test_server_frames_that_break_the_schema_do_not_decode(raw: str) -> None:
    with pytest.raises(msgspec.ValidationError):
        p.decode_server(raw)


def test_encode_is_always_utf8_and_leaves_clean_text_unescaped() -> None:
    lone = p.MessageFrame(position=1, message=msgspec.structs.replace(MESSAGE, body="a\ud800b"))
    text = p.encode(lone)
    text.encode("utf-8")  # no UnicodeEncodeError: the send cannot fail
    assert json.loads(text)["message"]["body"] == "a\ud800b"  # written as an escape
    clean = p.encode(p.MessageFrame(position=1, message=msgspec.structs.replace(MESSAGE, body="caf\u00e9 \U0001f489")))
    assert "caf\u00e9 \U0001f489" in clean
    # dumps keeps v1's semantics for plain dicts, and is the same encoder.
    assert p.dumps({"type": "x", "text": "caf\u00e9"}) == '{"type":"x","text":"caf\u00e9"}'
    assert p.dumps({"type": "x", "text": "\udfff"}).encode("utf-8") == b'{"type":"x","text":"\\udfff"}'


def test_error_frame_leaves_out_unset_and_unclean_refs() -> None:
    assert json.loads(p.error_frame("bad_json", "Nope.")) == {"type": "error", "code": "bad_json", "message": "Nope."}
    assert json.loads(p.error_frame("busy", "Later.", "9", retry_after=1.25)) == {
        "type": "error", "code": "busy", "message": "Later.", "ref": "9", "retry_after": 1.25,
    }
    assert json.loads(p.error_frame("bad_client_msg_id", "No.", "x\ud800")) == {"type": "error", "code": "bad_client_msg_id", "message": "No."}


def test_message_of_matches_the_frames_the_actions_build_today() -> None:
    record = MessageRecord(
        id=41, conversation_id=7, sender_id=3, sender_name="Alice", kind="text", body="Recheck",
        created_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC), client_msg_id="c-1",
        reply_to_id=40, reply_sender_name="Bob", reply_body="Potassium is 3.1 " + "x" * 200,
    )
    assert msgspec.to_builtins(p.message_of(record)) == message_dict(record)
    plain = MessageRecord(
        id=42, conversation_id=7, sender_id=None, sender_name="", kind="system", body="Alice added Bob",
        created_at=datetime(2026, 1, 5, 9, 1, tzinfo=UTC), client_msg_id=None,
        reply_to_id=None, reply_sender_name=None, reply_body=None,
    )
    assert msgspec.to_builtins(p.message_of(plain)) == message_dict(plain)


def test_sync_page_has_the_legacy_fields_only_for_a_legacy_resume() -> None:
    changes: list[p.Change] = [
        p.MessageFrame(position=5, message=MESSAGE),
        p.ReceiptFrame(position=6, conversation_id=7, user_id=4, read_id=41, delivered_id=41),
        p.MessageFrame(position=8, message=SYSTEM),
    ]
    assert set(json.loads(p.encode(p.sync_page(changes, done=True, position=8)))) == {"type", "changes", "done", "position"}
    legacy = json.loads(p.encode(p.sync_page(changes, done=True, position=8, legacy_last_id=42)))
    assert legacy["messages"] == [MESSAGE_JSON, SYSTEM_JSON] and legacy["last_id"] == 42
    assert [c["position"] for c in legacy["changes"]] == [5, 6, 8]


# --- client frames ----------------------------------------------------------------------------

CID = "6f1c0e4e-8d4b-4a53-9a51-7d1e1f0b2c3d"
MAX = p.MAX_ID

CLIENT_VALID: list[tuple[dict[str, Any], p.ClientFrame]] = [
    ({"type": "send", "client_msg_id": CID, "conversation_id": 7, "body": "hi"}, p.Send(CID, 7, "hi", None)),
    ({"type": "send", "client_msg_id": CID, "conversation_id": MAX, "body": "", "reply_to": 1}, p.Send(CID, MAX, "", 1)),
    ({"type": "send", "client_msg_id": CID, "conversation_id": 7, "body": "hi", "reply_to": None, "extra": [1]}, p.Send(CID, 7, "hi", None)),
    ({"type": "send", "client_msg_id": CID, "conversation_id": 7, "body": "a\ud800b"}, p.Send(CID, 7, "a\ud800b", None)),  # the action refuses it
    ({"type": "sync", "since": 0}, p.Sync(since=0)),
    ({"type": "sync", "since": MAX}, p.Sync(since=MAX)),
    ({"type": "sync", "after_id": 0}, p.Sync(after_id=0)),
    ({"type": "sync", "after_id": 12, "since": None}, p.Sync(after_id=12)),  # null is absent
    ({"type": "read", "conversation_id": 7, "up_to_id": 41}, p.Read(7, 41)),
    ({"type": "delivered", "conversation_id": 7, "up_to_id": 41}, p.Delivered(7, 41)),
    ({"type": "typing", "conversation_id": 7, "typing": False}, p.Typing(7, False)),
    ({"type": "pong"}, p.Pong()),
    ({"type": "pong", "note": "\ud800", "\udfff": 1}, p.Pong()),
]

# (frame, error code, ref)
CLIENT_INVALID: list[tuple[str | bytes | dict[str, Any], str, str | None]] = [
    ("nope", "bad_json", None),
    ('{"type":"pong"', "bad_json", None),
    ('{"type":"send","client_msg_id":"c","conversation_id":"1",', "bad_json", None),  # invalid JSON first
    (b'{"type":"pong"}', "bad_frame", None),
    ("[]", "bad_frame", None),
    ("null", "bad_frame", None),
    ({"type": "ack"}, "unknown_type", None),
    ({"type": 1}, "unknown_type", None),
    ({}, "unknown_type", None),
    ({"type": "send", "client_msg_id": "c", "conversation_id": True, "body": "x"}, "bad_field", "c"),
    ({"type": "send", "conversation_id": 0, "client_msg_id": "c", "body": "x"}, "bad_field", "c"),  # ref whatever the order
    ({"type": "send", "client_msg_id": "c", "conversation_id": MAX + 1, "body": "x"}, "bad_field", "c"),
    ({"type": "send", "client_msg_id": "c", "conversation_id": 1.0, "body": "x"}, "bad_field", "c"),
    ({"type": "send", "client_msg_id": "c", "conversation_id": 1, "body": "x", "reply_to": "2"}, "bad_field", "c"),
    ({"type": "send", "client_msg_id": "c", "conversation_id": 1}, "bad_field", "c"),
    ({"type": "send", "client_msg_id": 5, "conversation_id": 1, "body": "x"}, "bad_field", None),
    ({"type": "send", "conversation_id": "1", "client_msg_id": "\ud800", "body": "x"}, "bad_client_msg_id", None),
    ({"type": "sync"}, "bad_field", None),
    ({"type": "sync", "since": 1, "after_id": 1}, "bad_field", None),
    ({"type": "sync", "since": -1}, "bad_field", None),
    ({"type": "sync", "since": "1"}, "bad_field", None),
    ({"type": "sync", "since": True}, "bad_field", None),
    ({"type": "sync", "since": MAX + 1}, "bad_field", None),
    ({"type": "sync", "after_id": -1}, "bad_field", None),
    ({"type": "sync", "after_id": None}, "bad_field", None),
    ({"type": "read", "conversation_id": 7, "up_to_id": 0}, "bad_field", None),
    ({"type": "read", "conversation_id": 7}, "bad_field", None),
    ({"type": "delivered", "conversation_id": False, "up_to_id": 1}, "bad_field", None),
    ({"type": "typing", "conversation_id": 7, "typing": 1}, "bad_field", None),
    ({"type": "typing", "conversation_id": 7, "typing": "\ud800"}, "bad_field", None),
]


@pytest.mark.parametrize(("obj", "expected"), CLIENT_VALID)
def test_valid_client_frames(obj: dict[str, Any], expected: p.ClientFrame) -> None:
    assert p.parse_frame(json.dumps(obj)) == expected


@pytest.mark.parametrize(("raw", "code", "ref"), CLIENT_INVALID)
def test_invalid_client_frames(raw: str | bytes | dict[str, Any], code: str, ref: str | None) -> None:
    with pytest.raises(p.FrameError) as caught:
        p.parse_frame(json.dumps(raw) if isinstance(raw, dict) else raw)
    assert (caught.value.code, caught.value.ref) == (code, ref)


def test_every_client_frame_type_has_valid_and_invalid_examples() -> None:
    tags = {_tag(cls) for cls in p.CLIENT_FRAMES}
    assert {_tag(type(frame)) for _, frame in CLIENT_VALID} == tags
    assert {raw["type"] for raw, _, _ in CLIENT_INVALID if isinstance(raw, dict) and "type" in raw} >= tags - {"pong"}  # pong has no fields


def test_field_errors_name_the_field() -> None:
    with pytest.raises(p.FrameError) as caught:
        p.parse_frame('{"type":"read","conversation_id":7,"up_to_id":"9"}')
    assert caught.value.message == "up_to_id must be a positive integer id."
    with pytest.raises(p.FrameError) as caught:
        p.parse_frame('{"type":"sync","since":1,"after_id":1}')
    assert caught.value.message == "sync takes exactly one of since and after_id."


def test_client_frames_round_trip_and_watermarks_name_their_kind() -> None:
    for _, frame in CLIENT_VALID:
        if "\ud800" not in getattr(frame, "body", ""):
            assert p.parse_frame(p.encode(frame)) == frame
    assert (p.Read(1, 2).kind, p.Delivered(1, 2).kind) == ("read", "delivered")
    assert isinstance(p.Read(1, 2), p.Watermark)


# --- docs/protocol.md and the module cannot drift apart -----------------------------------


def _section(heading: str) -> str:
    start = DOC.index(f"\n## {heading}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start:end if end != -1 else None]


def _rows(heading: str) -> list[list[str]]:
    """The rows of the table under ``heading`` (header and rule left out)."""
    lines = [line for line in _section(heading).splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def _top_level(cell: str) -> dict[str, bool]:
    """Documented field -> optional: backticked names outside (…), […] and {…}; `x`? is optional."""
    previous = None
    while previous != cell:
        previous, cell = cell, re.sub(r"\([^()]*\)|\[[^\[\]]*\]|\{[^{}]*\}", "", cell)
    return {name: bool(mark) for name, mark in re.findall(r"`(\w+)`(\?)?", cell)}


def _documented(heading: str) -> dict[str, dict[str, bool]]:
    table: dict[str, dict[str, bool]] = {}
    for row in _rows(heading):
        kind = re.fullmatch(r"`(\w+)`", row[0])
        assert kind, row
        assert kind.group(1) not in table, f"{kind.group(1)} documented twice"
        table[kind.group(1)] = _top_level(row[1])
    return table


def _declared(classes: tuple[type[msgspec.Struct], ...]) -> dict[str, dict[str, bool]]:
    return {_tag(cls): _fields(cls) for cls in classes}


@pytest.mark.parametrize(("heading", "classes"), [
    ("Server → client frames", p.SERVER_FRAMES),
    ("Client → server frames", p.CLIENT_FRAMES),
], ids=["server", "client"])
def test_the_frame_tables_and_the_declared_types_agree(heading: str, classes: tuple[type[msgspec.Struct], ...]) -> None:
    documented, declared = _documented(heading), _declared(classes)
    assert sorted(documented) == sorted(declared), "a frame type documented but not declared, or declared but not documented"
    for kind in declared:
        assert documented[kind] == declared[kind], f"{kind}: documented fields (name -> optional) differ from the declared ones"


def test_the_nested_shapes_are_documented_as_declared() -> None:
    message = re.search(r"\*Message\*: `\{(.*?)\}`", DOC, re.S)
    assert message
    inner = re.search(r"\{([^{}]*)\}", message.group(1))
    assert inner
    outer = re.sub(r"\([^()]*\)|\{[^{}]*\}", "", message.group(1))
    assert [part.strip().split(":")[0].strip() for part in outer.split(",")] == list(_fields(p.Message))
    assert [part.strip() for part in inner.group(1).split(",")] == list(_fields(p.ReplyTo))
    rows = {row[0]: row[1] for row in _rows("Server → client frames")}
    for kind, nested in (("`presence_snapshot`", p.PresenceUser), ("`presence_batch`", p.PresenceUser), ("`conversation`", p.ConversationInfo)):
        shape = re.search(r"\{([^{}]*)\}", rows[kind])
        assert shape, kind
        assert list(_top_level(shape.group(1))) == list(_fields(nested)), kind


def test_the_close_code_table_and_the_close_codes_agree() -> None:
    documented = {int(row[0]) for row in _rows("Close codes")}
    assert documented == p.CLOSE_CODES
    named = {value for name, value in vars(p).items() if name.startswith("CLOSE_") and isinstance(value, int)}
    assert named == p.CLOSE_CODES  # every code has a CLOSE_ name and every name is documented
