"""The chat list, directory, direct chats, groups, history pages and the send form."""

from __future__ import annotations

import html as htmllib
import re
from typing import Any

import pytest

from app.actions.messages import do_send_message
from app.records import MembershipRecord
from app.services import Services
from app.store import conversations as store_conversations
from tests.helpers import (
    actor_for,
    all_messages,
    conversation_id_of,
    error_text,
    fill,
    hidden,
    http_rules,
    new_id,
    snapshot,
    textarea,
    user_id,
)
from tests.support import Client

pytestmark = pytest.mark.usefixtures("database_kind")

CONVERSATION_RULES = [(rule, method) for rule, method in http_rules() if "<int:conversation_id>" in rule or "<conversation_id>" in rule]
CLINICAL = "K+ < 3.5 & BP > 140 <script>alert(1)</script>"


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    # Some tests here send a hundred messages in a burst; the send rate limit is tested in actions.
    return {**app_config, "MESSAGE_BURST": 10_000}


async def open_direct(client: Client, username: str) -> int:
    r = await client.submit("/chats/direct", {"username": username}, page="/directory")
    assert r.status_code == 303, await r.get_data(as_text=True)
    return conversation_id_of(r.headers["Location"])


async def create_group(client: Client, title: str, members: list[str]) -> int:
    r = await client.submit("/chats/group", {"title": title, "members": members}, page="/chats/new-group")
    assert r.status_code == 303, await r.get_data(as_text=True)
    return conversation_id_of(r.headers["Location"])


async def send(client: Client, conv_id: int, body: str, *, client_msg_id: str | None = None) -> Any:
    """Send the way the no-JS page does: the form's own client_msg_id and token."""
    page = await client.get(f"/chats/{conv_id}?auto=1")
    html = await page.get_data(as_text=True)
    form = {"body": body, "client_msg_id": client_msg_id or hidden(html, "client_msg_id"), "csrf_token": hidden(html, "csrf_token")}
    return await client.post(f"/chats/{conv_id}/messages", form=form)


async def page_html(client: Client, path: str) -> str:
    r = await client.get(path.split("#")[0])  # a browser keeps the fragment to itself
    assert r.status_code == 200, (path, r.status_code)
    return await r.get_data(as_text=True)


def shown(html: str) -> str:
    """The page as a reader sees it: without the <template>s the script draws messages from."""
    return re.sub(r"<template\b.*?</template>", "", html, flags=re.S)


def bodies(html: str) -> list[str]:
    return [htmllib.unescape(b) for b in re.findall(r'<div class="body" dir="auto">(.*?)</div>', shown(html), re.S)]


def system_lines(html: str) -> list[str]:
    return [htmllib.unescape(b) for b in re.findall(r'<li class="msg system"[^>]*><span dir="auto">(.*?)</span>', shown(html), re.S)]


def chat_list(html: str) -> list[tuple[int, str, int]]:
    """(conversation id, preview, unread) for each row of the chat list, in order."""
    out = []
    for cid, item in re.findall(r'<li class="chat-item[^"]*" data-conversation-id="(\d+)">(.*?)</li>', html, re.S):
        preview = re.search(r'<span class="chat-preview[^"]*"[^>]*>(.*?)</span>', item, re.S)
        unread = re.search(r'aria-label="(\d+) unread"', item)
        out.append((int(cid), htmllib.unescape(preview.group(1)).strip() if preview else "", int(unread.group(1)) if unread else 0))
    return out



async def membership(svc: Services, conv_id: int, username: str) -> MembershipRecord:
    uid = await user_id(svc, username)
    async with svc.db.reading() as s:
        row = await store_conversations.membership(s, conv_id, uid, include_left=True)
        assert row is not None
        return row


# --- the chat list ------------------------------------------------------------------------


async def test_chat_list_order_preview_and_unread(login_as: Any) -> None:
    alice = await login_as("alice")
    bob = await login_as("bob")
    carol = await login_as("carol")
    with_bob = await open_direct(bob, "alice")
    with_carol = await open_direct(carol, "alice")
    assert (await send(bob, with_bob, "first from bob")).status_code == 303
    assert (await send(bob, with_bob, "second from bob")).status_code == 303
    assert (await send(carol, with_carol, "only from carol")).status_code == 303
    rows = chat_list(await page_html(alice, "/chats"))
    assert rows == [(with_carol, "only from carol", 1), (with_bob, "second from bob", 2)]
    assert (await send(bob, with_bob, "bob again")).status_code == 303
    html = await page_html(alice, "/chats")
    assert chat_list(html) == [(with_bob, "bob again", 3), (with_carol, "only from carol", 1)]
    assert "<title>(4) Chats" in html
    # My own messages never count as unread for me.
    assert chat_list(await page_html(bob, "/chats")) == [(with_bob, "bob again", 0)]


