"""The PWA catches up after a lost connection (issue 10: the change stream), in Debian's Chromium.

A page that was offline while others renamed its group, read its messages, wrote, or removed
its reader comes back with ``/ws?since=<position>``; the server's ``sync`` frame carries every
change it missed and the page applies each one as if it had come live, without a reload:
the new title, the read tick, the new message exactly once; a reader removed meanwhile leaves
the group's page and never sees what was written after.

Bob works without JavaScript (the forms), so nothing he does reaches Alice's or Carol's page
except through the stream. Every frame the pages receive is recorded, so the tests also show
that the changes came in the ``sync`` answer to the reconnection, not live.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import ServerProcess, start_server

pytestmark = [pytest.mark.e2e, pytest.mark.service_worker]

PASSWORD = "lantern orchard pebble 8812"
ALICE = {"username": "alice.resume", "display_name": "Alice Nurse"}
BOB = {"username": "bob.resume", "display_name": "Bob Registrar"}
CAROL = {"username": "carol.resume", "display_name": "Carol Consultant"}
DAN = {"username": "dan.resume", "display_name": "Dan Pharmacist"}
DESKTOP = {"width": 1280, "height": 800}
TIMEOUT = 10_000  # ms: everything must show within this


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(
        tmp_path_factory.mktemp("instance-pwa-resume"), name="test_pwa_resume",
        env={"MEDCHAT_RATE_LIMIT_ENABLED": "false"},
    )
    try:
        for who in (ALICE, BOB, CAROL, DAN):
            running.create_user(who["username"], PASSWORD, display_name=who["display_name"])
        yield running
    finally:
        running.stop()



class Tab:
    """A browser context with one page: its console errors, its WebSockets and every frame they received."""

    def __init__(self, name: str, context: Any, page: Any) -> None:
        self.name = name
        self.context = context
        self.page = page
        self.errors: list[str] = []
        self.sockets: list[Any] = []
        self.frames: list[tuple[int, dict[str, Any]]] = []  # (index of the socket in self.sockets, frame)
        page.on("console", lambda msg: self.errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("websocket", self._socket)

    def _socket(self, ws: Any) -> None:
        index = len(self.sockets)
        self.sockets.append(ws)

        def received(payload: str | bytes) -> None:
            parsed = json.loads(payload)
            for frame in parsed if isinstance(parsed, list) else [parsed]:  # ?batch=1: several frames at once
                self.frames.append((index, frame))

        ws.on("framereceived", received)

    @classmethod
    async def open(cls, browser: Any, server: ServerProcess, name: str, who: dict[str, str], *, js: bool = True) -> Tab:
        context = await browser.new_context(base_url=server.base_url, ignore_https_errors=True, java_script_enabled=js, viewport=DESKTOP)
        tab = cls(name, context, await context.new_page())
        await tab.page.goto("/login")
        await tab.page.fill("#username", who["username"])
        await tab.page.fill("#password", PASSWORD)
        async with tab.page.expect_navigation(url=re.compile(r"/chats$")):
            await tab.page.click("main button[type=submit]")
        return tab

    async def goto(self, path: str) -> None:
        response = await self.page.goto(path)
        assert response is not None and response.status == 200, f"{self.name}: GET {path} -> {response and response.status}"

    async def state(self, state: str) -> None:
        await self.page.wait_for_function("s => window.medchat && window.medchat.state === s", arg=state, timeout=TIMEOUT)

    async def submit(self, button: str) -> None:
        """Click a form's button on a no-JS page and wait for the page the POST leads to."""
        async with self.page.expect_navigation():
            await self.page.click(button)

    async def bodies(self) -> list[str]:
        return [t.strip() for t in await self.page.locator("#messages li.msg:not(.system) .body").all_inner_texts()]

    async def go_offline(self) -> Any:
        """Cut the network; wait until the page's socket has really closed. Returns that socket."""
        await self.state("open")
        live = self.sockets[-1]
        assert not live.is_closed()
        await self.context.set_offline(True)
        await self.state("offline")
        if not live.is_closed():
            await live.wait_for_event("close", timeout=TIMEOUT)
        assert live.is_closed()
        return live

    def received_on(self, index: int) -> list[dict[str, Any]]:
        return [frame for i, frame in self.frames if i == index]

    def assert_clean(self) -> None:
        assert self.errors == [], f"{self.name}: errors in the browser console:\n" + "\n".join(self.errors)


