"""The progressive web app in Debian's Chromium against a real Hypercorn over HTTPS.

JavaScript is on unless a test says otherwise. Two people chat live and watch the ticks
change; a third, with JavaScript off, writes in the same group and the others see it at
once; messages typed offline go out once each, in order; the service worker, the manifest,
logout on a shared terminal, axe-core, and screenshots of the phone and desktop layouts
(test-artifacts/e2e/pwa-*.png).

Every page a test opens with JavaScript on is watched for console errors and uncaught
exceptions: a CSP violation shows up there as "Refused to ...".
"""

from __future__ import annotations

import asyncio
import json
import re
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import CHROMIUM, CHROMIUM_ARGS, ROOT, ServerProcess, login_client, start_server

pytestmark = [pytest.mark.e2e, pytest.mark.service_worker]

PASSWORD = "harbour quilt meteor 4471"
ALICE = {"username": "alice.pwa", "display_name": "Alice Nurse"}
BOB = {"username": "bob.pwa", "display_name": "Bob Registrar"}
CAROL = {"username": "carol.pwa", "display_name": "Carol Consultant"}
DAN = {"username": "dan.pwa", "display_name": "Dan Pharmacist"}
# Only the screenshot test uses these, so its pictures show a tidy, believable ward.
ERIN = {"username": "erin.walsh", "display_name": "Dr Erin Walsh"}
FRANK = {"username": "frank.osei", "display_name": "Frank Osei"}
GRACE = {"username": "grace.lin", "display_name": "Grace Lin"}
HUGO = {"username": "hugo.pharm", "display_name": "Hugo Pharmacy"}
DANGEROUS = "K+ < 3.5 & BP > 140 <script>alert(1)</script>"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
TIMEOUT = 10_000  # ms: everything live must show within this


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Our own server: a generous send rate (the history test posts 70 messages at once) and
    no login rate limit (this module logs in some forty times from one address)."""
    running = start_server(
        tmp_path_factory.mktemp("instance-pwa"), name="test_pwa",
        env={"MEDCHAT_MESSAGE_BURST": "1000", "MEDCHAT_MESSAGE_RATE": "1000", "MEDCHAT_RATE_LIMIT_ENABLED": "false"},
    )
    try:
        for who in (ALICE, BOB, CAROL, DAN, ERIN, FRANK, GRACE, HUGO):
            running.create_user(who["username"], PASSWORD, display_name=who["display_name"])
        yield running
    finally:
        running.stop()



class Tab:
    """A browser context (own cookies and storage) with one page, its errors recorded."""

    def __init__(self, name: str, context: Any, page: Any) -> None:
        self.name = name
        self.context = context
        self.page = page
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.watch(page)

    def watch(self, page: Any) -> None:
        page.on("console", lambda msg: self.errors.append(f"console {msg.type}: {msg.text} ({msg.location.get('url')})") if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("dialog", lambda d: self.dialogs.append(d.message))

    @classmethod
    async def open(cls, browser: Any, server: ServerProcess, name: str, *, js: bool = True, viewport: dict[str, int] = DESKTOP, bypass_csp: bool = False) -> Tab:
        context = await browser.new_context(
            base_url=server.base_url, ignore_https_errors=True, java_script_enabled=js, viewport=viewport,
            color_scheme="light", bypass_csp=bypass_csp,
        )
        return cls(name, context, await context.new_page())

    async def login(self, who: dict[str, str], *, personal: bool = False) -> None:
        await self.page.goto("/login")
        await self.page.fill("#username", who["username"])
        await self.page.fill("#password", PASSWORD)
        if personal:
            await self.page.check("#personal_device")
        async with self.page.expect_navigation(url=re.compile(r"/chats$")):
            await self.page.click("main button[type=submit]")

    async def goto(self, path: str) -> None:
        response = await self.page.goto(path)
        assert response is not None and response.status == 200, f"{self.name}: GET {path} -> {response and response.status}"

    async def live(self, page: Any = None) -> None:
        """Wait until the page's socket is open (hello received)."""
        await (page or self.page).wait_for_function("() => window.medchat && window.medchat.state === 'open'", timeout=TIMEOUT)

    async def send(self, text: str) -> None:
        await self.page.fill("#body", text)
        await self.page.press("#body", "Enter")

    async def bodies(self) -> list[str]:
        return [t.strip() for t in await self.page.locator("#messages li.msg:not(.system) .body").all_inner_texts()]

    async def shot(self, artifacts: Path, what: str) -> Path:
        path = artifacts / f"pwa-{what}.png"
        await self.page.screenshot(path=str(path))
        return path

    def assert_clean(self) -> None:
        assert self.errors == [], f"{self.name}: errors in the browser console:\n" + "\n".join(self.errors)
        assert self.dialogs == [], f"{self.name}: dialogs: {self.dialogs}"


async def expect_text(locator: Any, text: str | re.Pattern[str]) -> None:
    from playwright.async_api import expect

    await expect(locator).to_have_text(text, timeout=TIMEOUT)


async def open_direct(tab: Tab, other: dict[str, str]) -> str:
    """Open (or create) the direct chat with ``other`` through the directory; its URL path."""
    await tab.goto(f"/directory?q={other['display_name'].split()[0]}")
    async with tab.page.expect_navigation(url=re.compile(r"/chats/\d+")):
        await tab.page.click(f"button[aria-label='Message {other['display_name']}']")
    return "/" + tab.page.url.split("/", 3)[3].split("#")[0]