async def test_viewing_moves_the_read_watermark(login_as: Any, svc: Services) -> None:
    alice = await login_as("alice")
    bob = await login_as("bob")
    conv = await open_direct(bob, "alice")
    await send(bob, conv, "one")
    await send(bob, conv, "two")
    assert chat_list(await page_html(alice, "/chats"))[0][2] == 2
    html = await page_html(alice, f"/chats/{conv}")
    assert bodies(html) == ["one", "two"]
    assert 'id="new"' in html  # the "new messages" divider, placed before the first unread
    newest = (await all_messages(svc, conv))[-1].id
    mine = await membership(svc, conv, "alice")
    assert mine.last_read_id == newest and mine.last_delivered_id == newest
    assert chat_list(await page_html(alice, "/chats"))[0][2] == 0
    # Bob's page shows the message as read.
    assert "&#10003;&#10003; Read" in await page_html(bob, f"/chats/{conv}?auto=1")


async def test_automatic_refresh_does_not_mark_read(login_as: Any, svc: Services) -> None:
    alice = await login_as("alice")
    bob = await login_as("bob")
    conv = await open_direct(bob, "alice")
    await send(bob, conv, "are you there?")
    html = await page_html(alice, f"/chats/{conv}?auto=1")
    assert bodies(html) == ["are you there?"]
    mine = await membership(svc, conv, "alice")
    newest = (await all_messages(svc, conv))[-1].id
    assert mine.last_read_id < newest
    assert mine.last_delivered_id == newest  # shown on screen counts as delivered
    assert chat_list(await page_html(alice, "/chats"))[0][2] == 1
    assert "Delivered" in await page_html(bob, f"/chats/{conv}?auto=1")


async def test_noscript_refresh_uses_auto(login_as: Any) -> None:
    alice = await login_as("alice")
    await login_as("bob")
    conv = await open_direct(alice, "bob")
    html = await page_html(alice, f"/chats/{conv}")
    refresh = noscript_refresh(html)
    assert "auto=1" in refresh[1]
    assert "auto=1" in frame_src(html)
    assert "auto=1" in pane_refresh(await page_html(alice, frame_src(html)))[1]
    listing = re.search(r'http-equiv="refresh" content="\d+;url=([^"]+)"', await page_html(alice, "/chats"))
    assert listing and "auto=1" in listing.group(1)


# --- the no-JS conversation: a message frame that reloads, a form that does not -------------


def noscript_refresh(html: str) -> tuple[int, str]:
    """(seconds, URL) of the conversation page's own no-JS refresh: the idle lock."""
    match = re.search(r'<noscript>(?:<link rel="stylesheet" href="[^"]+">)?<meta http-equiv="refresh" content="(\d+);url=([^"]+)"></noscript>', html)
    assert match, "no noscript refresh in the page head"
    return int(match.group(1)), htmllib.unescape(match.group(2))


def frame_src(html: str) -> str:
    match = re.search(r'<noscript><iframe class="pane-frame" src="([^"]+)" title="[^"]+"></iframe></noscript>', html)
    assert match, "no message frame for browsers without JavaScript"
    return htmllib.unescape(match.group(1))


def pane_refresh(html: str) -> tuple[int, str]:
    match = re.search(r'<meta http-equiv="refresh" content="(\d+);url=([^"]+)">', html)
    assert match, "the pane does not refresh itself"
    return int(match.group(1)), htmllib.unescape(match.group(2))


async def test_message_pane_shows_new_messages_and_reloads_to_a_new_url_each_time(login_as: Any, svc: Services, clock: Any) -> None:
    alice = await login_as("alice")
    bob = await login_as("bob")
    conv = await open_direct(bob, "alice")
    await send(bob, conv, "first")
    page = await page_html(alice, f"/chats/{conv}")
    src = frame_src(page)
    assert src.startswith(f"/chats/{conv}/pane?") and src.endswith("#bottom")
    # The page's own list (for the script) and the stylesheet that hides it without JavaScript.
    assert 'href="/static/css/nojs.css"' in page and bodies(page) == ["first"]

    seen = [src.split("#")[0]]
    url = src
    for n, text in enumerate(["second", "third", "fourth"], start=1):
        await send(bob, conv, text)
        clock.advance(30)
        r = await alice.get(url.split("#")[0])
        assert r.status_code == 200
        html = await r.get_data(as_text=True)
        assert bodies(html) == ["first", "second", "third", "fourth"][: n + 1]
        assert 'id="compose"' not in html and "<form" not in html  # the draft lives in the page around it
        assert f"Updated {clock.now():%H:%M}" in html
        seconds, url = pane_refresh(html)
        assert seconds == 30
        assert url.endswith("#bottom") and "auto=1" in url and f"n={n}" in url
        seen.append(url.split("#")[0])
    # Every refresh goes to a URL other than the current one: Chromium really reloads.
    assert len(set(seen)) == len(seen)
    # Shown in the frame counts as delivered, not read: the page's GET read only "first".
    mine = await membership(svc, conv, "alice")
    newest = (await all_messages(svc, conv))[-1].id
    assert mine.last_delivered_id == newest and mine.last_read_id < newest
    # "New messages" stays where the page around the frame found it (before "first"), though
    # the page's GET has read "first" since.
    html = await page_html(alice, url)
    assert bodies(html.split('id="new"')[1]) == ["first", "second", "third", "fourth"]


