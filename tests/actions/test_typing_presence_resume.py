"""Live signals (typing, presence, resume) and the exact events each action publishes.

docs/protocol.md promises the frame of every event; these tests hold the actions to it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.actions import conversations, messages, presence, receipts, stream, typing
from app.actions.auth import do_logout
from app.actions.errors import NotFound
from app.lib.clock import FrozenClock
from app.realtime.events import Event
from app.records import Staff
from app.services import Services
from tests.helpers import actor_for, new_id

pytestmark = pytest.mark.usefixtures("database_kind")

MESSAGE_KEYS = {"id", "conversation_id", "sender_id", "sender_name", "kind", "body", "created_at", "client_msg_id", "reply_to"}


def round_trip(event: Event) -> Event:
    """What another instance gets through Redis."""
    return Event.from_json(event.to_json())


# Typing


async def test_typing_goes_to_the_other_members_not_back_to_the_socket(svc: Services, staff: dict[str, Staff], group: int, events: list[Event], clock: FrozenClock) -> None:
    events.clear()
    await typing.do_typing(svc, actor_for(staff["bob"]), group, True, "socket-1")
    [event] = events
    assert event.kind == "typing"
    assert sorted(event.user_ids) == sorted([staff["alice"].id, staff["carol"].id])
    assert event.except_socket == "socket-1"
    assert event.data == {"type": "typing", "conversation_id": group, "user_id": staff["bob"].id, "name": "Bob", "typing": True, "ttl": 6}
    assert round_trip(event) == event
    await typing.do_typing(svc, actor_for(staff["bob"]), group, False, "socket-1")
    assert len(events) == 1  # within 2 s of the start: throttled
    clock.advance(2)
    await typing.do_typing(svc, actor_for(staff["bob"]), group, False, "socket-1")
    assert events[-1].data["typing"] is False


async def test_typing_outside_my_conversations_is_not_found_and_silent(svc: Services, staff: dict[str, Staff], group: int, events: list[Event]) -> None:
    events.clear()
    for conversation_id in (group, group + 1000):
        with pytest.raises(NotFound):
            await typing.do_typing(svc, actor_for(staff["dave"]), conversation_id, True, "s")
    await conversations.do_remove_member(svc, actor_for(staff["alice"]), group, staff["carol"].id)
    events.clear()
    with pytest.raises(NotFound):
        await typing.do_typing(svc, actor_for(staff["carol"]), group, True, "s")
    assert events == []


async def test_typing_alone_publishes_nothing(svc: Services, staff: dict[str, Staff], events: list[Event]) -> None:
    alone = await conversations.do_create_group(svc, actor_for(staff["alice"]), "Notes to self", [])
    events.clear()
    await typing.do_typing(svc, actor_for(staff["alice"]), alone, True, "s")
    assert events == []


# Presence


async def test_contacts_are_the_people_i_share_a_current_conversation_with(svc: Services, staff: dict[str, Staff], group: int) -> None:
    ids = {name: user.id for name, user in staff.items()}
    assert sorted(await presence.contacts(svc, ids["alice"])) == sorted([ids["bob"], ids["carol"]])
    assert await presence.contacts(svc, ids["dave"]) == []
    await conversations.do_open_direct(svc, actor_for(staff["dave"]), "bob")
    assert sorted(await presence.contacts(svc, ids["bob"])) == sorted([ids["alice"], ids["carol"], ids["dave"]])
    await conversations.do_remove_member(svc, actor_for(staff["alice"]), group, ids["carol"])
    assert await presence.contacts(svc, ids["carol"]) == []
    assert ids["carol"] not in await presence.contacts(svc, ids["alice"])


async def test_presence_online_and_offline(svc: Services, staff: dict[str, Staff], group: int, events: list[Event], clock: FrozenClock) -> None:
    bob = staff["bob"].id
    assert await presence.last_seen(svc, [bob]) == {bob: None}
    events.clear()
    await presence.announce_presence(svc, bob, True, "instance-1")
    [online] = events
    assert online.kind == "presence" and online.origin == "instance-1"
    assert sorted(online.user_ids) == sorted([staff["alice"].id, staff["carol"].id])
    assert online.data == {"type": "presence", "user_id": bob, "online": True, "last_seen": None}
    assert await presence.last_seen(svc, [bob]) == {bob: None}  # online does not write
    clock.advance(3600)
    await presence.announce_presence(svc, bob, False, "instance-1")
    offline = events[-1]
    assert offline.data == {"type": "presence", "user_id": bob, "online": False, "last_seen": clock.now().isoformat()}
    assert round_trip(offline) == offline
    seen = (await presence.last_seen(svc, [bob, staff["dave"].id]))
    assert seen[bob] is not None and seen[bob].replace(tzinfo=None) == clock.now().replace(tzinfo=None)
    assert seen[staff["dave"].id] is None


# Resume


async def test_missed_changes_pages_and_cap(svc: Services, staff: dict[str, Staff], group: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(svc.message_buckets.local, "burst", 1000)
    alice, dave, bob = actor_for(staff["alice"]), actor_for(staff["dave"]), staff["bob"]
    first = await messages.do_send_message(svc, alice, group, "start", new_id())
    ids = [(await messages.do_send_message(svc, alice, group, f"m{n}", new_id())).message.id for n in range(5)]
    private = await conversations.do_open_direct(svc, dave, "carol")
    await messages.do_send_message(svc, dave, private, "not for alice", new_id())
    # Resume after the "start" message, by its position and (legacy) by its message id.
    assert await stream.legacy_position(svc, first.message.id) == first.position
    page = await stream.missed_changes(svc, bob, first.position, 3, 100)
    assert not page.too_many and not page.complete and [m.id for m in page.messages] == ids[:3]
    assert [f["message"]["id"] for f in page.frames] == ids[:3] and all(f["type"] == "message" for f in page.frames)
    assert first.position < page.positions[0] and page.positions == sorted(set(page.positions))
    assert page.position == page.positions[-1]
    rest = await stream.missed_changes(svc, bob, page.position, 3, 100)
    assert [m.id for m in rest.messages] == ids[3:] and rest.complete and not rest.too_many
    assert page.position < rest.positions[0] and rest.position == rest.positions[-1]
    # The cap counts every change waiting: five is not too many for a cap of 5, it is for 4.
    assert (await stream.missed_changes(svc, bob, first.position, 3, 5)).too_many is False
    too_many = await stream.missed_changes(svc, bob, first.position, 3, 4)
    assert too_many.too_many and too_many.messages == [] and too_many.frames == [] and too_many.position == first.position
    # dave sees only his direct chat (its creation, then its message).
    mine = await stream.missed_changes(svc, staff["dave"], 0, 50, 100)
    assert [m.body for m in mine.messages] == ["not for alice"]
    assert [f["type"] for f in mine.frames] == ["conversation", "message"] and mine.frames[0]["conversation"]["id"] == private


# What each action publishes


def position_of(event: Event) -> int:
    """A stream change's position: in its frame and on the event (the hub hands it to the
    socket), the same int >= 1."""
    position = event.data["position"]
    assert isinstance(position, int) and position >= 1 and event.position == position
    return position


async def test_every_action_publishes_the_promised_frames(svc: Services, staff: dict[str, Staff], events: list[Event]) -> None:
    ids = {name: user.id for name, user in staff.items()}
    alice, bob = actor_for(staff["alice"]), actor_for(staff["bob"])
    events.clear()
    group = await conversations.do_create_group(svc, alice, "Ward 7", ["bob"])
    created, line = events
    assert created.data == {
        "type": "conversation", "position": position_of(created), "event": "created",
        "conversation": {"id": group, "kind": "group", "title": "Ward 7"},
    }
    assert set(line.data["message"]) == MESSAGE_KEYS and line.data["message"]["kind"] == "system"

    events.clear()
    sent = await messages.do_send_message(svc, bob, group, "K+ < 3.5", new_id())
    [message] = events
    assert message.kind == "message" and sorted(message.user_ids) == sorted([ids["alice"], ids["bob"]])
    assert message.data["type"] == "message" and set(message.data["message"]) == MESSAGE_KEYS
    assert message.data["message"]["body"] == "K+ < 3.5" and message.data["message"]["id"] == sent.message.id
    assert set(message.data) == {"type", "position", "message"} and position_of(message) == sent.position

    events.clear()
    await receipts.do_mark_delivered(svc, alice, group, sent.message.id)
    await receipts.do_mark_read(svc, alice, group, sent.message.id)
    delivered, read = events
    assert delivered.kind == read.kind == "receipt"
    assert sorted(read.user_ids) == sorted([ids["alice"], ids["bob"]])
    assert read.data == {
        "type": "receipt", "position": position_of(read), "conversation_id": group, "user_id": ids["alice"],
        "read_id": sent.message.id, "delivered_id": sent.message.id,
    }
    assert delivered.data["read_id"] < sent.message.id == delivered.data["delivered_id"]

    events.clear()
    await conversations.do_rename_group(svc, alice, group, "Ward 7 & 8")
    await conversations.do_rename_group(svc, alice, group, "Ward 7 & 8")  # no change: nothing
    renamed, line = events
    assert renamed.data == {
        "type": "conversation", "position": position_of(renamed), "event": "renamed",
        "conversation": {"id": group, "kind": "group", "title": "Ward 7 & 8"},
    }
    assert line.kind == "message"

    events.clear()
    await conversations.do_add_members(svc, alice, group, ["carol", "dave"])
    added, line = events
    assert position_of(added) < position_of(line)  # the new members' stream starts with the add
    assert added.data["event"] == "member_added" and sorted(added.data["user_ids"]) == sorted([ids["carol"], ids["dave"]])
    assert sorted(added.user_ids) == sorted(ids.values())

    events.clear()
    await conversations.do_remove_member(svc, alice, group, ids["dave"])
    await conversations.do_leave_group(svc, bob, group)
    removed, line1, left, line2 = events
    assert removed.data["event"] == left.data["event"] == "member_removed"
    assert removed.data["user_ids"] == [ids["dave"]] and ids["dave"] in removed.user_ids and ids["dave"] not in line1.user_ids
    assert left.data["user_ids"] == [ids["bob"]] and ids["bob"] in left.user_ids and ids["bob"] not in line2.user_ids

    events.clear()
    direct = await conversations.do_open_direct(svc, alice, "dave")
    [opened] = events
    assert opened.data == {
        "type": "conversation", "position": position_of(opened), "event": "created",
        "conversation": {"id": direct, "kind": "direct", "title": ""},
    }
    for event in (created, message, read, renamed, added, removed, opened):
        assert round_trip(event) == event
    # Every change gets the next position, in the order the actions committed them.
    order = [created, message, delivered, read, renamed, added, removed, line1, left, line2, opened]
    assert [position_of(e) for e in order] == sorted({position_of(e) for e in order})


async def test_logout_publishes_the_end_of_that_session_only(svc: Services, staff: dict[str, Staff], events: list[Event]) -> None:
    events.clear()
    await do_logout(svc, actor_for(staff["alice"], session_id="hash-of-this-session"))
    [ended] = events
    assert ended.kind == "session_ended" and ended.session_ids == ("hash-of-this-session",)
    assert ended.user_ids == () and ended.data == {}


async def test_large_groups_do_not_share_presence(svc: Services, staff: dict[str, Staff]) -> None:
    ids = {name: user.id for name, user in staff.items()}
    await conversations.do_create_group(svc, actor_for(staff["alice"]), "Whole hospital", ["bob", "carol", "dave"])
    assert ids["dave"] in await presence.contacts(svc, ids["alice"])
    svc.settings = replace(svc.settings, presence_max_group=3)
    # Four members is over the limit: nobody there is a contact through that group...
    assert ids["dave"] not in await presence.contacts(svc, ids["alice"])
    # ...but a direct chat still counts.
    await conversations.do_open_direct(svc, actor_for(staff["dave"]), "alice")
    assert ids["dave"] in await presence.contacts(svc, ids["alice"])