async def create_group(tab: Tab, title: str, members: list[dict[str, str]]) -> str:
    await tab.goto("/chats/new-group")
    await tab.page.fill("#title", title)
    for who in members:
        await tab.page.check(f"input[name=members][value='{who['username']}']")
    async with tab.page.expect_navigation(url=re.compile(r"/chats/\d+")):
        await tab.page.click("main form.stack button[type=submit]")
    return "/" + tab.page.url.split("/", 3)[3].split("#")[0]


def last_ticks(tab: Tab) -> Any:
    return tab.page.locator("#messages li.msg.mine .ticks").last


# --- live chat, ticks, a no-JS colleague, XSS ------------------------------------------------


async def test_live_chat_ticks_and_a_colleague_without_javascript(server: ServerProcess, browser: Any, artifacts: Path) -> None:
    alice = await Tab.open(browser, server, "alice", viewport=DESKTOP)
    bob = await Tab.open(browser, server, "bob", viewport=PHONE)
    carol = await Tab.open(browser, server, "carol", js=False)
    try:
        await alice.login(ALICE)
        await carol.login(CAROL)

        # Alice writes to Bob while Bob has no page open: sent, then delivered, then read.
        direct = await open_direct(alice, BOB)
        await alice.live()
        await alice.send("Bed 12: potassium 3.1, repeat at 14:00?")
        await expect_text(last_ticks(alice), "\u2713 Sent")
        assert await last_ticks(alice).get_attribute("aria-label") == "Sent"
        assert await alice.bodies() == ["Bed 12: potassium 3.1, repeat at 14:00?"]

        await bob.login(BOB)  # lands on the chat list: its socket acknowledges delivery
        await bob.live()
        await expect_text(last_ticks(alice), "\u2713\u2713 Delivered")
        assert await last_ticks(alice).get_attribute("aria-label") == "Delivered"
        badge = bob.page.locator("#chat-list li.chat-item .badge")
        await expect_text(badge, "1")
        assert re.match(r"^\(1\) Chats", await bob.page.title())

        await bob.goto(direct)  # on screen: read
        await bob.live()
        await expect_text(last_ticks(alice), "\u2713\u2713 Read")
        assert await last_ticks(alice).get_attribute("aria-label") == "Read"
        assert "read" in (await last_ticks(alice).get_attribute("class") or "").split()
        await expect_text(alice.page.locator("#conv-status"), "online")

        # Live both ways, the dangerous text included; typing shows and goes.
        await bob.page.fill("#body", "On it")
        await bob.page.type("#body", ", checking")
        await expect_text(alice.page.locator("#conv-status"), "Bob Registrar is typing\u2026")
        await bob.page.press("#body", "Enter")
        await expect_text(alice.page.locator("#messages li.msg.theirs .body").last, "On it, checking")
        await expect_text(alice.page.locator("#conv-status"), "online")
        await alice.send(DANGEROUS)
        await expect_text(bob.page.locator("#messages li.msg.theirs .body").last, DANGEROUS)
        for tab in (alice, bob):
            assert await tab.page.locator("#messages script").count() == 0
            assert await tab.page.locator("#messages li.msg .body").last.inner_text() == DANGEROUS
        await expect_text(last_ticks(alice), "\u2713\u2713 Read")  # Bob has it on screen

        # Keyboard: Shift+Enter is a new line, Enter sends; the line break survives.
        await alice.page.fill("#body", "Plan:")
        await alice.page.press("#body", "Shift+Enter")
        await alice.page.type("#body", "1. repeat K+")
        await alice.page.press("#body", "Enter")
        await expect_text(bob.page.locator("#messages li.msg.theirs .body").last, "Plan:1. repeat K+")  # textContent
        assert await bob.page.locator("#messages li.msg.theirs .body").last.inner_text() == "Plan:\n1. repeat K+"
        assert await bob.page.locator("#messages li.msg.theirs .body").last.locator("br").count() == 1
        # Nothing the script made carries a style attribute (style-src 'self' forbids them).
        for tab in (alice, bob):
            assert await tab.page.evaluate("document.querySelectorAll('[style]').length") == 0

        # Reply to a message: the reply bar, then a quote on both sides.
        first = bob.page.locator("#messages li.msg.theirs").first
        await first.locator("a.reply-link").click()
        await expect_text(bob.page.locator("#reply-bar strong"), ALICE["display_name"])
        await bob.send("Yes, repeat at 14:00")
        quote = alice.page.locator("#messages li.msg.theirs").last.locator(".quote")
        await expect_text(quote, re.compile(r"Alice Nurse\s+Bed 12: potassium 3\.1"))
        assert await bob.page.locator("#reply-bar").count() == 0

        # Screenshots of the direct chat on both layouts.
        await alice.shot(artifacts, "desktop-conversation")
        await bob.shot(artifacts, "phone-conversation")

        # A group with Carol, whose browser runs no JavaScript at all.
        group = await create_group(alice, "Ward 7 handover", [BOB, CAROL])
        await alice.live()
        await bob.goto("/chats")
        await bob.live()
        await alice.send("Handover at 19:00 in the office")
        item = bob.page.locator("#chat-list li.chat-item").first
        await expect_text(item.locator(".chat-title"), re.compile("Ward 7 handover"))
        await expect_text(item.locator(".chat-preview"), "Alice Nurse: Handover at 19:00 in the office")
        await expect_text(item.locator(".badge"), "1")
        await bob.shot(artifacts, "phone-chat-list")

        await carol.goto(group)
        assert "Handover at 19:00" in await carol.page.locator("#messages").inner_text()
        await carol.page.fill("#body", "I will be there, bed 4 first")
        async with carol.page.expect_navigation():
            await carol.page.click("#compose button[type=submit]")
        assert carol.page.url.endswith("#bottom")
        # Alice sees it at once, with Carol's name; Bob's list moves it up with a second unread.
        await expect_text(alice.page.locator("#messages li.msg.theirs .body").last, "I will be there, bed 4 first")
        await expect_text(alice.page.locator("#messages li.msg.theirs .sender").last, CAROL["display_name"])
        await expect_text(item.locator(".chat-preview"), "Carol Consultant: I will be there, bed 4 first")
        await expect_text(item.locator(".badge"), "2")
        assert re.match(r"^\(2\) Chats", await bob.page.title())
        # Carol read the group when her page showed it; Bob has not: read by 1 of 2.
        await expect_text(last_ticks(alice), re.compile(r"Read by 1 of 2"))
        await bob.goto(group)
        await expect_text(last_ticks(alice), re.compile(r"Read by all"))
        await alice.shot(artifacts, "desktop-group")

        # The no-JS page still works as before: the form posted, the page has no inline script.
        assert await carol.page.locator("script:not([src])").count() == 0
        for tab in (alice, bob):
            tab.assert_clean()
    finally:
        for tab in (alice, bob, carol):
            await tab.context.close()