async def test_message_pane_headers_allow_same_origin_framing_there_only(login_as: Any) -> None:
    alice = await login_as("alice")
    await login_as("bob")
    conv = await open_direct(alice, "bob")
    pane = await alice.get(f"/chats/{conv}/pane?auto=1")
    assert pane.status_code == 200
    assert "frame-ancestors 'self'" in pane.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" not in pane.headers["Content-Security-Policy"]
    assert pane.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert pane.headers["Cache-Control"] == "no-store"
    for path in (f"/chats/{conv}", "/chats", "/login", f"/chats/{conv}/info", f"/chats/{conv}/messages.json?before=9"):
        r = await alice.get(path)
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"], path
        assert r.headers["X-Frame-Options"] == "DENY", path
    outsider = await login_as("mallory")
    missing = await outsider.get(f"/chats/{conv}/pane?auto=1")
    assert missing.status_code == 404


async def test_message_pane_links_leave_the_frame(login_as: Any, svc: Services) -> None:
    alice = await login_as("alice")
    await login_as("bob")
    conv = await open_direct(alice, "bob")
    for i in range(60):  # more than a page: an "Older messages" link
        await send(alice, conv, f"line {i} https://lab.example/r/{i}")
    html = await page_html(alice, f"/chats/{conv}/pane?auto=1")
    newest = (await all_messages(svc, conv))[-1].id
    # Reply opens the conversation page with the reply bar, not inside the frame, and without
    # a #fragment (it would cancel the box's autofocus).
    assert f'<a class="reply-link" href="/chats/{conv}?reply_to={newest}" target="_top"' in html
    assert re.search(r'<p class="older"><a href="/chats/\d+\?before=\d+" target="_top">Older messages</a>', html)
    assert 'target="_blank"' in html  # links in messages open a tab of their own
    # The reply page: the reply bar, the cursor in the box, the frame again at its bottom.
    page = await page_html(alice, f"/chats/{conv}?reply_to={newest}")
    assert "Replying to" in page
    assert re.search(r'<textarea id="body"[^>]* autofocus', page)
    assert frame_src(page).endswith("#bottom")


async def test_message_pane_never_counts_as_activity_and_says_when_signed_out(login_as: Any, clock: Any, app: Any) -> None:
    alice = await login_as("alice")
    await login_as("bob")
    conv = await open_direct(alice, "bob")
    page = await page_html(alice, f"/chats/{conv}")  # the person was here
    url = frame_src(page)
    elapsed = 0
    while True:  # a refresh every 30 s, and nothing else
        clock.advance(30)
        elapsed += 30
        r = await alice.get(url.split("#")[0])
        html = await r.get_data(as_text=True)
        if "signed out" in html or elapsed > 3600:
            break
        url = pane_refresh(html)[1]
    assert elapsed == app.config["SESSION_IDLE_SECONDS"]  # the refreshes held nothing off
    assert r.status_code == 200
    assert "You have been signed out" in html and 'target="_top"' in html
    assert f'href="/login?next=/chats/{conv}"' in html
    assert "http-equiv=\"refresh\"" not in html  # nothing more to fetch
    assert r.headers["X-Frame-Options"] == "SAMEORIGIN"
    # The page around it reloads after the idle timeout: it finds the session ended.
    seconds, lock = noscript_refresh(page)
    assert seconds == app.config["SESSION_IDLE_SECONDS"] + 5
    assert "auto=1" in lock and "n=1" in lock
    ended = await alice.get(lock)
    assert ended.status_code in (302, 303) and "/login" in ended.headers["Location"]
    assert "auto" not in (await page_html(alice, ended.headers["Location"])).split('name="next"')[1][:60]


# --- directory and direct chats ------------------------------------------------------------