async def expect_text(locator: Any, text: str | re.Pattern[str]) -> None:
    from playwright.async_api import expect

    await expect(locator).to_have_text(text, timeout=TIMEOUT)


async def create_group(tab: Tab, title: str, members: list[dict[str, str]]) -> str:
    await tab.goto("/chats/new-group")
    await tab.page.fill("#title", title)
    for who in members:
        await tab.page.check(f"input[name=members][value='{who['username']}']")
    async with tab.page.expect_navigation(url=re.compile(r"/chats/\d+")):
        await tab.page.click("main form.stack button[type=submit]")
    return "/" + tab.page.url.split("/", 3)[3].split("#")[0]


async def send_nojs(tab: Tab, text: str) -> None:
    await tab.page.fill("#body", text)
    await tab.submit("#compose button[type=submit]")


async def send_live(tab: Tab, text: str) -> None:
    """Send from a PWA page and wait until the server has stored it (no longer pending)."""
    await tab.page.fill("#body", text)
    await tab.page.press("#body", "Enter")
    mine = tab.page.locator("#messages li.msg.mine").filter(has_text=text)
    await mine.locator(".ticks:not(.pending)").wait_for(timeout=TIMEOUT)
    await tab.page.wait_for_function("() => !document.querySelector('#messages li.msg.pending')", timeout=TIMEOUT)


