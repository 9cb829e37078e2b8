"""/ws frames: send -> ack after commit, message events, idempotency, every error code, size."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.services import Services
from tests.helpers import all_messages, new_id
from tests.ws.conftest import People
from tests.ws.wsclient import Sock, position_of, ws_open

pytestmark = pytest.mark.usefixtures("database_kind")

CLINICAL = "K+ < 3.5 & BP > 140 <script>alert(1)</script>"


def send(conversation_id: int, body: str = "hello", client_msg_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "send", "client_msg_id": new_id() if client_msg_id is None else client_msg_id, "conversation_id": conversation_id, "body": body, **extra}


async def ack_of(sock: Sock, frame: dict[str, Any]) -> dict[str, Any]:
    await sock.send(frame)
    ack = await sock.expect("ack")
    assert ack["client_msg_id"] == frame["client_msg_id"]
    return ack


async def test_ack_comes_after_the_commit_and_every_member_socket_gets_the_message(people: People, svc: Services) -> None:
    async with (
        ws_open(people.alice) as a1, ws_open(people.alice) as a2,
        ws_open(people.bob) as b, ws_open(people.carol) as c,
    ):
        frame = send(people.ab, CLINICAL)
        await a1.send(frame)
        ack = await a1.expect("ack")
        # The ack means committed: another connection sees the row now.
        stored = [m for m in await all_messages(svc, people.ab) if m.client_msg_id == frame["client_msg_id"]]
        assert len(stored) == 1 and stored[0].body == CLINICAL
        message = ack["message"]
        assert ack["duplicate"] is False
        assert message == {
            "id": stored[0].id, "conversation_id": people.ab, "sender_id": people.ids["alice"],
            "sender_name": "Alice", "kind": "text", "body": CLINICAL,
            "created_at": message["created_at"], "client_msg_id": frame["client_msg_id"], "reply_to": None,
        }
        assert message["created_at"].startswith("2026-01-05T09:00:00") and message["created_at"].endswith("+00:00")
        # Every socket of every member, the sending socket and the sender's other tab included.
        # The ack carries the position of the message's change, as every socket's frame does.
        position = position_of(ack)
        for sock in (a1, a2, b):
            event = await sock.expect("message")
            assert event == {"type": "message", "position": position, "message": message}
        # carol is in no conversation with them: her next message is the one in her own chat.
        cb = await people.direct(people.carol, "bob")
        marker = await ack_of(c, send(cb, "for carol"))
        assert (await c.expect("message"))["message"]["id"] == marker["message"]["id"]
        assert [f["message"]["conversation_id"] for f in c.taken("message")] == [cb]


async def test_reply_to_carries_a_preview(people: People) -> None:
    async with ws_open(people.alice) as a, ws_open(people.bob) as b:
        first = (await ack_of(b, send(people.ab, "Potassium is 3.1 " + "x" * 200)))["message"]
        reply = await ack_of(a, send(people.ab, "Recheck in 2 h", reply_to=first["id"]))
        quoted = reply["message"]["reply_to"]
        assert quoted["id"] == first["id"] and quoted["sender_name"] == "Bob"
        assert quoted["preview"].startswith("Potassium is 3.1") and len(quoted["preview"]) < len(first["body"])
        event = await b.expect("message", timeout=2)
        while event["message"]["id"] != reply["message"]["id"]:
            event = await b.expect("message")
        assert event["message"]["reply_to"] == quoted


async def test_a_repeated_client_msg_id_is_acked_as_duplicate_and_stores_nothing(people: People, svc: Services) -> None:
    async with ws_open(people.alice) as a, ws_open(people.bob) as b:
        frame = send(people.ab, "once only")
        first = await ack_of(a, frame)
        assert first["duplicate"] is False
        again = await ack_of(a, {**frame, "body": "changed on the resend"})
        assert again["duplicate"] is True
        assert again["message"] == first["message"]  # the stored message, not the resend
        assert again["position"] == position_of(first)  # and the position of its change
        # After a reconnect too.
        async with ws_open(people.alice) as a_again:
            third = await ack_of(a_again, frame)
            assert third["duplicate"] is True and third["message"]["id"] == first["message"]["id"]
            assert third["position"] == first["position"]
        assert [m.body for m in await all_messages(svc, people.ab)] == ["once only"]
        # bob got one event: the next one after it is a new message, not a second copy.
        assert (await b.expect("message"))["message"]["id"] == first["message"]["id"]
        later = await ack_of(a, send(people.ab, "next"))
        assert (await b.expect("message"))["message"]["id"] == later["message"]["id"]
        assert [f["message"]["body"] for f in b.taken("message")] == ["once only", "next"]


@pytest.mark.parametrize("client_msg_id", ["not-a-uuid", "", "1234", "0" * 36, "{" + "12345678-1234-1234-1234-123456789abc" + "}", "12345678123412341234123456789abc"])
async def test_bad_client_msg_id(people: People, svc: Services, client_msg_id: str) -> None:
    async with ws_open(people.alice) as a:
        await a.send(send(people.ab, "x", client_msg_id))
        error = await a.error("bad_client_msg_id")
        assert error["ref"] == client_msg_id
        assert await all_messages(svc) == []
        await ack_of(a, send(people.ab))  # still usable


@pytest.mark.parametrize("body", ["", "   \n\t ", "x" * 4001, "a\x00b", "a\x07b", "a\x7fb", "a\ud800b", "\u200b\u2800\u3164", "\u0301\ufe0f\u202e\u2066"])
async def test_bad_body(people: People, svc: Services, body: str) -> None:
    async with ws_open(people.alice) as a:
        frame = send(people.ab, body)
        await a.send(frame)
        error = await a.error("bad_body")
        assert error["ref"] == frame["client_msg_id"]
        assert await all_messages(svc) == []
        ok = await ack_of(a, send(people.ab, "x" * 4000))  # the longest body is fine
        assert len(ok["message"]["body"]) == 4000


async def test_bad_reply_to(people: People, svc: Services) -> None:
    elsewhere = await people.direct(people.carol, "bob")
    async with ws_open(people.alice) as a, ws_open(people.carol) as c:
        foreign = (await ack_of(c, send(elsewhere, "not for alice")))["message"]["id"]
        for reply_to in (foreign, foreign + 1000):
            frame = send(people.ab, "re", reply_to=reply_to)
            await a.send(frame)
            error = await a.error("bad_reply_to")
            assert error["ref"] == frame["client_msg_id"]
        assert await all_messages(svc, people.ab) == []


async def test_client_msg_id_reused_in_another_conversation(people: People, svc: Services) -> None:
    other = await people.direct(people.alice, "carol")
    async with ws_open(people.alice) as a:
        frame = send(people.ab, "first")
        await ack_of(a, frame)
        await a.send({**frame, "conversation_id": other})
        error = await a.error("client_msg_id_reused")
        assert error["ref"] == frame["client_msg_id"]
        assert await all_messages(svc, other) == []


async def test_not_found_for_a_conversation_i_am_not_in(people: People, svc: Services) -> None:
    theirs = await people.direct(people.carol, "bob")
    async with ws_open(people.alice) as a, ws_open(people.bob) as b:
        answers = []
        for conversation_id in (theirs, theirs + 1000):  # not mine, and no such conversation
            frame = send(conversation_id, "intrusion")
            await a.send(frame)
            answers.append(await a.error("not_found"))
            assert answers[-1]["ref"] == frame["client_msg_id"]
        assert answers[0]["message"] == answers[1]["message"]  # the same answer for both
        assert await all_messages(svc) == []
        # bob (a member there) was woken by nothing: his next message is a real one.
        marker = await ack_of(a, send(people.ab, "marker"))
        assert (await b.expect("message"))["message"]["id"] == marker["message"]["id"]


@pytest.mark.app_config(MESSAGE_RATE=1, MESSAGE_RATE_PERIOD_SECONDS=60)
async def test_rate_limited_after_the_burst_and_shared_with_the_form(people: People, svc: Services) -> None:
    async with ws_open(people.alice) as a:
        for n in range(10):  # MESSAGE_BURST
            await ack_of(a, send(people.ab, f"m{n}"))
        frame = send(people.ab, "one too many")
        await a.send(frame)
        error = await a.error("rate_limited")
        assert error["ref"] == frame["client_msg_id"]
        assert 50 < error["retry_after"] <= 60
        assert len(await all_messages(svc, people.ab)) == 10
        # The form door takes from the same bucket.
        response = await people.alice.submit(f"/chats/{people.ab}/messages", {"body": "by form", "client_msg_id": new_id()}, page=f"/chats/{people.ab}")
        assert response.status_code == 429
        assert len(await all_messages(svc, people.ab)) == 10
        # A repeat of a stored message is not a new send: still acked.
        first = next(f for f in a.seen if f["type"] == "ack")
        again = await ack_of(a, send(people.ab, "m0", first["client_msg_id"]))
        assert again["duplicate"] is True
    # bob has his own bucket.
    async with ws_open(people.bob) as b:
        await ack_of(b, send(people.ab, "bob is fine"))


BAD_FRAMES: list[tuple[str | bytes, str]] = [
    ("not json", "bad_json"),
    ("{\"type\": \"send\",", "bad_json"),
    ("[" * 30_000 + "]" * 30_000, "bad_json"),  # too deep to parse
    ("[]", "bad_frame"),
    ("[{\"type\": \"send\"}]", "bad_frame"),
    ("\"send\"", "bad_frame"),
    ("null", "bad_frame"),
    ("42", "bad_frame"),
    (b"{\"type\": \"pong\"}", "bad_frame"),  # binary
    ("{}", "unknown_type"),
    ("{\"type\": \"nope\"}", "unknown_type"),
    ("{\"type\": 5}", "unknown_type"),
    ("{\"type\": \"ack\"}", "unknown_type"),  # a server frame
    ("{\"type\": \"SEND\"}", "unknown_type"),
]

BAD_FIELDS: list[dict[str, Any]] = [
    {"type": "send", "client_msg_id": "c", "conversation_id": "1", "body": "x"},
    {"type": "send", "client_msg_id": "c", "conversation_id": True, "body": "x"},
    {"type": "send", "client_msg_id": "c", "conversation_id": -1, "body": "x"},
    {"type": "send", "client_msg_id": "c", "conversation_id": 0, "body": "x"},
    {"type": "send", "client_msg_id": "c", "conversation_id": 2**70, "body": "x"},
    {"type": "send", "client_msg_id": "c", "conversation_id": 1.0, "body": "x"},
    {"type": "send", "client_msg_id": "c", "conversation_id": None, "body": "x"},
    {"type": "send", "client_msg_id": "c", "body": "x"},
    {"type": "send", "client_msg_id": 7, "conversation_id": 1, "body": "x"},
    {"type": "send", "conversation_id": 1, "body": "x"},
    {"type": "send", "client_msg_id": "c", "conversation_id": 1, "body": None},
    {"type": "send", "client_msg_id": "c", "conversation_id": 1, "body": ["x"]},
    {"type": "send", "client_msg_id": "c", "conversation_id": 1},
    {"type": "send", "client_msg_id": "c", "conversation_id": 1, "body": "x", "reply_to": "3"},
    {"type": "send", "client_msg_id": "c", "conversation_id": 1, "body": "x", "reply_to": 0},
    {"type": "sync", "after_id": -1},
    {"type": "sync", "after_id": "0"},
    {"type": "sync", "after_id": 2**64},
    {"type": "sync"},
    {"type": "sync", "after_id": None},
    {"type": "sync", "since": 0, "after_id": 0},  # v2: exactly one of the two
    {"type": "sync", "since": -1},
    {"type": "sync", "since": "0"},
    {"type": "sync", "since": True},
    {"type": "read", "conversation_id": 1},
    {"type": "read", "conversation_id": 1, "up_to_id": "9"},
    {"type": "delivered", "conversation_id": False, "up_to_id": 1},
    {"type": "delivered", "conversation_id": 1, "up_to_id": 2**63},
    {"type": "typing", "conversation_id": 1, "typing": "yes"},
    {"type": "typing", "conversation_id": 1, "typing": 1},
    {"type": "typing", "conversation_id": 1},
    {"type": "typing", "conversation_id": [1], "typing": True},
]


async def test_bad_frames_get_an_error_and_the_socket_stays_usable(people: People, svc: Services) -> None:
    async with ws_open(people.alice) as a, ws_open(people.bob) as b:
        for raw, code in BAD_FRAMES:
            await a.send(raw)
            await a.error(code)
        for frame in BAD_FIELDS:
            await a.send(frame)
            error = await a.error("bad_field")
            if frame["type"] == "send" and isinstance(frame.get("client_msg_id"), str):
                assert error["ref"] == frame["client_msg_id"]
        assert await all_messages(svc) == []
        # Still open and working, and bob saw nothing of it.
        ack = await ack_of(a, send(people.ab, "after all that"))
        event = await b.expect("message")
        assert event["message"]["id"] == ack["message"]["id"]
        assert [f["type"] for f in b.seen if f["type"] not in ("hello", "presence_snapshot", "presence", "ping")] == ["message"]


async def test_unknown_fields_are_ignored(people: People) -> None:
    async with ws_open(people.alice) as a:
        ack = await ack_of(a, send(people.ab, "extra", sender_id=999, id=1, created_at="1999-01-01"))
        assert ack["message"]["sender_id"] == people.ids["alice"]
        assert ack["message"]["created_at"].startswith("2026-01-05")


async def test_a_frame_over_64_kib_closes_with_1009(people: People, svc: Services) -> None:
    async with ws_open(people.alice) as a:
        # Exactly 64 KiB is still a frame (here with a body that is too long).
        frame = send(people.ab, "")
        frame["body"] = "x" * (64 * 1024 - len(json.dumps(frame)))
        raw = json.dumps(frame)
        assert len(raw.encode()) == 64 * 1024
        await a.send(raw)
        await a.error("bad_body")
        # One byte more closes the socket.
        frame["body"] += "x"
        await a.send(json.dumps(frame))
        assert await a.closed() == 1009
    async with ws_open(people.alice) as a:
        # The limit counts bytes, not characters: 22,000 three-byte characters are 66,000 bytes.
        await a.send(json.dumps(send(people.ab, "\u20ac" * 22_000), ensure_ascii=False))
        assert await a.closed() == 1009
    assert await all_messages(svc) == []


async def test_a_message_sent_by_the_form_reaches_open_sockets(people: People, svc: Services) -> None:
    async with ws_open(people.alice) as a, ws_open(people.bob) as b:
        cid = new_id()
        response = await people.alice.submit(f"/chats/{people.ab}/messages", {"body": CLINICAL, "client_msg_id": cid}, page=f"/chats/{people.ab}")
        assert response.status_code == 303
        for sock in (a, b):
            event = await sock.expect("message")
            assert event["message"]["body"] == CLINICAL and event["message"]["client_msg_id"] == cid
        # The socket door recognises the form's client_msg_id (one action, two doors).
        again = await ack_of(a, send(people.ab, CLINICAL, cid))
        assert again["duplicate"] is True
        assert len(await all_messages(svc, people.ab)) == 1


# --- lone surrogates ------------------------------------------------------------------------
# JSON can spell a lone surrogate ("\ud800"); UTF-8 cannot. Echoed back (an error's ref), it
# made the send fail and closed the socket with 1011. Every string field of every frame type:
# (frame, the error code it gets, or None when the frame is fine as it is).

LONE = "\ud800"
SURROGATE_FRAMES: list[tuple[dict[str, Any], str | None]] = [
    ({"type": "send", "client_msg_id": LONE, "conversation_id": 1, "body": "x"}, "bad_client_msg_id"),
    ({"type": "send", "client_msg_id": "abc\udfff", "conversation_id": 999_999, "body": "x"}, "bad_client_msg_id"),
    ({"type": "send", "client_msg_id": LONE, "conversation_id": "1", "body": "x"}, "bad_client_msg_id"),
    ({"type": "send", "client_msg_id": "\udc00" + LONE, "conversation_id": 1, "body": LONE}, "bad_client_msg_id"),  # low then high: no pair
    ({"type": LONE}, "unknown_type"),
    ({"type": "send" + LONE, "client_msg_id": LONE}, "unknown_type"),
    ({"type": "sync", "after_id": LONE}, "bad_field"),
    ({"type": "sync", "since": LONE}, "bad_field"),
    ({"type": "read", "conversation_id": LONE, "up_to_id": 1}, "bad_field"),
    ({"type": "delivered", "conversation_id": 1, "up_to_id": LONE}, "bad_field"),
    ({"type": "typing", "conversation_id": 1, "typing": LONE}, "bad_field"),
    ({"type": "pong", "note": LONE, LONE: 1}, None),  # unknown fields are ignored, never echoed
]


@pytest.mark.parametrize(("frame", "code"), SURROGATE_FRAMES)
def test_parsing_never_keeps_a_lone_surrogate_to_echo(frame: dict[str, Any], code: str | None) -> None:
    from app.protocol import FrameError, parse_frame

    if code is None:
        parse_frame(json.dumps(frame))
        return
    with pytest.raises(FrameError) as caught:
        parse_frame(json.dumps(frame))
    assert caught.value.code == code and caught.value.ref is None


def test_error_frames_and_dumps_are_always_utf8() -> None:
    from app.protocol import dumps, error_frame

    frame = error_frame("bad_body", "no", "ref\ud800", detail="x\udfff")
    frame.encode("utf-8")  # no UnicodeEncodeError
    assert "ref" not in json.loads(frame)
    assert json.loads(dumps({"type": "x", "text": "caf\u00e9 \U0001f489"})) == {"type": "x", "text": "caf\u00e9 \U0001f489"}
    assert dumps({"text": "caf\u00e9"}) == '{"text":"caf\u00e9"}'  # plain text stays unescaped


async def test_lone_surrogates_in_any_field_get_an_error_frame_and_the_socket_stays_open(people: People, svc: Services) -> None:
    async with ws_open(people.alice) as a:
        for frame, code in SURROGATE_FRAMES:
            if frame.get("type") == "send" and frame.get("conversation_id") == 1:
                frame = {**frame, "conversation_id": people.ab}
            await a.send(frame)
            if code is not None:
                error = await a.error(code)
                assert "ref" not in error, frame
        # The body with a lone surrogate is refused by the action, with the (clean) ref.
        bad_body = send(people.ab, "a\ud800b")
        await a.send(bad_body)
        assert (await a.error("bad_body"))["ref"] == bad_body["client_msg_id"]
        # A string where an id belongs, in a frame with a clean client_msg_id: that ref only.
        await a.send(send(people.ab, reply_to=LONE, client_msg_id="c-1"))
        assert (await a.error("bad_field"))["ref"] == "c-1"
        assert await all_messages(svc) == []
        await ack_of(a, send(people.ab, "still open"))