async def test_directory_search(login_as: Any, make_user: Any) -> None:
    alice = await login_as("alice")
    await make_user("bmensah", "Ben Mensah", department="Radiology", job_title="Radiographer")
    await make_user("cdiaz", "Carla Diaz", department="Intensive Care", job_title="Charge Nurse")
    await make_user("dold", "Dora Old", department="Radiology", job_title="Porter")

    async def found(q: str) -> set[str]:
        return set(re.findall(r"@([a-z0-9._-]+)", await page_html(alice, f"/directory?q={q}")))

    assert await found("mensah") == {"bmensah"}
    assert await found("radiology") == {"bmensah", "dold"}
    assert await found("charge+nurse") == {"cdiaz"}
    assert await found("RADIOGRAPHER") == {"bmensah"}
    assert await found("radiology+porter") == {"dold"}
    assert await found("%25") == set()  # a LIKE wildcard typed is just a character
    assert "Nobody matches" in await page_html(alice, "/directory?q=zzzz")


async def test_directory_hides_deactivated_staff(login_as: Any, svc: Services) -> None:
    admin = await login_as("root", admin=True)
    await login_as("bob")
    bob_id = await user_id(svc, "bob")
    await admin.submit(f"/admin/staff/{bob_id}/deactivate", {}, page=f"/admin/staff/{bob_id}")
    assert "@bob" not in await page_html(admin, "/directory?q=bob")


async def test_direct_chat_is_created_once_and_reopened(login_as: Any, svc: Services) -> None:
    alice = await login_as("alice")
    bob = await login_as("bob")
    first = await open_direct(alice, "bob")
    again = await open_direct(alice, "bob")
    from_bob = await open_direct(bob, "alice")
    assert first == again == from_bob
    r = await alice.submit("/chats/direct", {"username": "bob"}, page="/directory")
    assert r.headers["Location"].endswith(f"/chats/{first}#bottom")
    html = await page_html(alice, f"/chats/{first}")
    assert re.search(r"<h1[^>]*>Bob</h1>", html)


async def test_direct_chat_with_nobody_or_myself(login_as: Any) -> None:
    alice = await login_as("alice")
    assert (await alice.submit("/chats/direct", {"username": "ghost"}, page="/directory")).status_code == 404
    assert (await alice.submit("/chats/direct", {"username": "alice"}, page="/directory")).status_code == 400
    assert chat_list(await page_html(alice, "/chats")) == []


@pytest.mark.parametrize("junk", ["\x00", "bob\x00", "\x00\x01", "b\u0130b", "bob;"])
async def test_names_that_cannot_be_usernames_are_a_clear_4xx(login_as: Any, svc: Services, junk: str) -> None:
    """NUL and other junk in ``members`` / ``username`` never reach the database's IN (...)
    (PostgreSQL refuses NUL in text: that was a 500): the same answers as unknown names."""
    alice = await login_as("alice")
    await login_as("bob")
    conv = await create_group(alice, "Ward 7", ["bob"])
    before = await snapshot(svc)
    r = await alice.submit("/chats/direct", {"username": junk}, page="/directory")
    assert r.status_code == 404
    r = await alice.submit("/chats/group", {"title": "Ward 8", "members": ["bob", junk]}, page="/chats/new-group")
    assert r.status_code == 400
    html = await r.get_data(as_text=True)
    assert "Unknown or inactive: names that are not usernames." in error_text(html)
    assert "\x00" not in html
    r = await alice.submit(f"/chats/{conv}/members", {"username": junk}, page=f"/chats/{conv}/info")
    assert r.status_code == 400
    assert "Unknown or inactive" in error_text(await r.get_data(as_text=True))
    # The filter buttons show the same forms again, with the junk name dropped.
    r = await alice.submit("/chats/new-group", {"title": "Ward 8", "members": [junk, "bob"]}, page="/chats/new-group")
    assert r.status_code == 200
    r = await alice.submit(f"/chats/{conv}/info", {"username": [junk]}, page=f"/chats/{conv}/info")
    assert r.status_code == 200
    assert await snapshot(svc) == before


# --- groups -------------------------------------------------------------------------------


