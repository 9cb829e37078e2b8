"""The administrator's first day in Chromium, JavaScript off: the setup link refuses a weak
password saying why and keeping every other field, then signs the administrator in, and
*My sessions* names the device ("Chrome (headless) on Linux, 127.0.0.1, since 09:15")."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import ServerProcess, browser_sign_in, nojs_context, start_server

pytestmark = pytest.mark.e2e

PASSWORD = "lantern quarry pebble orchid 42"
FIELDS = {"username": "ines.admin", "display_name": "Ines Ibarra", "department": "IT", "job_title": "Clinical systems"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(tmp_path_factory.mktemp("instance-first-day"), name="first-day")
    try:
        yield running
    finally:
        running.stop()


async def test_setup_link_weak_password_then_signed_in_and_sessions_named(server: ServerProcess, browser: Any, artifacts: Path) -> None:
    context = await nojs_context(browser, server.base_url)
    page = await context.new_page()
    await page.goto(server.setup_url)
    for name, value in FIELDS.items():
        await page.fill(f"#{name}", value)
    await page.fill("#password", "password12345")
    await page.fill("#password2", "password12345")
    await page.click("main button[type=submit]")
    error = (await page.locator(".error-text").inner_text()).strip()
    assert "commonly used password" in error or "easy to guess" in error.lower(), error
    for name, value in FIELDS.items():
        assert await page.input_value(f"#{name}") == value, name  # nothing typed is lost
    assert await page.input_value("#password") == ""  # a password is never sent back
    await page.screenshot(path=str(artifacts / "first-day-weak-password.png"))

    await page.fill("#password", PASSWORD)
    await page.fill("#password2", PASSWORD)
    async with page.expect_navigation(url=re.compile(r"/admin/staff\?welcome=1$")):
        await page.click("main button[type=submit]")
    assert FIELDS["display_name"] in await page.locator(".whoami").inner_text()
    assert "first administrator" in await page.locator("main").inner_text()

    await page.goto("/account/sessions")
    row = " ".join((await page.locator("tr.current").inner_text()).split())
    assert re.search(r"Chrome \(headless\) on Linux, 127\.0\.0\.1, since \d\d:\d\d", row), row
    assert "Mozilla/5.0" not in row
    await context.close()


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(tmp_path_factory.mktemp("instance-idle"), env={"MEDCHAT_SESSION_IDLE_SECONDS": "6", "MEDCHAT_SESSION_TOUCH_SECONDS": "1"}, name="first-day-idle")
    try:
        running.create_user("jon", PASSWORD, display_name="Jon Jay")
        yield running
    finally:
        running.stop()


async def test_a_page_left_open_without_javascript_locks_itself(idle_server: ServerProcess, browser: Any) -> None:
    """Not only the conversation: the directory left open on a terminal ends at the login
    page, which says why (idle 6 s here, the reload 5 s later)."""
    context = await nojs_context(browser, idle_server.base_url)
    page = await browser_sign_in(context, "jon", PASSWORD)
    await page.goto("/directory?q=jon")
    await page.wait_for_url(re.compile(r"/login\?"), timeout=25_000)
    assert "auto" not in page.url  # after logging in again, no automatic-refresh URL
    assert "Signed out after" in await page.locator("main").inner_text()
    await context.close()
