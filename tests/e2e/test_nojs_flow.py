"""The whole no-JavaScript story in Debian's Chromium against a real Hypercorn.

An administrator uses the one-time setup link, invites two colleagues, who set their
passwords and log in in their own browser contexts; they chat in a group and one-to-one,
see unread counts, and a message full of HTML shows as text with nothing running.
Screenshots go to test-artifacts/e2e/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import ServerProcess, nojs_context

pytestmark = pytest.mark.e2e

ADMIN = {"username": "ada.admin", "display_name": "Ada Admin", "department": "IT", "job_title": "Administrator", "password": "granite violin sparrow 8812"}
ALICE = {"username": "alice.nurse", "display_name": "Alice Nurse", "department": "Cardiology", "job_title": "Charge nurse", "password": "meadow trumpet cobalt 5531"}
BOB = {"username": "bob.reg", "display_name": "Bob Registrar", "department": "Cardiology", "job_title": "Registrar", "password": "orbit pickle lantern 9027"}
DANGEROUS = "K+ < 3.5 & BP > 140 <script>alert(1)</script>"
GROUP = "Ward 7 handover"


class Person:
    """One browser context (own cookies, JavaScript off) and its page, with dialogs recorded."""

    def __init__(self, name: str, context: Any, page: Any) -> None:
        self.name = name
        self.context = context
        self.page = page
        self.dialogs: list[str] = []
        page.on("dialog", self._on_dialog)

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")

    async def goto(self, path: str) -> Any:
        response = await self.page.goto(path)
        assert response is not None
        assert response.status == 200, f"{self.name}: GET {path} -> {response.status}"
        return response

    async def submit(self, button: str, *, expect_url: str | re.Pattern[str] | None = None) -> Any:
        """Click a submit button and wait for the page the form leads to."""
        async with self.page.expect_navigation(wait_until="load") as navigation:
            await self.page.click(button)
        response = await navigation.value
        if expect_url is not None:
            if isinstance(expect_url, re.Pattern):
                assert expect_url.search(self.page.url), f"{self.name}: landed on {self.page.url}"
            else:
                assert self.page.url == expect_url, f"{self.name}: landed on {self.page.url}\n{await self.main_text()}"
        return response

    async def main_text(self) -> str:
        return str(await self.page.locator("main").inner_text())

    async def shot(self, artifacts: Path, what: str) -> None:
        await self.page.screenshot(path=str(artifacts / f"{self.name}-{what}.png"), full_page=True)


async def open_person(browser: Any, server: ServerProcess, name: str) -> Person:
    context = await nojs_context(browser, server.base_url)
    return Person(name, context, await context.new_page())


async def set_password(person: Person, server: ServerProcess, link: str, who: dict[str, str]) -> None:
    await person.goto(link)
    assert f"Welcome, {who['display_name']}" in await person.main_text()
    await person.page.fill("#password", who["password"])
    await person.page.fill("#password2", who["password"])
    await person.submit("main button[type=submit]", expect_url=f"{server.base_url}/chats?welcome=1")
    assert "Your password is set and you are signed in" in await person.main_text()
    assert who["display_name"] in await person.page.locator(".whoami").inner_text()


async def invite(admin: Person, server: ServerProcess, who: dict[str, str]) -> str:
    """Create an account on /admin/staff and return the invite link the page shows."""
    await admin.goto("/admin/staff")
    for field in ("username", "display_name", "department", "job_title"):
        await admin.page.fill(f"#{field}", who[field])
    await admin.page.select_option("#role", "member")
    await admin.submit("main form.grid-form button[type=submit]")
    assert f"Account created for {who['display_name']}" in await admin.main_text()
    link = str(await admin.page.locator("#invite-link").input_value())
    assert link == await admin.page.locator("#invite-anchor").get_attribute("href")
    assert re.fullmatch(re.escape(server.base_url) + r"/invite/[A-Za-z0-9_\-]{20,}", link), link
    return link


async def send(person: Person, text: str) -> None:
    """Type into the compose box and press Send; the redirect lands at the bottom of the chat."""
    await person.page.fill("#body", text)
    await person.submit("#compose button[type=submit]", expect_url=re.compile(r"/chats/\d+#bottom$"))
    assert await person.page.locator("#compose-error").count() == 0, await person.main_text()


def message_frame(person: Person) -> Any:
    """The frame that shows an open conversation's newest messages without JavaScript."""
    frame = person.page.frame(url=re.compile(r"/chats/\d+/pane\?"))
    assert frame is not None, f"{person.name}: no message frame on {person.page.url}"
    return frame


async def message_bodies(person: Person) -> list[str]:
    """What the message frame shows; the page's own copy of the list (for the script) agrees."""
    shown = [t.strip() for t in await message_frame(person).locator("#messages li.msg:not(.system) .body").all_inner_texts()]
    copy = [t.strip() for t in await person.page.locator("#messages li.msg:not(.system) .body").all_text_contents()]
    assert shown == copy, (shown, copy)
    return shown