async def test_group_lifecycle_with_system_lines(login_as: Any, svc: Services) -> None:
    alice = await login_as("alice", display_name="Alice Ames")
    bob = await login_as("bob", display_name="Bob Brown")
    await login_as("carol", display_name="Carol Cole")
    dave = await login_as("dave", display_name="Dave Dunn")
    conv = await create_group(alice, "Ward 7 nights", ["bob", "carol"])
    info = await page_html(alice, f"/chats/{conv}/info")
    assert "3 members" in info
    assert chat_list(await page_html(bob, "/chats"))[0][0] == conv

    r = await alice.submit(f"/chats/{conv}/rename", {"title": "Ward 7"}, page=f"/chats/{conv}/info")
    assert r.status_code == 303
    r = await alice.submit(f"/chats/{conv}/members", {"username": "dave"}, page=f"/chats/{conv}/info")
    assert r.status_code == 303
    await send(bob, conv, "hello all")
    carol_id = await user_id(svc, "carol")
    r = await alice.submit(f"/chats/{conv}/members/{carol_id}/remove", {}, page=f"/chats/{conv}/info")
    assert r.status_code == 303
    r = await dave.submit(f"/chats/{conv}/leave", {}, page=f"/chats/{conv}/info")
    assert r.status_code == 303

    html = await page_html(alice, f"/chats/{conv}")
    assert system_lines(html) == [
        "Alice Ames created the group \u201cWard 7 nights\u201d with Bob Brown, Carol Cole",
        "Alice Ames renamed the group to \u201cWard 7\u201d",
        "Alice Ames added Dave Dunn",
        "Alice Ames removed Carol Cole",
        "Dave Dunn left",
    ]
    assert '<span class="sender" dir="auto">Bob Brown</span>' in html  # sender names in groups
    assert re.search(r"<h1[^>]*>Ward 7</h1>", html)
    # Those who left no longer see it.
    carol = await login_as("carol")
    assert (await carol.get(f"/chats/{conv}")).status_code == 404
    assert (await dave.get(f"/chats/{conv}")).status_code == 404
    assert "2 members" in await page_html(alice, f"/chats/{conv}/info")


async def test_group_member_cannot_manage_the_group(login_as: Any, svc: Services) -> None:
    alice = await login_as("alice")
    bob = await login_as("bob")
    await login_as("carol")
    await login_as("dave")
    conv = await create_group(alice, "Ward 7", ["bob", "carol"])
    before = await snapshot(svc)
    carol_id = await user_id(svc, "carol")
    alice_id = await user_id(svc, "alice")
    token = await bob.csrf(f"/chats/{conv}/info")
    for path, form in [
        (f"/chats/{conv}/rename", {"title": "Bob's group"}),
        (f"/chats/{conv}/members", {"username": "dave"}),
        (f"/chats/{conv}/members/{carol_id}/remove", {}),
        (f"/chats/{conv}/members/{alice_id}/remove", {}),
    ]:
        r = await bob.post(path, form={**form, "csrf_token": token})
        assert r.status_code == 403, path
    assert await snapshot(svc) == before
    info = await page_html(bob, f"/chats/{conv}/info")
    assert "/rename" not in info and "Remove</button>" not in info


async def test_group_needs_a_title(login_as: Any) -> None:
    alice = await login_as("alice")
    await login_as("bob")
    r = await alice.submit("/chats/group", {"title": "   ", "members": ["bob"]}, page="/chats/new-group")
    assert r.status_code == 400
    assert "group name" in error_text(await r.get_data(as_text=True))
    r = await alice.submit("/chats/group", {"title": "\u3164\u200b\u2800", "members": ["bob"]}, page="/chats/new-group")
    assert r.status_code == 400  # only invisible characters: no name at all
    html = await r.get_data(as_text=True)
    assert "group name cannot be empty" in error_text(html)
    assert 'value="\u3164\u200b\u2800"' in html  # what was typed is kept
    r = await alice.submit("/chats/group", {"title": "Ward", "members": ["nobody"]}, page="/chats/new-group")
    assert r.status_code in (400, 404)
    assert chat_list(await page_html(alice, "/chats")) == []


def checkboxes(html: str, name: str = "members") -> list[tuple[str, bool]]:
    """The (value, ticked) of the tickable checkboxes named ``name``, in page order."""
    found = []
    for tag in re.findall(r'<input type="checkbox"[^>]*>', html):
        if f' name="{name}"' in tag:
            value = re.search(r' value="([^"]*)"', tag)
            assert value, tag
            found.append((htmllib.unescape(value.group(1)), " checked" in tag))
    return found


def ticked(html: str, name: str = "members") -> list[str]:
    return [value for value, on in checkboxes(html, name) if on]


def listed(html: str, name: str = "members") -> list[str]:
    return [value for value, _ in checkboxes(html, name)]


