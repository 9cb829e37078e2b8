"""Message info in Chromium: "Read by 1 of 2" opens who has read the message and who it has
only reached, with times; live in the PWA (JavaScript on) and on the terminal (off)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import ServerProcess, signed_in_page, start_server

pytestmark = pytest.mark.e2e

PASSWORD = "lantern quarry pebble orchid 42"
TIMEOUT = 10_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(tmp_path_factory.mktemp("instance-info"), name="message-info")
    try:
        for name, display in (("rita", "Rita Reyes"), ("sam", "Sam Sato"), ("tom", "Tom Tran")):
            running.create_user(name, PASSWORD, display_name=display)
        yield running
    finally:
        running.stop()


async def person(browser: Any, server: ServerProcess, username: str, *, js: bool) -> Any:
    return await signed_in_page(browser, server, username, PASSWORD, js=js)


async def test_read_by_opens_message_info_live_and_without_js(server: ServerProcess, browser: Any, artifacts: Path) -> None:
    rita = await person(browser, server, "rita", js=True)
    await rita.goto("/chats/new-group")
    await rita.fill("#title", "Ward 7 nurses")
    await rita.check("input[name=members][value='sam']")
    await rita.check("input[name=members][value='tom']")
    async with rita.expect_navigation(url=re.compile(r"/chats/\d+")):
        await rita.click("main form.stack button[type=submit]")
    group_url = rita.url.split("#")[0]
    await rita.wait_for_function("() => window.medchat && window.medchat.state === 'open'", timeout=TIMEOUT)
    await rita.fill("#body", "Bed 4 obs due at 14:00")
    await rita.press("#body", "Enter")
    ticks = rita.locator("#messages li.msg.mine").last.locator(".ticks")
    await ticks.filter(has_text="Read by 0 of 2").wait_for(timeout=TIMEOUT)

    # Sam reads it (the page marks it read); Rita's ticks change live and stay a link.
    sam = await person(browser, server, "sam", js=False)
    await sam.goto(group_url)
    await ticks.filter(has_text="Read by 1 of 2").wait_for(timeout=TIMEOUT)
    assert await ticks.evaluate("el => el.tagName") == "A"
    async with rita.expect_navigation(url=re.compile(r"/messages/\d+/info$")):
        await ticks.click()
    text = " ".join((await rita.locator("main").inner_text()).split())
    assert "Read by 1 Sam Sato" in text
    assert "Not delivered yet to 1 Tom Tran" in text
    await rita.screenshot(path=str(artifacts / "message-info-js.png"))  # docs/screenshots/message-info.png

    # The same, without JavaScript: the link is in the message frame the server draws, and
    # opens the info page in the whole window.
    rita_terminal = await person(browser, server, "rita", js=False)
    await rita_terminal.goto(group_url)
    link = rita_terminal.frame_locator("iframe.pane-frame").locator("#messages li.msg.mine").last.locator("a.ticks")
    assert (await link.inner_text()).strip().endswith("Read by 1 of 2")
    async with rita_terminal.expect_navigation(url=re.compile(r"/messages/\d+/info$")):
        await link.click()
    assert "Read by 1 Sam Sato" in " ".join((await rita_terminal.locator("main").inner_text()).split())
    # Sam cannot open the info of Rita's message.
    info_url = rita_terminal.url
    response = await sam.goto(info_url)
    assert response is not None and response.status == 404
    for page in (rita, sam, rita_terminal):
        await page.context.close()