async def test_chat_list_and_title_update_live(server: ServerProcess, browser: Any) -> None:
    carol = await Tab.open(browser, server, "carol")
    dan = await Tab.open(browser, server, "dan")
    try:
        await carol.login(CAROL)
        await dan.login(DAN)
        await carol.live()
        before = await carol.page.locator("#chat-list li.chat-item").count()
        direct = await open_direct(dan, CAROL)  # a conversation Carol's page has not seen
        await dan.live()
        await dan.send("Pharmacy: the vancomycin level is back")
        # A conversation the page had never seen: the list fetches itself again.
        item = carol.page.locator("#chat-list li.chat-item").first
        await expect_text(item.locator(".chat-title"), DAN["display_name"])
        await expect_text(item.locator(".chat-preview"), "Pharmacy: the vancomycin level is back")
        assert await carol.page.locator("#chat-list li.chat-item").count() == before + 1
        await dan.send("Trough 18 mg/L")
        await expect_text(item.locator(".badge"), "2")
        assert re.match(r"^\(\d+\) Chats", await carol.page.title())
        await expect_text(carol.page.locator("h1 .badge"), re.compile(r"\d+"))
        # Reading it elsewhere (a no-JS page of the same account would do too) clears the badge live.
        other = await carol.context.new_page()
        carol.watch(other)
        await other.goto(direct)
        conv_id = direct.rsplit("/", 1)[1]
        await carol.page.wait_for_function(
            "id => !document.querySelector(`#chat-list li.chat-item[data-conversation-id='${id}'] .badge`)", arg=conv_id, timeout=TIMEOUT,
        )
        carol.assert_clean()
        dan.assert_clean()
    finally:
        await carol.context.close()
        await dan.context.close()


# --- right-to-left text and bidi controls ------------------------------------------------------

RTL_NAME = "\u05d3\u05e0\u05d4 \u05dc\u05d5\u05d9"  # Dana Levi, in Hebrew
RTL_TITLE = "\u062c\u0646\u0627\u062d 7"  # Ward 7, in Arabic
HEBREW = "\u05d4\u05de\u05d8\u05d5\u05e4\u05dc \u05d1\u05de\u05d9\u05d8\u05d4 4"  # the patient in bed 4
SPOOF = "http://evil.example/\u202egnp.exe"  # reads "...exe.png" if the override is obeyed

# For every message body, sender name and title on the page: its dir attribute, the direction
# the browser gave it, its text; and every link's text in the bodies.
READ_TEXT = """() => ({
  bodies: [...document.querySelectorAll('#messages li.msg:not(.system) .body')].map(
    (el) => ({ dir: el.getAttribute('dir'), direction: getComputedStyle(el).direction, text: el.textContent })),
  senders: [...document.querySelectorAll('#messages .sender')].map((el) => ({ dir: el.getAttribute('dir'), text: el.textContent })),
  links: [...document.querySelectorAll('#messages .body a')].map((a) => ({ dir: a.getAttribute('dir'), text: a.textContent })),
  title: { dir: document.querySelector('#conv-title').getAttribute('dir'), text: document.querySelector('#conv-title').textContent },
  listTitle: document.querySelector('#chat-list li.current .chat-title [dir=auto]')?.textContent,
})"""


