"""Encode/decode speed of the wire protocol: msgspec Structs (app/protocol.py) vs stdlib json.

    .venv/bin/python bench/protocol_speed.py [--repeat 7] [--number 20000]

Prints microseconds per frame (best of ``--repeat`` runs of ``--number`` calls each) for:
- decoding one ``send`` frame: v1's ``json.loads`` + hand checks (reproduced here as it was
  before issue 10) against ``parse_frame`` (one msgspec Decoder of the tagged union);
- encoding one ``message`` frame: v1's ``dumps`` of a dict (``json.dumps``) against
  ``encode`` of a ``MessageFrame`` Struct, and ``encode`` of the same dict;
- building and encoding one ``message`` frame from a ``MessageRecord`` (v1's
  ``message_frame`` dict + ``dumps`` against ``message_of`` + ``MessageFrame`` + ``encode``);
- the same for one ``sync`` page of 200 message changes (the resume path).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import timeit
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.actions.frames import message_frame  # noqa: E402
from app.records import MessageRecord  # noqa: E402
from app.ws import protocol as p  # noqa: E402

_SURROGATE = re.compile(r"[\ud800-\udfff]")


def v1_parse_send(raw: str) -> tuple[str, int, str, int | None]:
    """v1's parse_frame, send branch (json.loads, then every field checked by hand)."""
    obj = json.loads(raw)
    if not isinstance(obj, dict) or obj.get("type") != "send":
        raise ValueError("not a send")
    client_msg_id = obj.get("client_msg_id")
    if isinstance(client_msg_id, str) and _SURROGATE.search(client_msg_id):
        raise ValueError("bad_client_msg_id")
    if not isinstance(client_msg_id, str) or not isinstance(obj.get("body"), str):
        raise ValueError("bad_field")
    ids = []
    for key in ("conversation_id", "reply_to"):
        value = obj.get(key)
        if value is None and key == "reply_to":
            ids.append(None)
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value > p.MAX_ID:
            raise ValueError("bad_field")
        ids.append(value)
    return client_msg_id, ids[0] or 0, obj["body"], ids[1]


def v1_dumps(frame: dict[str, Any]) -> str:
    text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
    if not text.isascii() and _SURROGATE.search(text):
        text = json.dumps(frame, separators=(",", ":"))
    return text


MESSAGE = p.Message(
    id=123456, conversation_id=42, sender_id=7, sender_name="Dr. Müller",
    kind="text", body="K+ 3.1 mmol/l on the 09:00 sample, please recheck at 11:00 and start oral supplementation.",
    created_at="2026-01-05T09:00:00.123456+00:00", client_msg_id="6f1c0e4e-8d4b-4a53-9a51-7d1e1f0b2c3d",
    reply_to=p.ReplyTo(id=123450, sender_name="Nurse Jansen", preview="Potassium result is back"),
)
FRAME = p.MessageFrame(position=987654, message=MESSAGE)
FRAME_DICT: dict[str, Any] = msgspec.to_builtins(FRAME)
PAGE = p.SyncFrame(changes=[p.MessageFrame(position=1000 + n, message=MESSAGE) for n in range(200)], done=True, position=1199)
PAGE_DICT: dict[str, Any] = msgspec.to_builtins(PAGE)
RECORD = MessageRecord(
    id=123456, conversation_id=42, sender_id=7, sender_name="Dr. Müller", kind="text", body=MESSAGE.body,
    created_at=datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=UTC), client_msg_id=MESSAGE.client_msg_id,
    reply_to_id=123450, reply_sender_name="Nurse Jansen", reply_body="Potassium result is back",
)
SEND = json.dumps({
    "type": "send", "client_msg_id": "6f1c0e4e-8d4b-4a53-9a51-7d1e1f0b2c3d", "conversation_id": 42,
    "body": "K+ 3.1 mmol/l on the 09:00 sample, please recheck at 11:00.", "reply_to": 123450,
})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()
    assert v1_dumps(FRAME_DICT) == p.encode(FRAME) == p.encode(FRAME_DICT)  # the same bytes
    assert v1_dumps(PAGE_DICT) == p.encode(PAGE)
    parsed = p.parse_frame(SEND)
    assert isinstance(parsed, p.Send) and v1_parse_send(SEND) == (parsed.client_msg_id, parsed.conversation_id, parsed.body, parsed.reply_to)

    cases: list[tuple[str, Any, int]] = [
        ("decode send    v1 json.loads + checks", lambda: v1_parse_send(SEND), args.number),
        ("decode send    v2 parse_frame (msgspec)", lambda: p.parse_frame(SEND), args.number),
        ("encode message v1 dumps(dict) (json)", lambda: v1_dumps(FRAME_DICT), args.number),
        ("encode message v2 encode(MessageFrame)", lambda: p.encode(FRAME), args.number),
        ("encode message v2 encode(dict)", lambda: p.encode(FRAME_DICT), args.number),
        ("build+encode message v1 message_frame+dumps", lambda: v1_dumps(message_frame(RECORD)), args.number),
        ("build+encode message v2 message_of+encode", lambda: p.encode(p.MessageFrame(position=1, message=p.message_of(RECORD))), args.number),
        ("encode sync page (200) v1 dumps(dict)", lambda: v1_dumps(PAGE_DICT), max(args.number // 200, 10)),
        ("encode sync page (200) v2 encode(SyncFrame)", lambda: p.encode(PAGE), max(args.number // 200, 10)),
    ]
    for name, call, number in cases:
        best = min(timeit.repeat(call, number=number, repeat=args.repeat)) / number
        print(f"{name:48s} {best * 1e6:9.2f} µs/frame")


if __name__ == "__main__":
    main()
