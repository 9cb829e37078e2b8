"""Times in the reader's zone: the browser's with JavaScript, the server's without."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.harness import ServerProcess, login_client, signed_in_page, start_server

pytestmark = pytest.mark.e2e

PASSWORD = "lantern quarry pebble orchid 42"
BROWSER_ZONE = "Asia/Kolkata"  # UTC+05:30: no whole-hour offset hides a mistake
SERVER_ZONE = "UTC"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(tmp_path_factory.mktemp("instance-local-time"), env={"MEDCHAT_DISPLAY_TIMEZONE": SERVER_ZONE}, name="local-time")
    try:
        running.create_user("tara", PASSWORD, display_name="Tara Tan")
        running.create_user("uma", PASSWORD, display_name="Uma Ude")
        yield running
    finally:
        running.stop()


async def open_page(browser: Any, server: ServerProcess, *, js: bool) -> Any:
    return await signed_in_page(browser, server, "tara", PASSWORD, js=js, timezone_id=BROWSER_ZONE)


async def test_js_shows_the_browsers_zone_and_no_js_the_servers(server: ServerProcess, browser: Any, artifacts: Path) -> None:
    uma = await login_client(server, "uma", PASSWORD)
    try:
        page = await uma.get("/directory")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        opened = await uma.post("/chats/direct", data={"username": "tara", "csrf_token": token.group(1)})
        conv = re.search(r"/chats/(\d+)", opened.headers["location"])
        assert conv
        sent = await uma.post(f"/chats/{conv.group(1)}/messages", data={"body": "Obs due at the hour", "client_msg_id": str(uuid.uuid4()), "csrf_token": token.group(1)})
        assert sent.status_code == 303
    finally:
        await uma.aclose()

    for js in (False, True):
        page = await open_page(browser, server, js=js)
        await page.goto(f"/chats/{conv.group(1)}")
        stamp = page.locator("#messages li.msg time").last
        when = datetime.fromisoformat(str(await stamp.get_attribute("datetime")))
        zone = ZoneInfo(BROWSER_ZONE if js else SERVER_ZONE)
        if js:
            await page.wait_for_function("document.querySelector('#messages li.msg time:last-of-type') !== null")
        assert (await stamp.inner_text()).strip() == when.astimezone(zone).strftime("%H:%M"), f"js={js}"
        # The chat list's time and the day separator follow the same zone.
        listed = page.locator("#chat-list time").first
        assert (await listed.inner_text()).strip() == when.astimezone(zone).strftime("%H:%M")
        days = [d.strip() for d in await page.locator("#messages li.day").all_inner_texts()]
        assert days == ["Today"], days
        await page.screenshot(path=str(artifacts / f"local-time-{'js' if js else 'nojs'}.png"))
        await page.context.close()
