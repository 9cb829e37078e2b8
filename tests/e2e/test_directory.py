"""Finding people and building a group in Chromium with JavaScript off: the directory's
search, department filter, pages and presence (only for people who share it with me), then
two colleagues added to a group by ticking them on its details page, the ticks surviving a
page turn and a filter. axe-core checks the directory; its picture lands in
test-artifacts/e2e/directory.png (docs/screenshots/directory.png is a copy), the group page's
list in directory-add-members.png."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import ROOT, ServerProcess, browser_sign_in, nojs_context, start_server

pytestmark = pytest.mark.e2e

PASSWORD = "lantern quarry pebble orchid 42"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORT = {"width": 1280, "height": 900}
STAFF = [
    # username, display name, department, job title; by name, six a page.
    ("alice", "Alice Adams", "Cardiology", "Staff Nurse"),
    ("ben", "Ben Mensah", "Radiology", "Radiographer"),
    ("carla", "Carla Diaz", "Intensive Care", "Charge Nurse"),
    ("dora", "Dora Old", "Radiology", "Porter"),
    ("eli", "Eli Ng", "Radiology", "Radiologist"),
    ("farah", "Farah Khan", "Radiology", "Radiographer"),
    ("gao", "Gao Li", "Pharmacy", "Pharmacist"),
    ("hana", "Hana Berg", "Cardiology", "Consultant"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(
        tmp_path_factory.mktemp("instance-directory"), name="directory",
        env={"MEDCHAT_DIRECTORY_PAGE_SIZE": "6"},
    )
    try:
        for username, name, department, job in STAFF:
            running.create_user(username, PASSWORD, display_name=name, department=department, job_title=job)
        yield running
    finally:
        running.stop()


async def sign_in(context: Any, username: str) -> Any:
    return await browser_sign_in(context, username, PASSWORD)


async def listed(page: Any) -> list[str]:
    """The usernames the directory shows, in order."""
    return [text.lstrip("@") for text in await page.locator("ul.people li span.muted[dir=auto]:text-matches('^@')").all_inner_texts()]


async def entry(page: Any, username: str) -> str:
    return " ".join((await page.locator(f"ul.people li:has(span:text-is('@{username}'))").inner_text()).split())


async def search(page: Any, q: str, department: str = "") -> None:
    await page.fill("#q", q)
    await page.select_option("#department", department)
    async with page.expect_navigation():
        await page.click("form[role=search] button[type=submit]")


async def until(page: Any, path: str, check: Any, timeout: float = 10.0) -> None:
    """Reload ``path`` until ``check(page)`` holds (the server sees sockets come and go)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        await page.goto(path)
        if await check(page):
            return
        assert asyncio.get_running_loop().time() < deadline, f"{path} never showed what was awaited"
        await asyncio.sleep(0.2)


async def ticked(page: Any, name: str) -> list[str]:
    return [await box.get_attribute("value") for box in await page.locator(f"input[name={name}]:checked").all()]


