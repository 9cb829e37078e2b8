"""Finding people and building groups without JavaScript: the directory (search, department
filter, pages, presence where it is shared) and the search-and-tick list of the New-group and
group-details pages (the filter and the pages keep what was ticked)."""

from __future__ import annotations

import html as htmllib
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from app.actions import presence
from app.services import Services
from tests.helpers import BAD_IDS, conversation_id_of, user_id
from tests.support import Client

pytestmark = pytest.mark.usefixtures("database_kind")


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    # Three a page, so a handful of people make several pages; groups of up to three share
    # presence.
    return {**app_config, "DIRECTORY_PAGE_SIZE": 3, "PRESENCE_MAX_GROUP": 3}


async def page_html(client: Client, path: str) -> str:
    r = await client.get(path)
    assert r.status_code == 200, (path, r.status_code)
    return str(await r.get_data(as_text=True))


def usernames(html: str) -> list[str]:
    """The people listed in the directory, in order."""
    return re.findall(r'<span class="muted" dir="auto">@([a-z0-9._-]+)</span>', html)


def entries(html: str) -> dict[str, str]:
    """Each directory entry's markup, by username."""
    return {m.group(2): m.group(1) for m in re.finditer(r'<li>(\s*<div><strong dir="auto">.*?@([a-z0-9._-]+)</span>.*?)</li>', html, re.S)}


def link(html: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}">', html)
    return htmllib.unescape(found.group(1)) if found else None


def checkboxes(html: str, name: str) -> list[tuple[str, bool]]:
    out = []
    for tag in re.findall(r'<input type="checkbox"[^>]*>', html):
        if f' name="{name}"' in tag:
            value = re.search(r' value="([^"]*)"', tag)
            assert value, tag
            out.append((value.group(1), " checked" in tag))
    return out


def ticked(html: str, name: str) -> list[str]:
    return [v for v, on in checkboxes(html, name) if on]


def listed(html: str, name: str) -> list[str]:
    return [v for v, _ in checkboxes(html, name)]


async def create_group(client: Client, title: str, members: list[str]) -> int:
    r = await client.submit("/chats/group", {"title": title, "members": members}, page="/chats/new-group")
    assert r.status_code == 303, await r.get_data(as_text=True)
    return conversation_id_of(r.headers["Location"])


@pytest.fixture
async def ward(login_as: Any, make_user: Any) -> Client:
    """alice, who looks; seven colleagues in three departments (and no department)."""
    alice = await login_as("alice", display_name="Alice Adams")
    for username, name, department, job in (
        ("bmensah", "Ben Mensah", "Radiology", "Radiographer"),
        ("cdiaz", "Carla Diaz", "Intensive Care", "Charge Nurse"),
        ("dold", "Dora Old", "Radiology", "Porter"),
        ("eng", "Eli Ng", "Radiology", "Radiologist"),
        ("fkhan", "Farah Khan", "Radiology", "Radiographer"),
        ("gli", "Gao Li", "Pharmacy", "Pharmacist"),
        ("hnone", "Hana None", "", "Locum"),
    ):
        await make_user(username, name, department=department, job_title=job)
    return alice


async def test_search_matches_name_username_department_and_job_title(ward: Client) -> None:
    async def found(q: str) -> list[str]:
        return usernames(await page_html(ward, f"/directory?q={q}"))

    assert await found("mensah") == ["bmensah"]  # name
    assert await found("DOLD") == ["dold"]  # username, any case
    assert await found("intensive") == ["cdiaz"]  # department
    assert await found("pharmacist") == ["gli"]  # job title
    assert await found("radiology+porter") == ["dold"]  # every word, in any field
    assert await found("%25") == []  # a LIKE wildcard typed is a character
    assert "Nobody matches “<bdi>zzz</bdi>”" in await page_html(ward, "/directory?q=zzz")
    # A NUL or a lone surrogate is no 500 (PostgreSQL refuses a NUL in a string).
    assert (await ward.get("/directory?q=%00")).status_code == 200
    assert (await ward.get("/directory?q=%ED%A0%80")).status_code == 200


