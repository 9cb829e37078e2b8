"""On the ward, on a phone: tap targets, the reply bar, the invite link, and one linking rule.

In Debian's Chromium against a real Hypercorn:
- every visible control on the main pages is at least 44x44 CSS px at phone size (390x844),
  with JavaScript on and off (WCAG 2.5.5; the check measures ``getBoundingClientRect``);
- clicking Reply on the last message leaves it fully visible above the reply bar;
- the invite link stays inside its card on a phone, and the script's Copy button copies it;
- the script links a message exactly as the server does: the examples in
  tests/vectors/linkify.json, and a message seen live and after a reload.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import ROOT, ServerProcess, login_client, start_server

pytestmark = [pytest.mark.e2e, pytest.mark.service_worker]

PASSWORD = "copper lantern violet 2719"
ADA = {"username": "ada.admin", "display_name": "Ada Admin"}
BEN = {"username": "ben.reg", "display_name": "Ben Registrar"}
CARA = {"username": "cara.nurse", "display_name": "Cara Nurse"}
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
TIMEOUT = 10_000
MINIMUM = 44  # CSS px: WCAG 2.5.5 (AAA) and the platforms' own guidance for touch
VECTORS = json.loads((ROOT / "tests" / "vectors" / "linkify.json").read_text())["cases"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(
        tmp_path_factory.mktemp("instance-phone"), name="test_phone",
        env={"MEDCHAT_RATE_LIMIT_ENABLED": "false", "MEDCHAT_MESSAGE_BURST": "1000", "MEDCHAT_MESSAGE_RATE": "1000"},
    )
    try:
        running.create_user(ADA["username"], PASSWORD, display_name=ADA["display_name"], admin=True)
        for who in (BEN, CARA):
            running.create_user(who["username"], PASSWORD, display_name=who["display_name"], department="Ward 7")
        yield running
    finally:
        running.stop()



async def csrf(client: Any, path: str = "/directory") -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', (await client.get(path)).text)
    assert token
    return token.group(1)


async def post_messages(server: ServerProcess, who: dict[str, str], path: str, bodies: list[str]) -> None:
    """Send through the form door, as ``who``."""
    client = await login_client(server, who["username"], PASSWORD)
    try:
        token = await csrf(client)
        for body in bodies:
            sent = await client.post(f"{path}/messages", data={"body": body, "client_msg_id": str(uuid.uuid4()), "csrf_token": token})
            assert sent.status_code == 303
    finally:
        await client.aclose()


async def make_group(server: ServerProcess, title: str, messages: int = 12) -> str:
    """A group of Ada (its owner), Ben and Cara with a few screens of messages; its path."""
    client = await login_client(server, ADA["username"], PASSWORD)
    try:
        made = await client.post("/chats/group", data={"title": title, "members": [BEN["username"], CARA["username"]], "csrf_token": await csrf(client)})
        assert made.status_code == 303
        path = str(made.headers["location"]).split("#")[0]
    finally:
        await client.aclose()
    await post_messages(server, BEN, path, [f"Bed {n}: obs stable, next review at {n + 8}:00" for n in range(1, messages)])
    await post_messages(server, ADA, path, ["Thanks. Guidance: www.nhs.uk/conditions/sepsis and https://wiki.hospital.local/sepsis"])
    await post_messages(server, BEN, path, ["Noted, bed 12 K+ < 3.5 & BP > 140: rechecking at 14:00"])
    return path


async def open_page(browser: Any, server: ServerProcess, who: dict[str, str] | None, *, js: bool, viewport: dict[str, int] = PHONE) -> Any:
    """A fresh context (own cookies) with one page, logged in as ``who`` unless None."""
    context = await browser.new_context(base_url=server.base_url, ignore_https_errors=True, java_script_enabled=js, viewport=viewport, color_scheme="light")
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    if who is not None:
        await page.goto("/login")
        await page.fill("#username", who["username"])
        await page.fill("#password", PASSWORD)
        async with page.expect_navigation(url=re.compile(r"/chats$")):
            await page.click("main button[type=submit]")
    return page


async def live(page: Any) -> None:
    await page.wait_for_function("() => window.medchat && window.medchat.state === 'open'", timeout=TIMEOUT)


# --- 1. tap targets ----------------------------------------------------------------------------

# Measured in every frame of the page (without JavaScript a conversation's messages live in a
# frame). A checkbox or radio button counts by its label when the label wraps it or names it
# (for=) and is itself big enough: tapping the label ticks the box. Links inside a message's
# text are exempt: WCAG 2.5.8 exempts inline links in a sentence, whose size the line sets.
MEASURE = """(minimum) => {
  const controls = 'a[href], button, input:not([type=hidden]), select, summary, textarea';
  const size = (el) => el.getBoundingClientRect();
  const big = (el) => { const r = size(el); return r.width >= minimum - 0.01 && r.height >= minimum - 0.01; };
  const name = (el) => {
    const r = size(el);
    const text = (el.getAttribute('aria-label') || el.textContent || el.value || el.name || '').trim().replace(/\\s+/g, ' ').slice(0, 40);
    return `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.className ? '.' + String(el.className).trim().split(/\\s+/).join('.') : ''} "${text}" ${Math.round(r.width * 10) / 10}x${Math.round(r.height * 10) / 10}`;
  };
  const offenders = [];
  const exempt = [];
  let measured = 0;
  for (const el of document.querySelectorAll(controls)) {
    const r = size(el);
    if (!r.width || !r.height || !el.checkVisibility({ visibilityProperty: true })) continue;
    if (el.closest('.body')) { exempt.push(name(el)); continue; }
    measured += 1;
    let target = el;
    if (el.matches('input[type=checkbox], input[type=radio]')) {
      const label = el.closest('label') || (el.id ? document.querySelector(`label[for="${CSS.escape(el.id)}"]`) : null);
      if (label && big(label)) target = label;
    }
    if (!big(target)) offenders.push(name(target) + (target === el ? '' : ` (the label of ${name(el)})`));
  }
  return { offenders, exempt, measured };
}"""


async def small_targets(page: Any, what: str) -> tuple[list[str], int]:
    """The controls under 44x44 on ``page`` (and its frames), each named with ``what``."""
    await page.wait_for_load_state("load")
    offenders: list[str] = []
    measured = 0
    for frame in page.frames:
        found = await frame.evaluate(MEASURE, MINIMUM)
        offenders += [f"{what}: {o}" for o in found["offenders"]]
        measured += found["measured"]
    return offenders, measured


@pytest.mark.parametrize("js", [True, False], ids=["js-on", "js-off"])
async def test_every_control_is_at_least_44px_on_a_phone(server: ServerProcess, browser: Any, artifacts: Path, js: bool) -> None:
    group = await make_group(server, f"Ward 7 taps {'js' if js else 'nojs'}")
    offenders: list[str] = []
    counted: dict[str, int] = {}

    async def check(page: Any, what: str) -> None:
        found, measured = await small_targets(page, what)
        offenders.extend(found)
        counted[what] = measured

    guest = await open_page(browser, server, None, js=js)
    await guest.goto("/login")
    await check(guest, "login")
    await guest.context.close()

    ada = await open_page(browser, server, ADA, js=js)
    page = ada
    ben_id = None
    try:
        await check(page, "chat list")
        await page.goto(group)
        if js:
            await live(page)
            await page.locator("#messages li.msg.theirs a.reply-link").last.click()
            await page.locator("#reply-bar").wait_for()
        else:
            await page.frame_locator("iframe.pane-frame").locator("#messages li.msg").last.wait_for()
        await check(page, "conversation")
        await page.screenshot(path=str(artifacts / f"phone-taps-conversation-{'js' if js else 'nojs'}.png"))
        if not js:
            last = await page.frame_locator("iframe.pane-frame").locator("#messages li.msg.theirs").last.get_attribute("data-id")
            await page.goto(f"{group}?reply_to={last}")
            await check(page, "conversation, replying")
        await page.goto(f"{group}/info")
        await check(page, "group info")
        await page.goto("/directory")
        await check(page, "directory")
        await page.goto("/chats/new-group")
        await check(page, "new group")
        await page.goto("/account/sessions")
        await check(page, "my sessions")
        await page.goto("/admin/staff")
        await check(page, "staff list")
        href = await page.locator("table a", has_text=BEN["display_name"]).get_attribute("href")
        ben_id = href
        await page.goto(str(href))
        await check(page, "staff detail")
        await page.screenshot(path=str(artifacts / f"phone-taps-staff-{'js' if js else 'nojs'}.png"))
        if js:
            assert page.errors == []
    finally:
        await ada.context.close()
    assert ben_id
    assert all(counted.values()), counted  # every page had controls to measure
    assert offenders == [], f"{len(offenders)} controls under {MINIMUM}x{MINIMUM} CSS px:\n" + "\n".join(offenders)


# --- 2. the reply bar and the invite link ----------------------------------------------------


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
async def test_the_last_message_stays_visible_above_the_reply_bar(server: ServerProcess, browser: Any, viewport: dict[str, int]) -> None:
    group = await make_group(server, f"Reply bar {viewport['width']}", messages=30)
    page = await open_page(browser, server, CARA, js=True, viewport=viewport)
    try:
        await page.goto(group)
        await live(page)
        last = page.locator("#messages li.msg").last
        await last.locator("a.reply-link").click()
        bar = page.locator("#reply-bar")
        await bar.wait_for()
        await page.wait_for_timeout(100)  # let a resize observer run, if any
        message = await last.bounding_box()
        scroller = await page.locator("#scroller").bounding_box()
        form = await page.locator("#compose").bounding_box()
        top_of_bar = (await bar.bounding_box())["y"]
        assert message and scroller and form
        assert message["y"] >= scroller["y"] - 0.5, (message, scroller)
        assert message["y"] + message["height"] <= scroller["y"] + scroller["height"] + 0.5, (message, scroller)
        assert message["y"] + message["height"] <= top_of_bar + 0.5, (message, top_of_bar)
        assert await page.locator("#reply-bar").inner_text() != ""
        assert await page.evaluate("document.activeElement.id") == "body"
        assert page.errors == []
    finally:
        await page.context.close()


# Every element of the card, and the text in it, inside the card's box.
OUTSIDE_THE_CARD = """() => {
  const card = document.querySelector('main .card').getBoundingClientRect();
  const out = [];
  const range = document.createRange();
  for (const el of document.querySelectorAll('main .card, main .card *')) {
    range.selectNodeContents(el);
    for (const r of [el.getBoundingClientRect(), range.getBoundingClientRect()]) {
      if (r.width && (r.left < card.left - 0.5 || r.right > card.right + 0.5)) out.push(`${el.tagName}#${el.id} ${r.left}-${r.right} (card ${card.left}-${card.right})`);
    }
  }
  return out;
}"""


async def create_invite(page: Any, username: str) -> str:
    """Create accounts until one's link has no "-" (a token is random: with a "-" the browser
    may break the line there by itself); the link on the page."""
    for n in range(20):
        await page.goto("/admin/staff")
        await page.fill("#username", f"{username}{n}")
        await page.fill("#display_name", "Dr Maximiliana Featherstonehaugh-Worthington")
        await page.click("form.grid-form button[type=submit]")
        await page.locator("#invite-link").wait_for()
        link = str(await page.locator("#invite-link").input_value())
        if "-" not in link.rsplit("/", 1)[1]:
            return link
    raise AssertionError("twenty links, each with a '-'")


@pytest.mark.parametrize("js", [True, False], ids=["js-on", "js-off"])
async def test_the_invite_link_fits_its_card_on_a_phone(server: ServerProcess, browser: Any, artifacts: Path, js: bool) -> None:
    page = await open_page(browser, server, ADA, js=js)
    try:
        link = await create_invite(page, f"max.{'js' if js else 'nojs'}")
        assert link.startswith(server.base_url + "/invite/")
        outside = await page.evaluate(OUTSIDE_THE_CARD)
        assert outside == [], outside
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        await page.screenshot(path=str(artifacts / f"phone-invite-link-{'js' if js else 'nojs'}.png"))
        copy = page.locator("#copy-link")
        if not js:
            assert await copy.count() == 0  # only the script can copy; the field is there to select
            assert await page.locator("#invite-link").get_attribute("readonly") is not None
            return
        await page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base_url)
        await copy.click()
        assert await page.evaluate("navigator.clipboard.readText()") == link
        await page.locator("#copy-link-status", has_text="Copied").wait_for()
        assert page.errors == []
    finally:
        await page.context.close()


# --- 3. one linking rule ----------------------------------------------------------------------

SHOWN = """async (cases) => {
  const { bodyNodes } = await import('/static/js/dom.js');
  return cases.map((c) => {
    const box = document.createElement('div');
    box.append(bodyNodes(c.text));
    const shown = [];
    const text = (t) => { if (!t) return; if (typeof shown.at(-1) === 'string') shown[shown.length - 1] += t; else shown.push(t); };
    for (const node of box.childNodes) {
      if (node.nodeName === 'BR') text('\\n');
      else if (node.nodeName === 'A') {
        const attrs = Object.fromEntries([...node.attributes].map((a) => [a.name, a.value]));
        shown.push({ a: node.textContent, href: node.getAttribute('href'), attrs });
      } else text(node.textContent);
    }
    return shown;
  });
}"""


async def test_the_script_links_text_as_the_server_does(server: ServerProcess, browser: Any) -> None:
    page = await open_page(browser, server, BEN, js=True)
    try:
        shown = await page.evaluate(SHOWN, [{"text": case["text"]} for case in VECTORS])
        wrong = []
        for case, got in zip(VECTORS, shown, strict=True):
            for piece in got:
                if isinstance(piece, dict):
                    # The same element the page draws: <a href rel target dir>.
                    attrs = piece.pop("attrs")
                    assert attrs == {"href": piece["href"], "rel": "noopener noreferrer nofollow", "target": "_blank", "dir": "ltr"}, attrs
            if got != case["shown"]:
                wrong.append(f"{case['why']}: {json.dumps(case['text'])}\n  script: {json.dumps(got)}\n  server: {json.dumps(case['shown'])}")
        assert wrong == [], "\n".join(wrong)
        assert page.errors == []
    finally:
        await page.context.close()


async def test_a_message_looks_the_same_live_and_after_a_reload(server: ServerProcess, browser: Any) -> None:
    group = await make_group(server, "Same look", messages=2)
    text = "\n".join(case["text"] for case in VECTORS)
    page = await open_page(browser, server, CARA, js=True)  # she has written nothing there yet
    try:
        await page.goto(group)
        await live(page)
        await page.fill("#body", text)
        await page.press("#body", "Enter")
        sent = page.locator("#messages li.msg.mine:not(.pending)").last
        await sent.wait_for()
        live_html = await sent.locator(".body").inner_html()
        await page.reload()
        await live(page)
        reloaded_html = await page.locator("#messages li.msg.mine").last.locator(".body").inner_html()
        assert "<a " in live_html
        # The server writes "<br>\n"; the newline after a <br> draws nothing.
        assert live_html == reloaded_html.replace("<br>\n", "<br>")
        assert page.errors == []
    finally:
        await page.context.close()