async def test_find_people_page_filter_and_add_two_members_by_ticking(server: ServerProcess, browser: Any, artifacts: Path) -> None:
    terminal = await nojs_context(browser, server.base_url, viewport=VIEWPORT)
    alice = await sign_in(terminal, "alice")

    # Search: name, username, department and job title; then pages that keep the query.
    await alice.goto("/directory")
    assert await listed(alice) == ["alice", "ben", "carla", "dora", "eli", "farah"]
    async with alice.expect_navigation(url=re.compile(r"/directory\?page=2$")):
        await alice.click("a[rel=next]")
    assert await listed(alice) == ["gao", "hana"] and await alice.locator("a[rel=next]").count() == 0
    async with alice.expect_navigation(url=re.compile(r"/directory$")):
        await alice.click("a[rel=prev]")
    await search(alice, "radiographer")
    assert await listed(alice) == ["ben", "farah"]
    await search(alice, "KHAN")
    assert await listed(alice) == ["farah"]
    await search(alice, "a", "Radiology")  # every Radiology colleague has an "a" somewhere
    assert await listed(alice) == ["ben", "dora", "eli", "farah"]
    assert alice.url.endswith("/directory?q=a&department=Radiology")
    await search(alice, "", "Pharmacy")
    assert await listed(alice) == ["gao"]
    await search(alice, "", "Cardiology")
    assert await listed(alice) == ["alice", "hana"]

    # Direct chats with Ben and Carla, from the directory: they now share presence with me.
    for name in ("Ben Mensah", "Carla Diaz"):
        await alice.goto("/directory")
        async with alice.expect_navigation(url=re.compile(r"/chats/\d+")):
            await alice.click(f"button[aria-label='Message {name}']")
    # Ben and Gao are online (the app open); Carla was, and left. Gao shares nothing with me.
    others = {}
    for username in ("ben", "carla", "gao"):
        context = await browser.new_context(base_url=server.base_url, ignore_https_errors=True, viewport=VIEWPORT)
        page = await sign_in(context, username)
        await page.wait_for_function("() => window.medchat && window.medchat.state === 'open'", timeout=10_000)
        others[username] = context

    async def ben_online(page: Any) -> bool:
        return "online" in await entry(page, "ben")

    await until(alice, "/directory", ben_online)
    await others.pop("carla").close()

    async def carla_gone(page: Any) -> bool:
        return "last seen" in await entry(page, "carla")

    await until(alice, "/directory", carla_gone)
    assert "last seen" not in await entry(alice, "ben")
    await alice.goto("/directory?page=2")
    gao = await entry(alice, "gao")
    assert "online" not in gao and "last seen" not in gao  # online, but not mine to know
    await alice.goto("/directory")
    for username in ("dora", "eli", "farah"):
        assert "online" not in await entry(alice, username) and "last seen" not in await entry(alice, username)
    await alice.screenshot(path=str(artifacts / "directory.png"))

    # A group with Ben; then Dora and Eli added by ticking them on its details page.
    await alice.goto("/chats/new-group")
    await alice.fill("#title", "Radiology huddle")
    await alice.check("input[name=members][value='ben']")
    async with alice.expect_navigation(url=re.compile(r"/chats/\d+")):
        await alice.click("button:has-text('Create group')")
    info = alice.url.split("#")[0] + "/info"
    await alice.goto(info)
    # Members are shown as such, without a box to tick.
    assert await alice.locator("input[name=username][value='ben']").count() == 0
    assert await alice.locator(".check.member:has-text('Ben Mensah') input[disabled]").count() == 1
    await alice.check("input[name=username][value='dora']")
    # The next page keeps Dora ticked above it.
    async with alice.expect_navigation(url=re.compile(r"/info$")):
        await alice.click("button:has-text('Next')")
    assert await ticked(alice, "username") == ["dora"]
    assert await alice.locator("input[name=username]").evaluate_all("boxes => boxes.map(b => b.value)") == ["dora", "hana"]
    # A filter keeps her too.
    await alice.select_option("#department", "Radiology")
    async with alice.expect_navigation(url=re.compile(r"/info$")):
        await alice.click("button:has-text('Filter')")
    assert await ticked(alice, "username") == ["dora"]
    assert await alice.locator("input[name=username]").evaluate_all("boxes => boxes.map(b => b.value)") == ["dora", "eli", "farah"]
    await alice.check("input[name=username][value='eli']")
    await alice.screenshot(path=str(artifacts / "directory-add-members.png"), full_page=True)
    async with alice.expect_navigation(url=re.compile(r"/info$")):
        await alice.click("button:has-text('Add ticked colleagues')")
    text = " ".join((await alice.locator("main").inner_text()).split())
    assert "4 members" in text
    members = await alice.locator("ul.people li strong").all_inner_texts()
    assert sorted(members) == ["Alice Adams", "Ben Mensah", "Dora Old", "Eli Ng"]
    for context in (terminal, *others.values()):
        await context.close()


@pytest.mark.skipif(not AXE.exists(), reason="node_modules/axe-core is missing: run npm ci")
async def test_axe_finds_no_serious_violations_on_the_directory(server: ServerProcess, browser: Any) -> None:
    # add_script_tag injects axe as an inline script: only a context that bypasses the CSP runs it.
    context = await browser.new_context(base_url=server.base_url, ignore_https_errors=True, viewport=VIEWPORT, bypass_csp=True)
    try:
        page = await sign_in(context, "hana")
        found = {}
        for path in ("/directory", "/directory?q=a&department=Radiology", "/chats/new-group?page=2"):
            await page.goto(path)
            await page.add_script_tag(path=str(AXE))
            result = await page.evaluate("axe.run(document, { resultTypes: ['violations'] })")
            found[path] = [
                f"{v['id']} ({v['impact']}): {v['help']} -> " + "; ".join(n["target"][0] for n in v["nodes"][:5])
                for v in result["violations"]
                if v["impact"] in ("serious", "critical")
            ]
        assert found == {path: [] for path in found}
    finally:
        await context.close()