def check_rtl_page(seen: dict[str, Any], who: str) -> None:
    bodies = seen["bodies"][-2:]
    assert [b["dir"] for b in bodies] == ["auto", "auto"], (who, seen)
    assert bodies[0]["text"] == HEBREW and bodies[0]["direction"] == "rtl", (who, bodies)  # intact, right to left
    assert bodies[1]["direction"] == "ltr", (who, bodies)
    link = seen["links"][-1]
    assert "\u202e" not in link["text"] and link["text"] == "http://evil.example/[U+202E]gnp.exe", (who, link)
    assert link["dir"] == "ltr"
    assert seen["title"] == {"dir": "auto", "text": RTL_TITLE}, who
    assert seen["listTitle"] == RTL_TITLE, who


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
async def test_rtl_text_is_isolated_and_a_link_cannot_be_reversed(server: ServerProcess, browser: Any, js: bool) -> None:
    """Hebrew and Arabic read right to left in their own isolated elements; a right-to-left
    override in a URL shows as [U+202E] in the link text, with JavaScript on and off."""
    user = {"username": f"dana.rtl.{'js' if js else 'nojs'}", "display_name": RTL_NAME}
    server.create_user(user["username"], PASSWORD, display_name=RTL_NAME)
    alice = await Tab.open(browser, server, "alice")
    dana = await Tab.open(browser, server, "dana", js=js)
    try:
        await alice.login(ALICE)
        await dana.login(user)
        group = await create_group(alice, RTL_TITLE, [user])
        await alice.live()
        await dana.goto(group)
        if js:
            await dana.live()
            await dana.send(HEBREW)
            await dana.send(SPOOF)
            await expect_text(alice.page.locator("#messages li.msg .body").last, re.compile(r"gnp\.exe$"))  # drawn live by the script
            await expect_text(dana.page.locator("#messages li.msg .body").last, re.compile(r"gnp\.exe$"))
            check_rtl_page(await dana.page.evaluate(READ_TEXT), "dana, own messages drawn by the script")
        else:
            for text in (HEBREW, SPOOF):
                await dana.page.fill("#body", text)
                async with dana.page.expect_navigation(url=re.compile(r"/chats/\d+#bottom$")):
                    await dana.page.click("#compose button[type=submit]")
            await expect_text(alice.page.locator("#messages li.msg .body").last, re.compile(r"gnp\.exe$"))  # the no-JS sender, live
        live = await alice.page.evaluate(READ_TEXT)
        check_rtl_page(live, "alice, live")
        assert live["senders"][-2:] == [{"dir": "auto", "text": RTL_NAME}] * 2
        await dana.goto(group)  # the page as the server draws it (with or without the script)
        check_rtl_page(await dana.page.evaluate(READ_TEXT), "dana, page")
        alice.assert_clean()
        if js:
            dana.assert_clean()
    finally:
        await alice.context.close()
        await dana.context.close()


# --- bad Wi-Fi -----------------------------------------------------------------------------


async def test_messages_typed_offline_go_out_once_each_in_order(server: ServerProcess, browser: Any) -> None:
    alice = await Tab.open(browser, server, "alice")
    bob = await Tab.open(browser, server, "bob")
    try:
        await alice.login(ALICE)
        await bob.login(BOB)
        direct = await open_direct(alice, BOB)
        await alice.live()
        await bob.goto(direct)
        await bob.live()
        before = await alice.bodies()

        await alice.context.set_offline(True)
        banner = alice.page.locator("#conn-banner")
        await expect_text(banner, re.compile("You are offline"))
        assert await banner.get_attribute("role") == "status"
        await alice.send("Offline one: obs due bed 3")
        await alice.send("Offline two: then bed 5")
        pending = alice.page.locator("#messages li.msg.mine.pending")
        assert await pending.count() == 2
        assert await pending.locator(".ticks").first.get_attribute("aria-label") == "Sending"
        await expect_text(banner, re.compile("2 messages will be sent"))
        assert await alice.page.evaluate("window.medchat.queued") == 2
        await asyncio.sleep(1.5)  # Bob sees nothing meanwhile
        assert "Offline one" not in await bob.page.locator("#messages").inner_text()

        await alice.context.set_offline(False)
        await expect_text(banner, "")
        await alice.page.wait_for_function("() => document.querySelectorAll('#messages li.msg.pending').length === 0", timeout=TIMEOUT)
        await alice.page.wait_for_function("() => window.medchat.queued === 0", timeout=TIMEOUT)
        await expect_text(bob.page.locator("#messages li.msg.theirs .body").last, "Offline two: then bed 5")
        expected = [*before, "Offline one: obs due bed 3", "Offline two: then bed 5"]
        assert await bob.bodies() == expected
        assert await alice.bodies() == expected

        # Reload: the history comes from the database, each message once, in order.
        await alice.page.reload()
        assert await alice.bodies() == expected
        await bob.page.reload()
        assert await bob.bodies() == expected
        alice.assert_clean()
        bob.assert_clean()
    finally:
        await alice.context.close()
        await bob.context.close()