async def test_department_filter_offers_the_departments_that_exist(ward: Client) -> None:
    html = await page_html(ward, "/directory")
    options = re.findall(r'<option value="([^"]*)"', html)
    assert options == ["", "Cardiology", "Intensive Care", "Pharmacy", "Radiology"]  # alice is in Cardiology
    html = await page_html(ward, "/directory?department=Pharmacy")
    assert usernames(html) == ["gli"]
    assert '<option value="Pharmacy" selected>' in html
    html = await page_html(ward, "/directory?q=radiographer&department=Radiology")
    assert usernames(html) == ["bmensah", "fkhan"]
    assert usernames(await page_html(ward, "/directory?q=porter&department=Pharmacy")) == []
    for bad in ("Nowhere", "radiology", "%00", "x" * 300):
        r = await ward.get(f"/directory?department={bad}")
        assert r.status_code == 400, bad
        assert "no such department" in await r.get_data(as_text=True)


async def test_pages_keep_the_query_and_the_filter(ward: Client) -> None:
    html = await page_html(ward, "/directory?department=Radiology")
    # Four in Radiology, three a page, by name.
    assert usernames(html) == ["bmensah", "dold", "eng"]
    assert link(html, "prev") is None
    following = link(html, "next")
    assert following and parse_qs(urlsplit(following).query) == {"department": ["Radiology"], "page": ["2"]}
    html = await page_html(ward, following)
    assert usernames(html) == ["fkhan"] and link(html, "next") is None
    assert link(html, "prev") == "/directory?department=Radiology"
    # A search and a filter together travel in both links.
    html = await page_html(ward, "/directory?q=a")  # everyone with an "a" somewhere
    first = usernames(html)
    assert len(first) == 3
    following = link(html, "next")
    assert following and parse_qs(urlsplit(following).query) == {"q": ["a"], "page": ["2"]}
    second = usernames(await page_html(ward, following))
    assert second and not set(first) & set(second)
    # Past the last page: nothing, and the way back.
    html = await page_html(ward, "/directory?department=Radiology&page=9")
    assert usernames(html) == [] and "No more colleagues match." in html
    assert link(html, "prev") == "/directory?department=Radiology&page=8"


@pytest.mark.parametrize("path", ["/directory", "/chats/new-group", "/chats/{conv}/info"])
async def test_bad_page_numbers_are_400(ward: Client, path: str) -> None:
    conv = await create_group(ward, "Ward 7", ["bmensah"])
    url = path.format(conv=conv)
    for label, encoded in [*BAD_IDS, ("zero", "0")]:
        r = await ward.get(f"{url}?page={encoded}")
        assert r.status_code == 400, (label, r.status_code)
    r = await ward.get(f"{url}?page=1001")  # pages are bounded
    assert r.status_code == 400
    assert (await ward.get(f"{url}?page=1000")).status_code == 200


async def test_presence_shows_only_for_people_who_share_it_with_me(ward: Client, svc: Services, make_user: Any, login_as: Any) -> None:
    ids = {name: await user_id(svc, name) for name in ("bmensah", "cdiaz", "dold", "eng", "fkhan")}
    await ward.submit("/chats/direct", {"username": "bmensah"}, page="/directory")  # a direct chat
    await create_group(ward, "Small", ["cdiaz", "dold"])  # three members: presence is shared
    await create_group(ward, "Big", ["eng", "fkhan", "gli"])  # four: above PRESENCE_MAX_GROUP
    # Everyone has been and gone; bmensah is online now.
    for uid in ids.values():
        await presence.announce_presence(svc, uid, True, origin="test")
        await presence.announce_presence(svc, uid, False, origin="test")
    await presence.announce_presence(svc, ids["bmensah"], True, origin="test")
    shown = entries(await page_html(ward, "/directory?department=Radiology"))
    shown |= entries(await page_html(ward, "/directory?department=Radiology&page=2"))
    shown |= entries(await page_html(ward, "/directory?q=carla"))
    assert '<span class="presence online">online</span>' in shown["bmensah"]
    assert "last seen" not in shown["bmensah"]
    assert re.search(r'<span class="presence">last seen [^<]+</span>', shown["cdiaz"])
    assert re.search(r'<span class="presence">last seen [^<]+</span>', shown["dold"])
    # Only in a big group with me: not online, no last seen, not even the markup.
    for name in ("eng", "fkhan"):
        assert "presence" not in shown[name] and "last seen" not in shown[name] and "online" not in shown[name]
    # Neither for someone I share nothing with, though they are online now.
    await presence.announce_presence(svc, await user_id(svc, "hnone"), True, origin="test")
    assert "presence" not in entries(await page_html(ward, "/directory?q=hana"))["hnone"]
    # The tick lists follow the same rule.
    html = await page_html(ward, "/chats/new-group?department=Radiology")
    assert html.count('class="presence') == 2  # bmensah online, dold last seen; eng not