def sync_changes(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [change for frame in frames if frame.get("type") == "sync" for change in frame.get("changes", [])]


async def test_back_online_the_page_shows_the_rename_the_read_tick_and_the_message_once(server: ServerProcess, browser: Any) -> None:
    bob = await Tab.open(browser, server, "bob", BOB, js=False)
    alice = await Tab.open(browser, server, "alice", ALICE)
    try:
        group = await create_group(bob, "Ward 9 nights", [ALICE, DAN])
        conv_id = int(group.rsplit("/", 1)[1])
        await alice.goto(group)
        await alice.state("open")
        await send_live(alice, "Bed 3 needs a cannula before midnight")
        mine = alice.page.locator("#messages li.msg.mine .ticks").last
        await expect_text(mine, re.compile(r"Read by 0 of 2"))  # Bob's page is from before it
        await alice.page.evaluate("() => { window.sameDocument = true; }")  # gone if the page reloads

        cut = await alice.go_offline()
        await expect_text(alice.page.locator("#conn-banner"), re.compile("You are offline"))

        # Meanwhile Bob, without JavaScript: renames the group, reads Alice's message, answers.
        await bob.goto(f"{group}/info")
        await bob.page.fill("#title", "Ward 9 nights (east)")
        await bob.submit("main form.inline button[type=submit]")
        await bob.goto(group)  # the page on screen: his read watermark moves past Alice's message
        assert "Bed 3 needs a cannula" in await bob.page.locator("#messages").inner_text()
        await send_nojs(bob, "Done, 20G in the left forearm")

        # Nothing reached Alice's page so far.
        await expect_text(alice.page.locator("#conv-title"), "Ward 9 nights")
        assert await alice.bodies() == ["Bed 3 needs a cannula before midnight"]
        assert not [f for i, f in alice.frames if alice.sockets[i] is cut and f.get("type") == "conversation"]

        await alice.context.set_offline(False)
        await alice.state("open")
        await expect_text(alice.page.locator("#conv-title"), "Ward 9 nights (east)")
        await expect_text(mine, re.compile(r"Read by 1 of 2"))
        assert "read" not in ((await mine.get_attribute("class")) or "").split()  # Dan has not read it
        await expect_text(alice.page.locator("#messages li.msg.theirs .body"), ["Done, 20G in the left forearm"])
        await expect_text(alice.page.locator(f"#chat-list li.chat-item[data-conversation-id='{conv_id}'] .chat-title"), re.compile(r"Ward 9 nights \(east\)"))
        assert (await alice.page.title()).startswith("Ward 9 nights (east)")
        await expect_text(alice.page.locator("#conn-banner"), "")

        # A round trip after the catch-up: anything repeated would have come before this ack.
        await send_live(alice, "Thanks Bob")
        assert await alice.bodies() == ["Bed 3 needs a cannula before midnight", "Done, 20G in the left forearm", "Thanks Bob"]
        rows = await alice.page.eval_on_selector_all("#messages li.msg[id^=m]", "els => els.map((li) => [li.id, li.textContent.replace(/\\s+/g, ' ').trim()])")
        ids = [row[0] for row in rows]
        assert len(ids) == len(set(ids)) == 5, rows  # created, Alice's, the rename's system line, Bob's, Alice's
        assert [row[1] for row in rows].count(next(r[1] for r in rows if "Done, 20G" in r[1])) == 1
        assert len([row for row in rows if "renamed" in row[1] and "Ward 9 nights (east)" in row[1]]) == 1, rows
        assert await alice.page.evaluate("() => window.sameDocument === true"), "the page was reloaded"

        # It came through the resume: one sync answer on the new socket carries the three changes.
        resumed = alice.sockets.index(cut) + 1
        assert len(alice.sockets) == resumed + 1, "one new socket after the outage"
        assert alice.sockets[resumed].url.split("?", 1)[1].startswith("since=")
        changes = sync_changes(alice.received_on(resumed))
        first_id = int(str(await alice.page.locator("#messages li.msg.mine").first.get_attribute("id"))[1:])
        answer = [c["message"] for c in changes if c["type"] == "message" and c["message"]["body"] == "Done, 20G in the left forearm"]
        assert len(answer) == 1, changes
        bob_id = answer[0]["sender_id"]
        assert [c["conversation"]["title"] for c in changes if c["type"] == "conversation" and c["event"] == "renamed"] == ["Ward 9 nights (east)"]
        assert [c["read_id"] >= first_id for c in changes if c["type"] == "receipt" and c["user_id"] == bob_id] == [True], changes
        positions = [c["position"] for c in changes]
        assert positions == sorted(positions) and len(set(positions)) == len(positions)
        alice.assert_clean()
    finally:
        await alice.context.close()
        await bob.context.close()


async def test_removed_while_offline_the_page_leaves_the_group_and_never_shows_what_came_after(server: ServerProcess, browser: Any) -> None:
    bob = await Tab.open(browser, server, "bob", BOB, js=False)
    carol = await Tab.open(browser, server, "carol", CAROL)
    try:
        group = await create_group(bob, "Theatre list", [CAROL, DAN])
        conv_id = int(group.rsplit("/", 1)[1])
        await send_nojs(bob, "List starts 08:30")
        await carol.goto(group)
        await carol.state("open")
        assert await carol.bodies() == ["List starts 08:30"]

        await carol.go_offline()

        # Bob removes Carol (the confirmation page, then Remove), then writes to the group.
        await bob.goto(f"{group}/info")
        await bob.submit(f"a[aria-label='Remove {CAROL['display_name']}']")
        await bob.submit("form.actions button[type=submit]")
        assert CAROL["display_name"] not in await bob.page.locator("ul.people").inner_text()
        await bob.goto(group)
        await send_nojs(bob, "Secret: moved to theatre 4")

        # Back online: the page does what a live member_removed does, it leaves for the chat list.
        async with carol.page.expect_navigation(url=re.compile(r"/chats$"), timeout=TIMEOUT):
            await carol.context.set_offline(False)
        await carol.state("open")
        assert await carol.page.locator(f"#chat-list li.chat-item[data-conversation-id='{conv_id}']").count() == 0
        assert await carol.page.locator("section.conversation").count() == 0

        # Bob keeps writing to the group, then to Carol directly: once that shows on her list,
        # anything from the group would have come before it.
        await bob.goto(group)
        await send_nojs(bob, "Secret: and theatre 5 after lunch")
        await bob.goto(f"/directory?q={CAROL['display_name'].split()[0]}")
        await bob.submit(f"button[aria-label='Message {CAROL['display_name']}']")
        await send_nojs(bob, "Carol, call me about Tuesday")
        await expect_text(carol.page.locator("#chat-list li.chat-item .chat-preview").first, "Carol, call me about Tuesday")
        content = await carol.page.content()
        assert "Secret" not in content and "Theatre list" not in content
        bodies_seen = [f["message"]["body"] for _, f in carol.frames if f.get("type") == "message"]
        bodies_seen += [c["message"]["body"] for c in sync_changes([f for _, f in carol.frames]) if c["type"] == "message"]
        assert not [b for b in bodies_seen if b.startswith("Secret")], bodies_seen
        removed = [c for c in sync_changes([f for _, f in carol.frames]) if c["type"] == "conversation" and c.get("event") == "member_removed"]
        assert len(removed) == 1 and removed[0]["conversation"]["id"] == conv_id  # it came in the resume
        carol.assert_clean()
    finally:
        await carol.context.close()
        await bob.context.close()