async def test_scrolling_up_loads_older_history(server: ServerProcess, browser: Any) -> None:
    client = await login_client(server, CAROL["username"], PASSWORD)
    try:
        page = await client.get("/directory")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        opened = await client.post("/chats/direct", data={"username": ALICE["username"], "csrf_token": token.group(1)})
        path = opened.headers["location"].split("#")[0]
        for i in range(1, 71):
            sent = await client.post(f"{path}/messages", data={"body": f"history {i:03d}", "client_msg_id": str(uuid.uuid4()), "csrf_token": token.group(1)})
            assert sent.status_code == 303
        # The JSON door answers members only, no-store.
        listing = await client.get(f"{path}/messages.json", params={"before": 2**40})
        assert listing.status_code == 200 and "no-store" in listing.headers["cache-control"]
        assert [m["body"] for m in listing.json()["messages"]][-1] == "history 070"
    finally:
        await client.aclose()
    outsider = await login_client(server, DAN["username"], PASSWORD)
    try:
        refused = await outsider.get(f"{path}/messages.json", params={"before": 2**40})
        assert refused.status_code == 404 and "history" not in refused.text
    finally:
        await outsider.aclose()

    alice = await Tab.open(browser, server, "alice")
    try:
        await alice.login(ALICE)
        # Alice has read them elsewhere (so the page opens at the bottom, not at the first unread).
        reader = await login_client(server, ALICE["username"], PASSWORD)
        try:
            assert (await reader.get(path)).status_code == 200
        finally:
            await reader.aclose()
        await alice.goto(path)
        await alice.live()
        assert len(await alice.bodies()) == 50
        await alice.page.locator("#scroller").evaluate("s => { s.scrollTop = 0; }")
        await alice.page.wait_for_function("() => document.querySelectorAll('#messages li.msg:not(.system)').length === 70", timeout=TIMEOUT)
        assert await alice.bodies() == [f"history {i:03d}" for i in range(1, 71)]
        assert await alice.page.locator("p.older a", has_text="Older messages").count() == 0
        alice.assert_clean()
    finally:
        await alice.context.close()


# --- service worker, manifest --------------------------------------------------------------


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_manifest_and_icons(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, http2=True, verify=False, timeout=10.0) as client:  # noqa: S501
        response = await client.get("/manifest.webmanifest")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/manifest+json")
        manifest = response.json()
        assert manifest["name"] == "MedChat" and manifest["short_name"] == "MedChat"
        assert manifest["start_url"] == "/chats" and manifest["scope"] == "/" and manifest["display"] == "standalone"
        assert manifest["id"] and re.fullmatch(r"#[0-9a-fA-F]{6}", manifest["theme_color"])
        assert re.fullmatch(r"#[0-9a-fA-F]{6}", manifest["background_color"])
        sizes = set()
        for icon in manifest["icons"]:
            got = await client.get(icon["src"])
            assert got.status_code == 200, icon
            assert got.headers["content-type"] == "image/png"
            w, h = png_size(got.content)
            assert icon["sizes"] == f"{w}x{h}" and icon["type"] == "image/png"
            sizes.add((icon["sizes"], icon.get("purpose", "any")))
        assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes

        worker = await client.get("/sw.js")
        assert worker.status_code == 200
        assert worker.headers["content-type"].startswith("text/javascript")
        assert worker.headers["service-worker-allowed"] == "/"
        assert "no-store" in worker.headers["cache-control"] or "no-cache" in worker.headers["cache-control"]
        assert "__MEDCHAT_VERSION__" not in worker.text
        assets = json.loads(re.search(r"const ASSETS = (\[.*?\]);", worker.text).group(1))  # type: ignore[union-attr]
        assert "/offline" in assets and "/static/js/app.js" in assets and "/static/css/app.css" in assets
        assert all(a == "/offline" or a.startswith("/static/") for a in assets)

        offline = await client.get("/offline")
        assert offline.status_code == 200 and "You are offline" in offline.text
        assert "csrf_token" not in offline.text


async def test_service_worker_serves_the_offline_page_and_caches_nothing_private(server: ServerProcess, browser: Any) -> None:
    alice = await Tab.open(browser, server, "alice")
    try:
        await alice.login(ALICE)
        await alice.goto("/chats")
        await alice.page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        await alice.page.reload()  # now controlled by the worker
        await alice.page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=TIMEOUT)
        cached = await alice.page.evaluate(
            """async () => {
                const out = [];
                for (const name of await caches.keys()) {
                  for (const request of await (await caches.open(name)).keys()) out.push([name, new URL(request.url).pathname]);
                }
                return out;
            }"""
        )
        names = {name for name, _ in cached}
        paths = {path for _, path in cached}
        assert len(names) == 1 and next(iter(names)).startswith("medchat-static-")
        assert "/offline" in paths and "/static/js/app.js" in paths
        assert all(p == "/offline" or p.startswith("/static/") for p in paths), paths  # no page, no JSON

        await alice.context.set_offline(True)
        await alice.page.goto("/chats/1")
        await expect_text(alice.page.locator("h1"), "You are offline")
        assert "Alice" not in await alice.page.locator("body").inner_text()
        await alice.context.set_offline(False)
        await alice.page.wait_for_url(re.compile(r"/chats/1$"), timeout=TIMEOUT)  # the page retried by itself
        alice.errors = [e for e in alice.errors if "ERR_INTERNET_DISCONNECTED" not in e]
        alice.assert_clean()
    finally:
        await alice.context.close()