async def test_new_group_filter_keeps_the_title_and_the_ticked_members(login_as: Any, make_user: Any) -> None:
    alice = await login_as("alice")
    await make_user("bob", "Bob Registrar", job_title="Registrar")
    await make_user("carol", "Carol Consultant", job_title="Consultant")
    await make_user("dan", "Dan Pharmacist", job_title="Pharmacist", department="Pharmacy")
    page = await page_html(alice, "/chats/new-group")
    # One form: Filter posts it back to this page, Create group to /chats/group.
    assert re.search(r'<button type="submit" form="new-group-form" formaction="/chats/new-group" formnovalidate>Filter</button>', page)
    assert re.search(r'<input id="q" name="q" type="search" value="" maxlength="100" [^>]*form="new-group-form">', page)
    assert re.search(r'<select id="department" name="department" form="new-group-form">', page)
    assert '<form method="post" action="/chats/group" class="stack" id="new-group-form">' in page
    r = await alice.submit("/chats/new-group", {"title": "Bed 12 <team>", "members": ["bob"], "q": "Pharm"}, page="/chats/new-group")
    assert r.status_code == 200
    html = await r.get_data(as_text=True)
    assert 'id="title" name="title" dir="auto" value="Bed 12 &lt;team&gt;"' in html
    assert 'value="Pharm"' in html
    # Bob was ticked and stays ticked though the filter does not match him; Dan matches.
    assert ticked(html) == ["bob"]
    assert listed(html) == ["bob", "dan"]
    # Another filter, another tick: both kept; then Create group makes the group with both.
    r = await alice.submit("/chats/new-group", {"title": "Bed 12 <team>", "members": ["bob", "dan"], "q": "carol"}, page="/chats/new-group")
    html = await r.get_data(as_text=True)
    assert ticked(html) == ["bob", "dan"] and listed(html) == ["bob", "dan", "carol"]
    made = await alice.submit("/chats/group", {"title": "Bed 12 <team>", "members": ["bob", "dan", "carol"], "q": "carol"}, page="/chats/new-group")
    assert made.status_code == 303
    # A filter never creates anything, and an empty title does not stop it.
    r = await alice.submit("/chats/new-group", {"title": "", "members": ["nobody", "alice"], "q": ""}, page="/chats/new-group")
    assert r.status_code == 200 and ticked(await r.get_data(as_text=True)) == []
    assert len(chat_list(await page_html(alice, "/chats"))) == 1


async def test_new_group_error_keeps_the_ticked_members(login_as: Any, make_user: Any) -> None:
    alice = await login_as("alice")
    await make_user("bob")
    r = await alice.submit("/chats/group", {"title": "  ", "members": ["bob"], "q": "zzz"}, page="/chats/new-group")
    assert r.status_code == 400
    html = await r.get_data(as_text=True)
    assert ticked(html) == ["bob"] and 'value="zzz"' in html


async def test_owner_leaving_hands_the_group_on(login_as: Any, svc: Services) -> None:
    alice = await login_as("alice")
    bob = await login_as("bob")
    conv = await create_group(alice, "Ward 7", ["bob"])
    assert (await alice.submit(f"/chats/{conv}/leave", {}, page=f"/chats/{conv}/info")).status_code == 303
    r = await bob.submit(f"/chats/{conv}/rename", {"title": "Bob's ward"}, page=f"/chats/{conv}/info")
    assert r.status_code == 303


# --- history pages ------------------------------------------------------------------------


async def test_keyset_pagination(login_as: Any, svc: Services) -> None:
    alice = await login_as("alice")
    await login_as("bob")
    conv = await open_direct(alice, "bob")
    async with svc.db.reading() as s:
        from app.store.staff import get_staff

        me = await get_staff(s, await user_id(svc, "alice"))
    assert me is not None
    for i in range(1, 121):
        await do_send_message(svc, actor_for(me), conv, f"message {i:03d}", new_id())
    ids = [m.id for m in await all_messages(svc, conv)]

    html = await page_html(alice, f"/chats/{conv}")
    assert bodies(html) == [f"message {i:03d}" for i in range(71, 121)]
    older = re.search(r'<a href="([^"]+)">Older messages</a>', html)
    assert older
    link = htmllib.unescape(older.group(1))
    assert link == f"/chats/{conv}?before={ids[70]}"

    html = await page_html(alice, link)
    assert bodies(html) == [f"message {i:03d}" for i in range(21, 71)]
    link = htmllib.unescape(re.search(r'<a href="([^"]+)">Older messages</a>', html).group(1))  # type: ignore[union-attr]
    assert link == f"/chats/{conv}?before={ids[20]}"
    assert "Newest messages" in html

    html = await page_html(alice, link)
    assert bodies(html) == [f"message {i:03d}" for i in range(1, 21)]
    assert "Older messages" not in html


async def test_day_separators(login_as: Any, svc: Services, clock: Any) -> None:
    alice = await login_as("alice")
    bob = await login_as("bob")
    conv = await open_direct(alice, "bob")
    await send(alice, conv, "monday")
    clock.advance(24 * 3600)
    bob = await login_as("bob")  # the old session has timed out overnight
    await send(bob, conv, "tuesday")
    clock.advance(60)
    html = await page_html(bob, f"/chats/{conv}")
    days = re.findall(r'<li class="day"><span>(.*?)</span>', html)  # no role: an <ol> holds list items only (axe)
    assert days == ["Yesterday", "Today"]
    clock.advance(7 * 24 * 3600)  # a week on, the days are named in full
    bob = await login_as("bob")
    html = await page_html(bob, f"/chats/{conv}")
    assert re.findall(r'<li class="day"><span>(.*?)</span>', html) == ["Monday 5 January 2026", "Tuesday 6 January 2026"]


