"""The shared ward terminal: an open conversation without JavaScript keeps up.

Debian's Chromium with JavaScript off against a real Hypercorn whose no-JS refresh period is
two seconds, so "several refresh periods" takes seconds. A colleague posts over HTTP while
the terminal's conversation stays open and a draft is typed: every message shows in the
message frame, the draft is never lost, the page never reloads. A second test leaves a
conversation open until the idle timeout and watches it end at the login page.
Screenshots go to test-artifacts/e2e/terminal-*.png (docs/screenshots/terminal-conversation.png
is a copy of one).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import ServerProcess, login_client, nojs_context, start_server

pytestmark = pytest.mark.e2e

PASSWORD = "lantern quarry violet 6612"
ALICE = {"username": "alice.ward", "display_name": "Alice Nurse"}
BOB = {"username": "bob.ward", "display_name": "Bob Registrar"}
REFRESH = 2  # seconds between reloads of the message frame
TERMINAL = {"width": 1280, "height": 1024}


def ward_server(tmp_path: Path, name: str, idle_seconds: int) -> ServerProcess:
    running = start_server(
        tmp_path / "instance", name=name,
        env={
            "MEDCHAT_NOSCRIPT_REFRESH_SECONDS": str(REFRESH),
            "MEDCHAT_SESSION_IDLE_SECONDS": str(idle_seconds),
            "MEDCHAT_MESSAGE_BURST": "1000", "MEDCHAT_MESSAGE_RATE": "1000",
            "MEDCHAT_RATE_LIMIT_ENABLED": "false",
        },
    )
    try:
        for who in (ALICE, BOB):
            running.create_user(who["username"], PASSWORD, display_name=who["display_name"])
    except BaseException:
        running.stop()
        raise
    return running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = ward_server(tmp_path_factory.mktemp("terminal"), "test_nojs_terminal", idle_seconds=600)
    try:
        yield running
    finally:
        running.stop()


async def csrf(client: httpx.AsyncClient, path: str) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', (await client.get(path)).text)
    assert token, f"no csrf_token on {path}"
    return token.group(1)


@dataclass
class Colleague:
    """Someone writing from another computer: a logged-in HTTP client and its form token."""

    client: httpx.AsyncClient
    token: str

    @classmethod
    async def log_in(cls, server: ServerProcess, who: dict[str, str]) -> Colleague:
        client = await login_client(server, who["username"], PASSWORD)
        return cls(client, await csrf(client, "/chats"))

    async def open_direct(self, username: str) -> str:
        opened = await self.client.post("/chats/direct", data={"username": username, "csrf_token": self.token})
        assert opened.status_code == 303
        return str(opened.headers["location"]).split("#")[0]

    async def post(self, conv_path: str, body: str) -> None:
        """Send through the no-JS form door, with a fresh client_msg_id."""
        done = await self.client.post(f"{conv_path}/messages", data={"body": body, "client_msg_id": str(uuid.uuid4()), "csrf_token": self.token})
        assert done.status_code == 303, done.text[:500]


async def log_in(page: Any, who: dict[str, str], path: str = "/login") -> None:
    await page.goto(path)
    await page.fill("#username", who["username"])
    await page.fill("#password", PASSWORD)
    async with page.expect_navigation(wait_until="load"):
        await page.click("main button[type=submit]")


def pane(page: Any) -> Any:
    frame = page.frame(url=re.compile(r"/chats/\d+/pane\?"))
    assert frame is not None, f"no message frame on {page.url}: {[f.url for f in page.frames]}"
    return frame


async def pane_bodies(page: Any) -> list[str]:
    """The frame's message texts; the frame reloads every REFRESH s, so a read that meets
    the switch between two documents is simply made again."""
    from playwright.async_api import Error

    for attempt in range(20):
        try:
            return [t.strip() for t in await pane(page).locator("#messages li.msg:not(.system) .body").all_inner_texts()]
        except Error:
            if attempt == 19:
                raise
            await asyncio.sleep(0.1)
    raise AssertionError("unreachable")


async def wait_for_in_pane(page: Any, text: str, timeout: float) -> float:
    """Seconds until ``text`` is the newest message in the frame (frames reload: re-query)."""
    start = time.monotonic()
    while True:
        try:
            bodies = await pane_bodies(page)
        except Exception:  # noqa: BLE001 - the frame was between two documents
            bodies = []
        if bodies and bodies[-1] == text:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{text!r} did not show within {timeout} s; the frame shows {bodies[-3:]}")
        await asyncio.sleep(0.2)


async def scrolled_to_bottom(frame: Any) -> bool:
    """The frame shows its newest message (its document scrolled to the end); a read that
    meets a reload is made again on the new document."""
    from playwright.async_api import Error

    for attempt in range(20):
        try:
            await frame.wait_for_load_state("load")
            return bool(await frame.evaluate(
                "() => { const s = document.scrollingElement; return s.scrollHeight > s.clientHeight && s.scrollTop + s.clientHeight >= s.scrollHeight - 4; }"
            ))
        except Error:
            if attempt == 19:
                raise
            await asyncio.sleep(0.1)
    raise AssertionError("unreachable")


async def test_open_conversation_keeps_up_and_keeps_the_draft(server: ServerProcess, browser: Any, artifacts: Path) -> None:
    bob = await Colleague.log_in(server, BOB)
    context = await nojs_context(browser, server.base_url, viewport=TERMINAL)
    try:
        conv = await bob.open_direct(ALICE["username"])
        for i in range(1, 26):  # a history longer than the screen
            await bob.post(conv, f"Obs round {i}: bed {i} stable")

        page = await context.new_page()
        await log_in(page, ALICE)
        await page.goto(conv)
        top_loads: list[str] = []
        page.on("framenavigated", lambda f: top_loads.append(f.url) if f == page.main_frame else None)
        assert (await pane_bodies(page))[-1] == "Obs round 25: bed 25 stable"
        assert await scrolled_to_bottom(pane(page))  # #bottom: the newest message in view

        # A draft, typed in pieces while a colleague writes; the frame reloads meanwhile.
        draft = "Bed 12: K+ 3.1, repeat at 14:00"
        await page.click("#body")
        await page.keyboard.type("Bed 12: K+ 3.1")
        posted = []
        started = time.monotonic()
        for i, text in enumerate(["Bed 4 febrile, cultures sent", "CT for bed 9 moved to 11:30", "Pharmacy: vancomycin level due", "Bed 2 family asking for you"]):
            await bob.post(conv, text)
            posted.append(text)
            took = await wait_for_in_pane(page, text, timeout=REFRESH * 3 + 2)
            assert took <= REFRESH * 2 + 1.5, f"{text!r} took {took:.1f} s"
            if i == 1:
                await page.keyboard.type(", repeat at 14:00")
            assert await page.input_value("#body") in (draft, "Bed 12: K+ 3.1")
        await asyncio.sleep(REFRESH * 2)  # a few more reloads with nothing new
        assert time.monotonic() - started >= REFRESH * 4  # several refresh periods went by
        assert await page.input_value("#body") == draft
        assert top_loads == [], f"the page itself reloaded: {top_loads}"
        assert (await pane_bodies(page))[-4:] == posted
        updated = await pane(page).locator("#updated").inner_text()
        assert re.fullmatch(r"Updated \d\d:\d\d", updated.strip()), updated
        assert await scrolled_to_bottom(pane(page))
        await page.screenshot(path=str(artifacts / "terminal-conversation.png"))

        # Send: the draft goes out once and shows in the frame.
        async with page.expect_navigation(wait_until="load"):
            await page.click("#compose button[type=submit]")
        await wait_for_in_pane(page, draft, timeout=5)
        assert await page.input_value("#body") == ""

        # Reply from the frame: the page opens with the reply bar, the frame at its bottom
        # (not at the top of the history), the cursor in the box.
        reply = pane(page).locator("#messages li.msg.theirs").last.locator("a.reply-link")
        async with page.expect_navigation(wait_until="load"):
            await reply.click()
        assert re.search(r"\?reply_to=\d+$", page.url), page.url
        assert "Bed 2 family asking for you" in await page.locator(".replying").inner_text()
        await pane(page).wait_for_load_state("load")
        assert await scrolled_to_bottom(pane(page))
        assert await page.evaluate("() => document.activeElement && document.activeElement.id") == "body"
        await page.keyboard.type("On my way")
        async with page.expect_navigation(wait_until="load"):
            await page.click("#compose button[type=submit]")
        await wait_for_in_pane(page, "On my way", timeout=5)
        quote = pane(page).locator("#messages li.msg.mine").last.locator(".quote")
        assert "Bed 2 family asking for you" in await quote.inner_text()
    finally:
        await context.close()
        await bob.client.aclose()


async def test_login_after_a_refresh_does_not_land_on_auto(server: ServerProcess, browser: Any) -> None:
    """A terminal whose chat list refreshed itself into the login page: after the login the
    person lands on the plain URL, not on one marked as an automatic refresh."""
    context = await nojs_context(browser, server.base_url, viewport=TERMINAL)
    try:
        page = await context.new_page()
        await page.goto("/chats?auto=1")
        assert "/login?next=" in page.url
        await log_in(page, ALICE, path=page.url)
        assert page.url == f"{server.base_url}/chats", page.url
    finally:
        await context.close()


async def test_new_group_filter_keeps_what_was_typed(server: ServerProcess, browser: Any) -> None:
    context = await nojs_context(browser, server.base_url, viewport=TERMINAL)
    try:
        page = await context.new_page()
        await log_in(page, ALICE)
        await page.goto("/chats/new-group")
        await page.fill("#title", "Night shift")
        await page.check(f"input[name=members][value='{BOB['username']}']")
        await page.fill("#q", "nobody-matches-this")
        async with page.expect_navigation(wait_until="load"):
            await page.press("#q", "Enter")  # Enter filters, as the Filter button does
        assert await page.input_value("#title") == "Night shift"
        assert await page.is_checked(f"input[name=members][value='{BOB['username']}']")
        async with page.expect_navigation(wait_until="load"):
            await page.click("button:has-text('Filter')")
        assert await page.input_value("#q") == "nobody-matches-this"
        async with page.expect_navigation(wait_until="load"):
            await page.click("main form.stack button[type=submit]")
        assert re.search(r"/chats/\d+#bottom$", page.url), page.url
        assert await page.locator("h1").inner_text() == "Night shift"
    finally:
        await context.close()


async def test_idle_lock_fires_on_an_open_conversation(tmp_path: Path, browser: Any, artifacts: Path) -> None:
    idle = 6
    server = ward_server(tmp_path, "test_nojs_terminal_idle", idle_seconds=idle)
    context = await nojs_context(browser, server.base_url, viewport=TERMINAL)
    try:
        bob = await Colleague.log_in(server, BOB)
        try:
            conv = await bob.open_direct(ALICE["username"])
            await bob.post(conv, "Bed 7: please call the family")
        finally:
            await bob.client.aclose()
        page = await context.new_page()
        await log_in(page, ALICE)
        await page.goto(conv)
        opened = time.monotonic()
        await page.fill("#body", "half a thought")
        assert "Bed 7: please call the family" in await pane(page).locator("#messages").inner_text()
        # The frame keeps reloading (never activity); the page reloads once the idle timeout
        # has passed, and that reload ends at the login page.
        await page.wait_for_url(re.compile(r"/login\?"), timeout=(idle + 5 + 10) * 1000)
        waited = time.monotonic() - opened
        assert idle <= waited <= idle + 5 + 10, waited
        await page.wait_for_load_state("load")
        assert await page.locator("#username").count() == 1
        text = await page.locator("body").inner_text()
        assert "Bed 7" not in text and "half a thought" not in text
        assert "auto" not in (await page.locator("input[name=next]").input_value())
        await page.screenshot(path=str(artifacts / "terminal-idle-lock.png"))
    finally:
        await context.close()
        server.stop()