async def test_a_new_version_offers_update_and_reload(server: ServerProcess, browser: Any) -> None:
    alice = await Tab.open(browser, server, "alice")
    try:
        await alice.login(ALICE)
        await alice.page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        await alice.page.reload()
        await alice.page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=TIMEOUT)
        banner = alice.page.locator("#update-banner")
        assert await banner.is_hidden()
        # A new worker for the same scope, as after a deploy (Playwright cannot rewrite the
        # bytes of a worker script, so the URL differs instead: the browser installs it the same way).
        await alice.page.evaluate("navigator.serviceWorker.register('/sw.js?build=newer', { scope: '/' }).then(() => true)")
        await banner.wait_for(state="visible", timeout=TIMEOUT)
        await expect_text(alice.page.locator("#update-button"), "Update available \u2014 reload")
        async with alice.page.expect_navigation(timeout=TIMEOUT):
            await alice.page.click("#update-button")
        await alice.live()
        script = await alice.page.evaluate("navigator.serviceWorker.controller.scriptURL")
        assert script.endswith("/sw.js?build=newer"), script  # the waiting worker took over
        alice.assert_clean()
    finally:
        await alice.context.close()


async def test_chromium_finds_the_app_installable(server: ServerProcess, tmp_path: Path) -> None:
    """Manifest, icons and a service worker with a fetch handler: no installability error.

    A persistent profile: Chromium never offers to install from an incognito-like context.
    """
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--ignore-certificate-errors"],
            headless=True, ignore_https_errors=True, base_url=server.base_url,
        )
        try:
            tab = Tab("installable", context, context.pages[0] if context.pages else await context.new_page())
            await tab.login(ALICE)
            await tab.page.evaluate("navigator.serviceWorker.ready.then(() => true)")
            await tab.page.reload()
            cdp = await context.new_cdp_session(tab.page)
            errors: list[Any] = []
            for _ in range(20):  # the check needs the worker to control the page
                errors = (await cdp.send("Page.getInstallabilityErrors")).get("installabilityErrors", [])
                if not errors:
                    break
                await asyncio.sleep(0.25)
            assert errors == []
            manifest = await cdp.send("Page.getAppManifest")
            assert not manifest.get("errors"), manifest
            tab.assert_clean()
        finally:
            await context.close()


# --- leaving a shared terminal ---------------------------------------------------------------


async def test_logout_leaves_nothing_and_other_tabs_follow(server: ServerProcess, browser: Any) -> None:
    bob = await Tab.open(browser, server, "bob")
    try:
        await bob.login(BOB, personal=True)
        assert await bob.page.locator("body").get_attribute("data-personal-device") == "1"
        direct = await open_direct(bob, ALICE)
        await bob.live()
        await bob.send("Private: patient in bed 9 refuses the CT")
        await expect_text(last_ticks(bob), re.compile("Sent|Delivered|Read"))
        await bob.page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        await bob.page.evaluate("localStorage.setItem('medchat.notify-text', '1')")
        stored = await bob.page.evaluate("(async () => ({caches: (await caches.keys()).length, dbs: (await indexedDB.databases()).map(d => d.name)}))()")
        assert stored["caches"] >= 1 and "medchat" in stored["dbs"], stored

        second = await bob.context.new_page()
        bob.watch(second)
        await second.goto("/chats")
        await bob.live(second)

        async with bob.page.expect_navigation(url=re.compile(r"/login\?bye=1$")):
            await bob.page.click("form.logout button[type=submit]")
        await second.wait_for_url(re.compile(r"/login"), timeout=TIMEOUT)
        left = await bob.page.evaluate(
            """async () => ({
                caches: await caches.keys(),
                local: localStorage.length,
                session: sessionStorage.length,
                dbs: (await indexedDB.databases()).map(d => d.name),
                workers: (await navigator.serviceWorker.getRegistrations()).length,
            })"""
        )
        assert left == {"caches": [], "local": 0, "session": 0, "dbs": [], "workers": 0}, left
        assert "refuses the CT" not in await second.locator("body").inner_text()

        await bob.page.go_back()
        await bob.page.wait_for_load_state("load")
        await bob.page.wait_for_url(re.compile(r"/login"), timeout=TIMEOUT)
        assert "refuses the CT" not in await bob.page.locator("body").inner_text()
        again = await bob.page.goto(direct)
        assert again is not None and "/login?next=" in bob.page.url
        bob.assert_clean()
    finally:
        await bob.context.close()


async def test_a_session_ended_elsewhere_sends_the_page_to_login_and_wipes_it(server: ServerProcess, browser: Any) -> None:
    ward = await Tab.open(browser, server, "dan-ward-pc")
    phone = await Tab.open(browser, server, "dan-phone", viewport=PHONE)
    try:
        await ward.login(DAN, personal=True)
        await ward.live()
        await ward.page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        await phone.login(DAN)
        await phone.goto("/account/sessions")
        # Asked once, in a dialog that names what will happen.
        phone.page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        async with phone.page.expect_navigation():
            await phone.page.click("a:has-text('Sign out all my other sessions')")
        assert len(phone.dialogs) == 1 and re.match(r"Sign out \d+ other sessions?\?", phone.dialogs[0]), phone.dialogs
        assert "signed out at once" in phone.dialogs[0]
        phone.dialogs.clear()
        assert re.search(r"Signed out \d+ sessions?", await phone.page.locator("main").inner_text())
        # The socket closes with 4401 within seconds; the page wipes and asks for a login.
        await ward.page.wait_for_url(re.compile(r"/login\?next="), timeout=TIMEOUT)
        left = await ward.page.evaluate(
            "async () => ({caches: (await caches.keys()).length, dbs: (await indexedDB.databases()).length})"
        )
        assert left == {"caches": 0, "dbs": 0}, left
        ward.assert_clean()
        phone.assert_clean()
    finally:
        await ward.context.close()
        await phone.context.close()