# --- text ---------------------------------------------------------------------------------


async def test_text_is_stored_exactly_and_rendered_escaped(login_as: Any, svc: Services) -> None:
    alice = await login_as("alice")
    bob = await login_as("bob")
    conv = await open_direct(alice, "bob")
    assert (await send(alice, conv, CLINICAL)).status_code == 303
    assert [m.body for m in await all_messages(svc, conv)] == [CLINICAL]
    html = await page_html(bob, f"/chats/{conv}")
    assert "K+ &lt; 3.5 &amp; BP &gt; 140 &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    # The only script elements are the app's own files.
    for tag in re.findall(r"<script[^>]*>", html, re.I):
        assert re.search(r'src="/static/', tag), tag
    listing = await page_html(bob, "/chats")
    assert "&lt;script&gt;" in listing and "<script>alert" not in listing


HEBREW_NAME = "\u05d3\u05e0\u05d4 \u05dc\u05d5\u05d9"  # Dana Levi
ARABIC_TITLE = "\u062c\u0646\u0627\u062d 7"  # Ward 7
HEBREW = "\u05d4\u05de\u05d8\u05d5\u05e4\u05dc \u05d1\u05de\u05d9\u05d8\u05d4 4"
SPOOF = "http://evil.example/\u202egnp.exe"


async def test_user_text_is_isolated_and_links_show_bidi_controls(login_as: Any, svc: Services) -> None:
    """Bodies, names and titles carry dir="auto"; a link's text cannot be reordered."""
    alice = await login_as("alice")
    await login_as("dana", display_name=HEBREW_NAME)
    conv = await create_group(alice, ARABIC_TITLE + " \u202e", ["dana"])
    dana = await login_as("dana")
    await send(dana, conv, HEBREW)
    await send(dana, conv, SPOOF)
    assert [m.body for m in await all_messages(svc, conv) if m.kind == "text"] == [HEBREW, SPOOF]  # as typed
    html = await page_html(alice, f"/chats/{conv}")
    assert f'<h1 id="conv-title" dir="auto">{ARABIC_TITLE} \u202e</h1>' in html
    assert html.count(f'<span class="sender" dir="auto">{HEBREW_NAME}</span>') == 2
    assert bodies(html)[-2] == HEBREW  # Hebrew intact
    link = re.findall(r"<a [^>]*>(.*?)</a>", re.findall(r'<div class="body" dir="auto">(.*?)</div>', shown(html), re.S)[-1])
    assert link == ["http://evil.example/[U+202E]gnp.exe"]
    # Every element that holds a title, a name or a preview is isolated the same way.
    assert f'<bdi dir="auto">{ARABIC_TITLE} \u202e</bdi>' in html  # the chat list beside it
    assert re.search(r'<span class="chat-preview" dir="auto">', html)
    assert '<span class="whoami" dir="auto">Alice</span>' in html
    info = await page_html(alice, f"/chats/{conv}/info")
    assert f'<h1 dir="auto">{ARABIC_TITLE} \u202e</h1>' in info
    assert f'<strong dir="auto">{HEBREW_NAME}</strong>' in info
    directory = await page_html(alice, "/directory")
    assert f'<strong dir="auto">{HEBREW_NAME}</strong>' in directory


async def test_links_and_line_breaks(login_as: Any, svc: Services) -> None:
    alice = await login_as("alice")
    await login_as("bob")
    conv = await open_direct(alice, "bob")
    await send(alice, conv, "Protocol:\r\nhttps://intranet.nhs.uk/sepsis?a=1&b=2\nthanks")
    assert (await all_messages(svc, conv))[0].body == "Protocol:\nhttps://intranet.nhs.uk/sepsis?a=1&b=2\nthanks"
    html = await page_html(alice, f"/chats/{conv}")
    body = re.search(r'<div class="body" dir="auto">(.*?)</div>', html, re.S).group(1)  # type: ignore[union-attr]
    assert body.count("<br>") == 2
    anchor = re.search(r"<a [^>]*>", body).group(0)  # type: ignore[union-attr]
    assert 'href="https://intranet.nhs.uk/sepsis?a=1&amp;b=2"' in anchor
    assert 'rel="noopener noreferrer nofollow"' in anchor


