"""Asked once before leaving a group, in Chromium: a confirmation page without JavaScript, a
dialog with it; Cancel (or dismissing the dialog) changes nothing."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import ServerProcess, signed_in_page, start_server

pytestmark = pytest.mark.e2e

PASSWORD = "lantern quarry pebble orchid 42"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(tmp_path_factory.mktemp("instance-confirm"), name="confirmations")
    try:
        for name, display in (("vera", "Vera Vance"), ("will", "Will Wong")):
            running.create_user(name, PASSWORD, display_name=display)
        yield running
    finally:
        running.stop()


async def person(browser: Any, server: ServerProcess, username: str, *, js: bool) -> Any:
    return await signed_in_page(browser, server, username, PASSWORD, js=js, viewport={"width": 390, "height": 844})


async def new_group(page: Any, title: str) -> str:
    await page.goto("/chats/new-group")
    await page.fill("#title", title)
    await page.check("input[name=members][value='will']")
    async with page.expect_navigation(url=re.compile(r"/chats/\d+")):
        await page.click("main form.stack button[type=submit]")
    return str(page.url.split("#")[0])


async def test_leaving_a_group_asks_first_with_and_without_javascript(server: ServerProcess, browser: Any) -> None:
    vera = await person(browser, server, "vera", js=False)
    group = await new_group(vera, "Night shift")
    will_terminal = await person(browser, server, "will", js=False)
    await will_terminal.goto(group + "/info")
    # Without JavaScript: a page that names what happens; Cancel goes back, nothing changed.
    async with will_terminal.expect_navigation(url=re.compile(r"/leave$")):
        await will_terminal.click("a:has-text('Leave group')")
    text = " ".join((await will_terminal.locator("main").inner_text()).split())
    assert "Leave “Night shift”?" in text and "stop receiving this group's messages" in text
    async with will_terminal.expect_navigation(url=re.compile(r"/info$")):
        await will_terminal.click("a:has-text('Cancel')")
    assert (await will_terminal.goto(group)).status == 200  # type: ignore[union-attr]

    # With JavaScript: a dialog with the same words; dismissed, nothing happens.
    will = await person(browser, server, "will", js=True)
    await will.goto(group + "/info")
    asked: list[str] = []

    def answer(accept: bool) -> Any:
        def on_dialog(dialog: Any) -> None:
            asked.append(dialog.message)
            asyncio.ensure_future(dialog.accept() if accept else dialog.dismiss())
        return on_dialog

    will.once("dialog", answer(False))
    await will.click("a:has-text('Leave group')")
    await will.wait_for_timeout(300)
    assert will.url.endswith("/info") and len(asked) == 1
    assert asked[0].startswith("Leave “Night shift”?") and "stop receiving" in asked[0]
    will.once("dialog", answer(True))
    async with will.expect_navigation(url=re.compile(r"/chats$")):
        await will.click("a:has-text('Leave group')")
    assert len(asked) == 2
    response = await will.goto(group)
    assert response is not None and response.status == 404  # he has left
    for page in (vera, will_terminal, will):
        await page.context.close()