async def test_after_an_idle_lock_the_login_works_on_the_first_try(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """JavaScript on, a short idle timeout: the page locks by itself (the sweep or the socket's
    heartbeat ends the session, the socket closes with 4401), lands on the login page saying
    why, and the first login there works (it used to answer 403 "This form has expired")."""
    idle = 6
    server = start_server(
        tmp_path_factory.mktemp("instance-idle"), name="test_pwa_idle",
        env={
            "MEDCHAT_SESSION_IDLE_SECONDS": str(idle), "MEDCHAT_SESSION_TOUCH_SECONDS": "1",
            "MEDCHAT_SESSION_SWEEP_SECONDS": "1", "MEDCHAT_WS_HEARTBEAT_SECONDS": "2",
        },
    )
    try:
        server.create_user(ALICE["username"], PASSWORD, display_name=ALICE["display_name"])
        alice = await Tab.open(browser, server, "alice-idle")
        try:
            await alice.login(ALICE)
            await alice.live()
            # Hands off: the page goes to the login page by itself.
            await alice.page.wait_for_url(re.compile(r"/login\?.*why=idle"), timeout=(idle + 20) * 1000)
            await expect_text(alice.page.locator("#signed-out"), re.compile(f"^Signed out after {idle} seconds without activity"))
            statuses: list[int] = []
            alice.page.on("response", lambda r: statuses.append(r.status) if r.url.endswith("/login") and r.request.method == "POST" else None)
            await alice.page.fill("#username", ALICE["username"])
            await alice.page.fill("#password", PASSWORD)
            async with alice.page.expect_navigation(url=re.compile(r"/chats$")):
                await alice.page.click("main button[type=submit]")
            assert statuses == [303], statuses
            assert "This form has expired" not in await alice.page.locator("body").inner_text()
            alice.assert_clean()
        finally:
            await alice.context.close()
    finally:
        server.stop()


# --- notifications ---------------------------------------------------------------------------

FAKE_NOTIFICATIONS = """
(() => {
  const shown = [];
  class FakeNotification {
    constructor(title, options) { shown.push({ title, body: options.body, tag: options.tag }); }
    close() {}
    static get permission() { return 'granted'; }
    static requestPermission() { return Promise.resolve('granted'); }
  }
  Object.defineProperty(window, 'Notification', { value: FakeNotification });
  window.__shown = shown;
  let hidden = false;
  Object.defineProperty(document, 'visibilityState', { get: () => (hidden ? 'hidden' : 'visible') });
  Object.defineProperty(document, 'hidden', { get: () => hidden });
  window.__setHidden = (value) => { hidden = value; document.dispatchEvent(new Event('visibilitychange')); };
})();
"""


async def test_hidden_tab_notifies_once_per_conversation_without_the_text(server: ServerProcess, browser: Any) -> None:
    alice = await Tab.open(browser, server, "alice")
    dan = await Tab.open(browser, server, "dan")
    try:
        await alice.context.add_init_script(FAKE_NOTIFICATIONS)
        await alice.login(ALICE)
        await dan.login(DAN)
        direct = await open_direct(dan, ALICE)
        await dan.live()
        await alice.goto("/chats")
        await alice.live()
        await alice.page.evaluate("window.__setHidden(true)")
        await dan.send("Secret: the INR is 6.2")
        await dan.send("Secret: hold the warfarin")
        await alice.page.wait_for_function("() => window.__shown.length === 2", timeout=TIMEOUT)
        shown = await alice.page.evaluate("window.__shown")
        conv_id = direct.rsplit("/", 1)[1]
        assert {n["tag"] for n in shown} == {f"conversation-{conv_id}"}
        assert all(n["title"] == DAN["display_name"] and n["body"] == f"New message from {DAN['display_name']}" for n in shown)
        assert not any("INR" in json.dumps(n) or "warfarin" in json.dumps(n) for n in shown)
        # Visible again: no more notifications.
        await alice.page.evaluate("window.__setHidden(false)")
        await dan.send("Secret: third")
        await expect_text(alice.page.locator("#chat-list li.chat-item .chat-preview").first, "Secret: third")
        assert await alice.page.evaluate("window.__shown.length") == 2
        alice.assert_clean()
    finally:
        await alice.context.close()
        await dan.context.close()


# --- accessibility and the look --------------------------------------------------------------


async def axe_violations(page: Any) -> list[str]:
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate("axe.run(document, { resultTypes: ['violations'] })")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} -> " + "; ".join(n["target"][0] for n in v["nodes"][:5])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def post_as(server: ServerProcess, who: dict[str, str], to: dict[str, str] | str, bodies: list[str]) -> str:
    """Send messages through the no-JS form door: to the direct chat with ``to``, or to the
    conversation at path ``to``. Returns the conversation's path."""
    client = await login_client(server, who["username"], PASSWORD)
    try:
        page = await client.get("/directory")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        if isinstance(to, str):
            path = to
        else:
            opened = await client.post("/chats/direct", data={"username": to["username"], "csrf_token": token.group(1)})
            path = opened.headers["location"].split("#")[0]
        for body in bodies:
            sent = await client.post(f"{path}/messages", data={"body": body, "client_msg_id": str(uuid.uuid4()), "csrf_token": token.group(1)})
            assert sent.status_code == 303
            await asyncio.sleep(0.05)
        return path
    finally:
        await client.aclose()