async def test_new_group_pages_keep_the_title_and_the_ticks(ward: Client) -> None:
    html = await page_html(ward, "/chats/new-group?department=Radiology")
    assert listed(html, "members") == ["bmensah", "dold", "eng"]
    assert re.search(r'<button type="submit" form="new-group-form" formaction="/chats/new-group" formnovalidate name="page" value="2">Next</button>', html)
    # Next, with gli (pharmacy) ticked: he stays, above page 2.
    r = await ward.submit("/chats/new-group", {"title": "Scans", "members": ["gli"], "department": "Radiology", "page": "2"}, page="/chats/new-group")
    html = await r.get_data(as_text=True)
    assert r.status_code == 200 and 'value="Scans"' in html
    assert ticked(html, "members") == ["gli"] and listed(html, "members") == ["gli", "fkhan"]
    assert re.search(r'name="page" value="1">Previous</button>', html) and ">Next</button>" not in html
    # Someone ticked is on no page: dold ticked, Radiology fits one page again.
    r = await ward.submit("/chats/new-group", {"title": "Scans", "members": ["gli", "dold"], "department": "Radiology"}, page="/chats/new-group")
    html = await r.get_data(as_text=True)
    assert ticked(html, "members") == ["dold", "gli"] and listed(html, "members") == ["dold", "gli", "bmensah", "eng", "fkhan"]
    assert ">Next</button>" not in html
    made = await ward.submit("/chats/group", {"title": "Scans", "members": ["gli", "dold", "fkhan"], "department": "Radiology"}, page="/chats/new-group")
    assert made.status_code == 303


async def test_add_members_by_ticking_them_on_the_group_page(ward: Client, svc: Services) -> None:
    conv = await create_group(ward, "Ward 7", ["bmensah"])
    info = f"/chats/{conv}/info"
    html = await page_html(ward, f"{info}?department=Radiology")
    assert "Add by username" not in html
    # Members are shown as members, without a box to tick; the others can be ticked.
    assert listed(html, "username") == ["dold", "eng"]
    assert re.search(r'<input type="checkbox" id="pick-\d+" checked disabled> <label for="pick-\d+"><bdi dir="auto">Ben Mensah</bdi></label>.*?<span class="tag">member</span>', html)
    assert f'<form method="post" action="/chats/{conv}/members" class="stack" id="add-members-form">' in html
    assert re.search(rf'<button type="submit" form="add-members-form" formaction="/chats/{conv}/info" formnovalidate>Filter</button>', html)
    # Tick dold, filter for the pharmacy: dold stays ticked above gli.
    r = await ward.submit(info, {"username": ["dold"], "q": "", "department": "Pharmacy"}, page=info)
    html = await r.get_data(as_text=True)
    assert r.status_code == 200
    assert ticked(html, "username") == ["dold"] and listed(html, "username") == ["dold", "gli"]
    assert '<option value="Pharmacy" selected>' in html
    # Back to Radiology with both ticked: dold is not repeated below, bmensah is a member.
    r = await ward.submit(info, {"username": ["dold", "gli"], "department": "Radiology"}, page=info)
    html = await r.get_data(as_text=True)
    assert ticked(html, "username") == ["dold", "gli"] and listed(html, "username") == ["dold", "gli", "eng", "fkhan"]
    # Add: both join; the page then shows them as members.
    r = await ward.submit(f"/chats/{conv}/members", {"username": ["dold", "gli"], "department": "Radiology"}, page=info)
    assert r.status_code == 303 and r.headers["Location"] == info
    html = await page_html(ward, info)
    assert "<h2>4 members</h2>" in html
    assert "dold" not in listed(html, "username") and "gli" not in listed(html, "username")
    # Nothing ticked: the page again, saying so.
    r = await ward.submit(f"/chats/{conv}/members", {"q": "eli"}, page=info)
    assert r.status_code == 400
    html = await r.get_data(as_text=True)
    assert "Tick the colleagues to add first." in html and listed(html, "username") == ["eng"]
    assert (await ward.get(f"{info}?department=Nowhere")).status_code == 400


async def test_only_group_admins_see_the_list_to_add_from(ward: Client, login_as: Any) -> None:
    conv = await create_group(ward, "Ward 7", ["bmensah"])
    ben = await login_as("bmensah")
    html = await page_html(ben, f"/chats/{conv}/info")
    assert "add-members-form" not in html and checkboxes(html, "username") == []
    r = await ben.submit(f"/chats/{conv}/info", {"username": ["dold"]}, page=f"/chats/{conv}/info")
    assert r.status_code == 200 and "add-members-form" not in await r.get_data(as_text=True)