async def test_javascript_urls_are_not_linked(login_as: Any) -> None:
    alice = await login_as("alice")
    await login_as("bob")
    conv = await open_direct(alice, "bob")
    await send(alice, conv, 'javascript:alert(1) <a href="javascript:alert(2)">x</a>')
    html = await page_html(alice, f"/chats/{conv}")
    body = re.search(r'<div class="body" dir="auto">(.*?)</div>', html, re.S).group(1)  # type: ignore[union-attr]
    assert "<a " not in body


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Type a message first."),
        ("   \r\n\t  ", "Type a message first."),
        ("x" * 4001, "at most 4000 characters"),
        ("null \x00 byte", "control characters"),
        ("bell \x07", "control characters"),
        ("\u200b\u2800\u3164", "Type a message first."),
        ("\u0301\ufe0f\u202e", "Type a message first."),
    ],
    ids=["empty", "whitespace", "4001-chars", "nul", "bell", "invisible-letters", "marks-and-controls"],
)
async def test_bad_message_shows_the_form_again(login_as: Any, svc: Services, typed: str, message: str) -> None:
    alice = await login_as("alice")
    await login_as("bob")
    conv = await open_direct(alice, "bob")
    cid = new_id()
    r = await send(alice, conv, typed, client_msg_id=cid)
    assert r.status_code == 400
    html = await r.get_data(as_text=True)
    assert message in error_text(html)
    assert htmllib.unescape(textarea(html)) == typed  # what was typed is kept
    assert hidden(html, "client_msg_id") == cid  # the retry stays idempotent
    assert await all_messages(svc, conv) == []


async def test_4000_chars_is_fine(login_as: Any, svc: Services) -> None:
    alice = await login_as("alice")
    await login_as("bob")
    conv = await open_direct(alice, "bob")
    text = "\U0001f489" * 4000  # four bytes each in UTF-8
    r = await send(alice, conv, text)
    assert r.status_code == 303
    assert (await all_messages(svc, conv))[0].body == text


async def test_reply_to(login_as: Any, svc: Services) -> None:
    alice = await login_as("alice")
    bob = await login_as("bob")
    conv = await open_direct(alice, "bob")
    await send(alice, conv, "is bed 4 free?")
    first = (await all_messages(svc, conv))[0].id
    html = await page_html(bob, f"/chats/{conv}?reply_to={first}")
    assert "Replying to" in html
    form = {"body": "yes", "client_msg_id": hidden(html, "client_msg_id"), "csrf_token": hidden(html, "csrf_token"), "reply_to": str(first)}
    assert (await bob.post(f"/chats/{conv}/messages", form=form)).status_code == 303
    assert (await all_messages(svc, conv))[-1].reply_to_id == first
    assert f'<a class="quote" href="#m{first}">' in await page_html(alice, f"/chats/{conv}")


# --- every conversation URL is 404 for a non-member ----------------------------------------


@pytest.mark.parametrize("outsider_is_admin", [False, True], ids=["member", "site-admin"])
@pytest.mark.parametrize("kind", ["group", "direct"])
@pytest.mark.parametrize(("rule", "method"), CONVERSATION_RULES)
async def test_conversation_urls_are_404_for_non_members(login_as: Any, svc: Services, rule: str, method: str, kind: str, outsider_is_admin: bool) -> None:
    alice = await login_as("alice")
    await login_as("bob")
    conv = await create_group(alice, "Ward 7", ["bob"]) if kind == "group" else await open_direct(alice, "bob")
    await send(alice, conv, "confidential")
    mallory = await login_as("mallory", admin=outsider_is_admin)
    messages = await all_messages(svc, conv)
    values = {"conversation_id": conv, "user_id": await user_id(svc, "bob"), "message_id": messages[-1].id}
    path = fill(rule, values)
    before = await snapshot(svc)
    messages_before = len(await all_messages(svc))
    if method == "GET":
        r = await mallory.get(path)
    else:
        token = await mallory.csrf("/chats")
        form = {"csrf_token": token, "body": "let me in", "client_msg_id": new_id(), "title": "Mine now", "username": "mallory"}
        # The token as a form field and as the header uploads carry it in (app/web/files.py).
        r = await mallory.raw.open(path, method=method, form=form, scheme="https", headers={"X-CSRF-Token": token})
    html = await r.get_data(as_text=True)
    assert r.status_code == 404, (path, r.status_code)
    assert "confidential" not in html and "Ward 7" not in html
    assert len(await all_messages(svc)) == messages_before
    assert await snapshot(svc) == before


async def test_conversation_rules_cover_the_forms() -> None:
    found = {rule for rule, _ in CONVERSATION_RULES}
    assert "/chats/<int:conversation_id>" in found
    assert "/chats/<int:conversation_id>/messages" in found
    assert len(found) >= 7


async def test_unknown_conversation_is_404(login_as: Any) -> None:
    alice = await login_as("alice")
    assert (await alice.get("/chats/999999")).status_code == 404
    r = await alice.submit("/chats/999999/messages", {"body": "x", "client_msg_id": new_id()})
    assert r.status_code == 404