@pytest.mark.skipif(not AXE.exists(), reason="node_modules/axe-core is missing: run npm ci")
@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_axe_finds_no_serious_violations(server: ServerProcess, browser: Any, artifacts: Path, scheme: str) -> None:
    # A conversation with both sides, a link, a reply and ticks; and a group in the list.
    await post_as(server, BOB, ALICE, ["Morning! Bloods for bed 12 are back: https://lab.example/results/12", "Potassium 3.1, I have started replacement"])
    await post_as(server, ALICE, BOB, ["Thanks, I will recheck at 14:00"])
    found: dict[str, list[str]] = {}
    for viewport, label in ((DESKTOP, "desktop"), (PHONE, "phone")):
        # add_script_tag injects axe as an inline script: only a context that bypasses the
        # CSP runs it. The other tests visit the same pages under the CSP.
        tab = await Tab.open(browser, server, f"axe-{label}", viewport=viewport, bypass_csp=True)
        try:
            await tab.page.emulate_media(color_scheme=scheme)
            await tab.goto("/login")
            found[f"login {label}"] = await axe_violations(tab.page)
            if label == "desktop" and scheme == "light":
                await tab.shot(artifacts, "desktop-login")
            await tab.login(ALICE)
            await tab.live()
            found[f"chat list {label}"] = await axe_violations(tab.page)
            await tab.shot(artifacts, f"{label}-chat-list-{scheme}")
            direct = await open_direct(tab, BOB)
            await tab.live()
            found[f"conversation {label}"] = await axe_violations(tab.page)
            await tab.shot(artifacts, f"{label}-conversation-{scheme}")
            await tab.goto("/offline")
            found[f"offline {label}"] = await axe_violations(tab.page)
            assert direct
            tab.assert_clean()
        finally:
            await tab.context.close()
    bad = {page: v for page, v in found.items() if v}
    assert bad == {}, json.dumps(bad, indent=1)


async def test_screenshots_of_the_phone_and_desktop_layouts(server: ServerProcess, browser: Any, artifacts: Path) -> None:
    """Pictures for the README (docs/screenshots/ holds two of them, copied by hand)."""
    # A ward group and a few direct chats, written through the form door.
    client = await login_client(server, ERIN["username"], PASSWORD)
    try:
        token = re.search(r'name="csrf_token" value="([^"]+)"', (await client.get("/chats/new-group")).text)
        assert token
        made = await client.post("/chats/group", data={"title": "Ward 7 handover", "members": [FRANK["username"], GRACE["username"]], "csrf_token": token.group(1)})
        group = made.headers["location"].split("#")[0]
    finally:
        await client.aclose()
    await post_as(server, HUGO, FRANK, ["Vancomycin trough for bed 4 is 18 mg/L, next dose as charted"])
    await post_as(server, GRACE, group, ["Bed 12: K+ 3.1 this morning, replacement running", "Bed 4 febrile overnight, cultures sent at 05:40"])
    await post_as(server, FRANK, group, ["Thanks Grace. Bed 9 for CT at 11:00, consent signed"])
    await post_as(server, HUGO, ERIN, ["Can you sign the controlled drug chart for bed 2?"])

    erin = await Tab.open(browser, server, "erin", viewport=DESKTOP)
    frank = await Tab.open(browser, server, "frank", viewport=PHONE)
    try:
        await erin.login(ERIN)
        await erin.goto(group)
        await erin.live()
        first = erin.page.locator("#messages li.msg.theirs").first
        await first.locator("a.reply-link").click()
        await erin.send("I will review bed 12 at 10:00 and repeat the potassium")
        await frank.login(FRANK)
        await frank.live()
        await frank.shot(artifacts, "phone-chat-list-ward")
        await frank.goto(group)
        await frank.live()
        await expect_text(last_ticks(erin), re.compile("Read by 1 of 2"))
        await frank.page.fill("#body", "Noted, I will")
        await frank.page.type("#body", " tell the night team")
        await expect_text(erin.page.locator("#conv-status"), "Frank Osei is typing\u2026")
        await erin.shot(artifacts, "desktop-ward")
        await frank.page.press("#body", "Enter")
        await expect_text(erin.page.locator("#messages li.msg.theirs .body").last, "Noted, I will tell the night team")
        await frank.shot(artifacts, "phone-ward")
        await frank.page.emulate_media(color_scheme="dark")
        await frank.shot(artifacts, "phone-ward-dark")
        await erin.page.emulate_media(color_scheme="dark")
        await erin.shot(artifacts, "desktop-ward-dark")
        erin.assert_clean()
        frank.assert_clean()
    finally:
        await erin.context.close()
        await frank.context.close()
