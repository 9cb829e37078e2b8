"""Message info: who has read a message of mine and who it has only reached, with times."""

from __future__ import annotations

import re
from typing import Any

import pytest

from app.actions import conversations, messages, receipts
from app.actions.accounts import get_staff
from app.lib.clock import FrozenClock
from app.lib.timefmt import display_zone, when_label
from app.services import Services
from tests.helpers import actor_for, new_id, user_id
from tests.support import Client

pytestmark = pytest.mark.usefixtures("database_kind")


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


async def test_message_info_lists_read_delivered_and_waiting_with_times(app: Any, svc: Services, login_as: Any, make_user: Any, clock: FrozenClock) -> None:
    alice = await login_as("alice")
    for name in ("bob", "carol", "erin"):
        await make_user(name)
    people: dict[str, Any] = {n: await get_staff(svc, await user_id(svc, n)) for n in ("alice", "bob", "carol", "erin")}
    group = await conversations.do_create_group(svc, actor_for(people["alice"]), "Ward 7", ["bob", "carol", "erin"])
    sent = await messages.do_send_message(svc, actor_for(people["alice"]), group, "Bed 4 obs please", new_id())
    mid = sent.message.id
    zone = display_zone(app.config["DISPLAY_TIMEZONE"])

    clock.advance(60)
    delivered_at = clock.now()
    await receipts.do_mark_delivered(svc, actor_for(people["carol"]), group, mid)
    clock.advance(60)
    read_at = clock.now()
    await receipts.do_mark_read(svc, actor_for(people["bob"]), group, mid)
    clock.advance(60)
    await make_user("dave")
    await conversations.do_add_members(svc, actor_for(people["alice"]), group, ["dave"])

    # The conversation page links "Read by 1 of 3" to the info page.
    page = await (await alice.get(f"/chats/{group}")).get_data(as_text=True)
    assert f'href="/chats/{group}/messages/{mid}/info"' in page

    r = await alice.get(f"/chats/{group}/messages/{mid}/info")
    assert r.status_code == 200
    assert "no-store" in r.headers["Cache-Control"]
    text = text_of(await r.get_data(as_text=True))
    assert "Bed 4 obs please" in text
    assert f"Read by 1 Bob {when_label(read_at, clock.now(), zone)}" in text
    assert f"Delivered to 1 Reached a device, not read yet. Carol {when_label(delivered_at, clock.now(), zone)}" in text
    assert "Not delivered yet to 1 Erin" in text
    assert "Dave" not in text  # added after the message was sent

    # Only the sender may look; anyone else, member or not, finds nothing.
    bob = await login_as("bob")
    assert (await bob.get(f"/chats/{group}/messages/{mid}/info")).status_code == 404
    outsider = await login_as("zoe")
    assert (await outsider.get(f"/chats/{group}/messages/{mid}/info")).status_code == 404
    assert (await alice.get(f"/chats/{group}/messages/{mid + 999}/info")).status_code == 404
    assert (await alice.get(f"/chats/{group + 1}/messages/{mid}/info")).status_code == 404


async def test_message_info_needs_login(client: Client) -> None:
    r = await client.get("/chats/1/messages/1/info")
    assert r.status_code == 303 and "/login" in r.headers["Location"]


def ticks_of(html: str, message_id: int) -> str:
    """The ticks under message ``message_id`` as the page draws them (its text and label)."""
    li = re.search(rf'<li class="msg mine" id="m{message_id}".*?</li>', html, re.S)
    assert li, html
    tick = re.search(r'<(?:a|span) class="ticks[^"]*"([^>]*)>(.*?)</(?:a|span)>', li.group(0), re.S)
    assert tick, li.group(0)
    label = re.search(r'aria-label="([^"]*)"', tick.group(1))
    return f"{tick.group(2).strip()} [{label.group(1) if label else ''}]"


async def test_a_member_added_later_does_not_count_for_earlier_ticks(svc: Services, login_as: Any, make_user: Any) -> None:
    # Dave joins after the message: he never receives it, though his watermarks start past
    # it. The ticks are for Bob and Carol only (the page, and the frame without JavaScript).
    alice = await login_as("alice")
    for name in ("bob", "carol", "dave"):
        await make_user(name)
    people: dict[str, Any] = {n: await get_staff(svc, await user_id(svc, n)) for n in ("alice", "bob", "carol")}
    group = await conversations.do_create_group(svc, actor_for(people["alice"]), "Ward 9", ["bob", "carol"])
    mid = (await messages.do_send_message(svc, actor_for(people["alice"]), group, "Bed 2 fasting", new_id())).message.id
    await receipts.do_mark_read(svc, actor_for(people["bob"]), group, mid)
    await conversations.do_add_members(svc, actor_for(people["alice"]), group, ["dave"])
    later = (await messages.do_send_message(svc, actor_for(people["alice"]), group, "Bed 3 too", new_id())).message.id

    for path in (f"/chats/{group}?auto=1", f"/chats/{group}/pane?auto=1"):
        html = await (await alice.get(path)).get_data(as_text=True)
        assert ticks_of(html, mid) == "&#10003; Read by 1 of 2 [Sent, read by 1 of 2]", path
        assert ticks_of(html, later) == "&#10003; Read by 0 of 3 [Sent, read by 0 of 3]", path
    # The script's copy of the members says where Dave's history starts.
    members = re.search(r"data-members='([^']*)'", html := await (await alice.get(f"/chats/{group}?auto=1")).get_data(as_text=True))
    assert members and f'"from": {mid}' in members.group(1).replace("&#34;", '"').replace('&quot;', '"')