async def chat_item(person: Person, title: str) -> Any:
    item = person.page.locator("#chat-list li.chat-item").filter(has=person.page.locator(".chat-title", has_text=title))
    assert await item.count() == 1, f"{person.name}: no single chat titled {title!r} in\n{await person.main_text()}"
    return item


async def unread_badge(person: Person, title: str) -> int:
    """The number on the chat's unread badge (0 when there is none)."""
    item = await chat_item(person, title)
    badge = item.locator(".badge")
    if await badge.count() == 0:
        assert "unread" not in (await item.get_attribute("class") or "").split()
        return 0
    text = (await badge.inner_text()).strip()
    assert await badge.get_attribute("aria-label") == f"{text} unread"
    return int(text)


async def test_no_javascript_messenger_flow(server: ServerProcess, browser: Any, artifacts: Path) -> None:
    people: list[Person] = []
    try:
        # --- The administrator opens the one-time setup link and creates the first account.
        admin = await open_person(browser, server, "admin")
        people.append(admin)
        await admin.goto(server.setup_url)
        assert "Create the first administrator" in await admin.main_text()
        for field in ("username", "display_name", "department", "job_title"):
            await admin.page.fill(f"#{field}", ADMIN[field])
        await admin.page.fill("#password", ADMIN["password"])
        await admin.page.fill("#password2", ADMIN["password"])
        # Signed in at once, on the page where staff are invited.
        await admin.submit("main button[type=submit]", expect_url=f"{server.base_url}/admin/staff?welcome=1")
        assert "first administrator" in await admin.main_text()
        assert ADMIN["display_name"] in await admin.page.locator(".whoami").inner_text()
        # The link dies when used.
        used = await admin.page.goto(server.setup_url)
        assert used is not None and used.status == 404

        # --- Two staff accounts; the invite links are read from the page.
        alice_link = await invite(admin, server, ALICE)
        await admin.shot(artifacts, "invite-link")
        bob_link = await invite(admin, server, BOB)
        assert alice_link != bob_link
        await admin.goto("/admin/staff")
        staff_text = await admin.main_text()
        assert ALICE["display_name"] in staff_text and BOB["display_name"] in staff_text
        assert staff_text.count("invited") == 2
        await admin.shot(artifacts, "staff")

        # --- Each colleague, in a browser context of their own, sets a password and logs in.
        alice = await open_person(browser, server, "alice")
        bob = await open_person(browser, server, "bob")
        people += [alice, bob]
        await set_password(alice, server, alice_link, ALICE)
        await set_password(bob, server, bob_link, BOB)
        reused = await bob.page.goto(bob_link)
        assert reused is not None and reused.status == 404  # an invite works once

        # --- Alice makes a group with Bob and writes twice.
        await alice.goto("/chats/new-group")
        await alice.page.fill("#title", GROUP)
        await alice.page.check(f"input[name=members][value='{BOB['username']}']")
        await alice.submit("main form.stack button[type=submit]", expect_url=re.compile(r"/chats/\d+#bottom$"))
        group_url = alice.page.url.split("#")[0]
        assert await alice.page.locator("h1").inner_text() == GROUP
        assert f"{ALICE['display_name']} created the group" in await alice.page.locator("#messages li.system").first.inner_text()
        await send(alice, "Bed 12: potassium check due at 14:00")
        await send(alice, "Bed 4 discharged")
        assert await message_bodies(alice) == ["Bed 12: potassium check due at 14:00", "Bed 4 discharged"]

        # Bob's chat list shows the group with two unread messages, then none once he has read it.
        await bob.goto("/chats")
        assert await unread_badge(bob, GROUP) == 2
        assert (await bob.page.locator("h1 .badge").inner_text()).strip() == "2"
        assert "(2) Chats" in await bob.page.title()
        await bob.shot(artifacts, "chat-list-group-unread")
        await bob.goto(group_url)
        assert await message_bodies(bob) == ["Bed 12: potassium check due at 14:00", "Bed 4 discharged"]
        assert await bob.page.locator("#messages li.msg.theirs .sender").first.inner_text() == ALICE["display_name"]
        await send(bob, "On it, will review bed 12")
        await bob.goto("/chats")
        assert await unread_badge(bob, GROUP) == 0

        # Alice sees Bob's answer in the group.
        await alice.goto("/chats")
        assert await unread_badge(alice, GROUP) == 1
        await alice.goto(group_url)
        assert (await message_bodies(alice))[-1] == "On it, will review bed 12"
        await alice.shot(artifacts, "group-chat")
        await bob.goto(group_url)
        await bob.shot(artifacts, "group-chat")

        # --- Alice opens a direct chat with Bob through the directory.
        await alice.goto("/directory?q=Registrar")
        assert BOB["display_name"] in await alice.main_text()
        await alice.submit(f"button[aria-label='Message {BOB['display_name']}']", expect_url=re.compile(r"/chats/\d+#bottom$"))
        direct_url = alice.page.url.split("#")[0]
        assert direct_url != group_url
        assert await alice.page.locator("h1").inner_text() == BOB["display_name"]
        await send(alice, "Can you look at the ECG in bed 12?")
        await send(alice, DANGEROUS)

        # Bob: two unread in the direct chat, shown under Alice's name, nothing unread in the group.
        await bob.goto("/chats")
        assert await unread_badge(bob, ALICE["display_name"]) == 2
        assert await unread_badge(bob, GROUP) == 0
        preview = await (await chat_item(bob, ALICE["display_name"])).locator(".chat-preview").inner_text()
        assert preview.strip() == DANGEROUS
        await bob.shot(artifacts, "chat-list")

        # Bob opens it: the text is shown verbatim, as text, and nothing ran.
        await bob.goto(direct_url)
        bodies = await message_bodies(bob)
        assert bodies == ["Can you look at the ECG in bed 12?", DANGEROUS]
        last = bob.page.locator("#messages li.msg .body").last
        assert await last.inner_text() == DANGEROUS
        assert await bob.page.locator("#messages script").count() == 0
        # The page may load the app's own modules (they never run here); no other script exists.
        sources = [await s.get_attribute("src") for s in await bob.page.locator("script").all()]
        assert all(src and src.startswith("/static/") for src in sources), sources
        html = await bob.page.content()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "K+ &lt; 3.5 &amp; BP &gt; 140" in html
        await send(bob, "ECG reviewed: sinus rhythm, no change")
        await bob.shot(artifacts, "direct-chat")

        await bob.goto("/chats")
        assert await unread_badge(bob, ALICE["display_name"]) == 0
        assert await unread_badge(bob, GROUP) == 0
        assert await bob.page.locator("h1 .badge").count() == 0
        await bob.shot(artifacts, "chat-list-read")

        await alice.goto("/chats")
        assert await unread_badge(alice, BOB["display_name"]) == 1
        await alice.shot(artifacts, "chat-list")
        await alice.goto(direct_url)
        assert (await message_bodies(alice))[-1] == "ECG reviewed: sinus rhythm, no change"
        assert await alice.page.locator("#messages li.msg.mine .ticks.read").count() == 2
        await alice.shot(artifacts, "direct-chat")

        for person in people:
            assert person.dialogs == [], f"{person.name} saw dialogs: {person.dialogs}"

        # --- Logout, then Back: the chat must not come back from any cache.
        await bob.goto(direct_url)
        assert DANGEROUS in await message_frame(bob).locator("main").inner_text()
        await bob.submit("form.logout button[type=submit]", expect_url=f"{server.base_url}/login?bye=1")
        assert "You are logged out" in await bob.main_text()
        await bob.page.go_back()
        await bob.page.wait_for_load_state("load")
        back_text = await bob.page.locator("body").inner_text()
        for frame in bob.page.frames[1:]:
            back_text += await frame.locator("body").inner_text()
        assert "ECG" not in back_text and "K+ < 3.5" not in back_text, f"Back after logout shows: {bob.page.url}\n{back_text}"
        assert "/login" in bob.page.url, bob.page.url
        await bob.shot(artifacts, "back-after-logout")
        # And the direct URL itself asks for a login again.
        again = await bob.page.goto(direct_url)
        assert again is not None and again.status == 200 and "/login?next=" in bob.page.url
    finally:
        for person in people:
            await person.context.close()


async def test_pages_are_served_over_http2(server: ServerProcess) -> None:
    async with httpx.AsyncClient(http2=True, verify=False, timeout=10.0) as client:  # noqa: S501
        response = await client.get(f"{server.base_url}/login")
    assert response.status_code == 200
    assert response.http_version == "HTTP/2"
    assert "<form" in response.text


async def test_plain_http_redirects_to_https(server: ServerProcess) -> None:
    async with httpx.AsyncClient(timeout=10.0) as client:
        response = await client.get(f"{server.http_url}/login")
        followed = await client.get(f"{server.http_url}/chats?x=1", follow_redirects=False)
    assert response.status_code == 308
    assert response.headers["location"] == f"{server.base_url}/login"
    assert followed.status_code == 308
    assert followed.headers["location"] == f"{server.base_url}/chats?x=1"
    async with httpx.AsyncClient(verify=False, http2=True, timeout=10.0, follow_redirects=True) as client:  # noqa: S501
        landed = await client.get(f"{server.http_url}/login")
    assert str(landed.url) == f"{server.base_url}/login"
    assert landed.status_code == 200 and landed.http_version == "HTTP/2"
