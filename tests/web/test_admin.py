"""Administrators: staff accounts, roles and the audit log; members are kept out."""

from __future__ import annotations

import html as htmllib
import re
from dataclasses import replace
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import select

from app.services import Services
from app.store.models import AuditEntry
from app.store.staff import user_row_by_username
from tests.helpers import conversation_id_of, error_text, fill, hidden, http_rules, new_id, snapshot, user_id
from tests.support import Client

pytestmark = pytest.mark.usefixtures("database_kind")

ADMIN_RULES = [(rule, method) for rule, method in http_rules() if rule.startswith("/admin")]
NEW_PASSWORD = "lantern orchard velvet quarry"


def audit_rows(html: str) -> list[dict[str, str]]:
    table = html.split('<table class="table audit">', 1)[1]
    out = []
    for row in re.findall(r"<tr>(<td.*?</td>)</tr>", table, re.S):
        cells = [htmllib.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        if len(cells) == 7:
            out.append(dict(zip(("at", "action", "who", "whom", "chat", "ip", "detail"), cells, strict=True)))
    return out



async def create_staff(admin: Client, **fields: str) -> Any:
    form = {"username": "", "display_name": "", "department": "", "job_title": "", "role": "member", **fields}
    return await admin.submit("/admin/staff", form, page="/admin/staff")


# --- members are kept out -----------------------------------------------------------------


@pytest.mark.parametrize(("rule", "method"), ADMIN_RULES)
async def test_members_get_403_on_admin_pages(login_as: Any, svc: Services, rule: str, method: str) -> None:
    await login_as("root", admin=True)
    bob = await login_as("bob")
    path = fill(rule, {"user_id": await user_id(svc, "root")})
    before = await snapshot(svc)
    if method == "GET":
        r = await bob.get(path)
    else:
        token = await bob.csrf("/chats")
        form = {"csrf_token": token, "username": "sneaky", "display_name": "Sneaky", "role": "admin"}
        r = await bob.raw.open(path, method=method, form=form, scheme="https")
    assert r.status_code == 403, (path, r.status_code)
    assert "Not allowed" in await r.get_data(as_text=True)
    assert await snapshot(svc) == before


async def test_admin_rules_exist() -> None:
    assert ("/admin/audit", "GET") in ADMIN_RULES
    assert ("/admin/staff", "POST") in ADMIN_RULES


async def test_members_see_no_admin_links(login_as: Any) -> None:
    bob = await login_as("bob")
    html = await (await bob.get("/chats")).get_data(as_text=True)
    assert "/admin/" not in html
    root = await login_as("root", admin=True)
    assert "/admin/audit" in await (await root.get("/chats")).get_data(as_text=True)


# --- staff accounts -----------------------------------------------------------------------


async def test_create_staff_gives_an_invite_link(app: Quart, login_as: Any, svc: Services) -> None:
    root = await login_as("root", admin=True)
    r = await create_staff(root, username="Carol.Jones", display_name="Carol Jones", department="ICU", job_title="Doctor")
    assert r.status_code == 200
    html = await r.get_data(as_text=True)
    link = re.search(r'href="(https://localhost:8443/invite/[A-Za-z0-9_-]+)"', html)
    assert link, html
    async with svc.db.reading() as s:
        row = await user_row_by_username(s, "carol.jones")
        assert row is not None and row.password_hash is None and row.role == "member"
    listing = await (await root.get("/admin/staff")).get_data(as_text=True)
    assert "invited" in listing
    path = link.group(1).removeprefix("https://localhost:8443")
    carol = Client(app)
    r = await carol.submit(path, {"password": NEW_PASSWORD, "password2": NEW_PASSWORD}, page=path)
    assert r.status_code == 303
    assert (await carol.get("/chats")).status_code == 200  # signed in by the link
    assert (await Client(app).submit("/login", {"username": "carol.jones", "password": NEW_PASSWORD}, page="/login")).status_code == 303


async def test_invite_link_uses_public_url(app: Quart, login_as: Any, svc: Services) -> None:
    svc.settings = replace(svc.settings, public_url="https://medchat.hospital.example", allowed_hosts=("localhost",))  # the test client's Host
    root = await login_as("root", admin=True)
    r = await create_staff(root, username="dan", display_name="Dan Ode")
    assert "https://medchat.hospital.example/invite/" in await r.get_data(as_text=True)


async def test_links_never_take_the_requests_host(login_as: Any) -> None:
    """With the default PUBLIC_URL a link names it, never a Host header; a forged Host is 400."""
    root = await login_as("root", admin=True)
    r = await create_staff(root, username="erin", display_name="Erin Oak")
    assert "https://localhost:8443/invite/" in await r.get_data(as_text=True)
    page = await root.get("/admin/staff")
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.get_data(as_text=True))
    assert token
    forged = await root.post(
        "/admin/staff", form={"csrf_token": token.group(1), "username": "fay", "display_name": "Fay Ash", "role": "member"},
        headers={"Host": "phish.example", "Sec-Fetch-Site": "same-origin"},
    )
    assert forged.status_code == 400
    assert "phish.example" not in await forged.get_data(as_text=True)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"username": "a", "display_name": "A"}, "username"),
        ({"username": "has space", "display_name": "A B"}, "username"),
        ({"username": "<script>", "display_name": "A B"}, "username"),
        ({"username": "okname", "display_name": "   "}, "display name"),
        ({"username": "okname", "display_name": "Two\tlines"}, "display name"),
        ({"username": "okname", "display_name": "Ok", "role": "superuser"}, "role"),
        ({"username": "root", "display_name": "Root Again"}, "taken"),
    ],
)
async def test_create_staff_refuses_bad_fields(login_as: Any, svc: Services, fields: dict[str, str], problem: str) -> None:
    root = await login_as("root", admin=True)
    before = await snapshot(svc, skip=("audit_log",))
    r = await create_staff(root, **fields)
    assert r.status_code == 400
    html = await r.get_data(as_text=True)
    assert problem in error_text(html).lower()
    assert f'value="{htmllib.escape(fields["username"])}"' in html  # what was typed is kept
    assert await snapshot(svc, skip=("audit_log",)) == before


async def test_change_role(login_as: Any, svc: Services) -> None:
    root = await login_as("root", admin=True)
    bob = await login_as("bob")
    bob_id = await user_id(svc, "bob")
    assert (await bob.get("/admin/staff")).status_code == 403
    r = await root.submit(f"/admin/staff/{bob_id}/role", {"role": "admin"}, page=f"/admin/staff/{bob_id}")
    assert r.status_code == 303
    assert (await bob.get("/admin/staff")).status_code == 200  # the role counts from the next request
    r = await root.submit(f"/admin/staff/{bob_id}/role", {"role": "emperor"}, page=f"/admin/staff/{bob_id}")
    assert r.status_code == 400


async def test_last_admin_stays(login_as: Any, svc: Services) -> None:
    root = await login_as("root", admin=True)
    root_id = await user_id(svc, "root")
    r = await root.submit(f"/admin/staff/{root_id}/role", {"role": "member"}, page=f"/admin/staff/{root_id}")
    assert r.status_code == 400
    assert "last active administrator" in error_text(await r.get_data(as_text=True))
    r = await root.submit(f"/admin/staff/{root_id}/deactivate", {}, page=f"/admin/staff/{root_id}")
    assert r.status_code == 400
    assert (await root.get("/admin/staff")).status_code == 200


async def test_unknown_account_is_404(login_as: Any) -> None:
    root = await login_as("root", admin=True)
    assert (await root.get("/admin/staff/424242")).status_code == 404
    r = await root.submit("/admin/staff/424242/deactivate", {}, page="/admin/staff")
    assert r.status_code == 404


async def test_staff_search(login_as: Any, make_user: Any) -> None:
    root = await login_as("root", admin=True)
    await make_user("ben", "Ben Mensah", department="Radiology")
    await make_user("cat", "Cat Diaz", department="ICU")
    html = await (await root.get("/admin/staff?q=radio")).get_data(as_text=True)
    assert "Ben Mensah" in html and "Cat Diaz" not in html


# --- the audit log ------------------------------------------------------------------------


async def test_audit_shows_what_happened(app: Quart, login_as: Any, svc: Services) -> None:
    root = await login_as("root", admin=True)
    alice = await login_as("alice")
    await login_as("bob")
    stranger = Client(app)
    await stranger.submit("/login", {"username": "alice", "password": "not her password"}, page="/login")
    r = await alice.submit("/chats/group", {"title": "Ward 7", "members": ["bob"]}, page="/chats/new-group")
    conv = conversation_id_of(r.headers["Location"])
    await login_as("carol")
    await alice.submit(f"/chats/{conv}/members", {"username": "carol"}, page=f"/chats/{conv}/info")
    await alice.submit("/logout", {})
    await create_staff(root, username="dave", display_name="Dave Dunn")

    rows = audit_rows(await (await root.get("/admin/audit")).get_data(as_text=True))
    actions = {r["action"] for r in rows}
    for expected in ("login", "login_failed", "logout", "account_created", "group_created", "member_added"):
        assert expected in actions, expected
    added = next(r for r in rows if r["action"] == "member_added")
    assert added["who"] == "alice" and added["whom"] == "carol" and added["chat"] == str(conv)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", added["at"])
    assert rows == sorted(rows, key=lambda r: r["at"], reverse=True)

    only_failures = audit_rows(await (await root.get("/admin/audit?action=login_failed")).get_data(as_text=True))
    assert only_failures and {r["action"] for r in only_failures} == {"login_failed"}
    only_alice = audit_rows(await (await root.get("/admin/audit?user=alice")).get_data(as_text=True))
    assert only_alice and all("alice" in (r["who"], r["whom"]) for r in only_alice)
    assert {"login", "logout", "login_failed", "member_added"} <= {r["action"] for r in only_alice}
    both = audit_rows(await (await root.get("/admin/audit?user=alice&action=logout")).get_data(as_text=True))
    assert [r["action"] for r in both] == ["logout"]
    # An unknown action filter shows everything rather than failing.
    assert audit_rows(await (await root.get("/admin/audit?action=drop+table")).get_data(as_text=True))


async def test_audit_date_filter_and_paging(login_as: Any, svc: Services, clock: Any) -> None:
    root = await login_as("root", admin=True)
    clock.advance(3 * 24 * 3600)  # 2026-01-08
    root = await login_as("root")
    html = await (await root.get("/admin/audit?since=2026-01-08")).get_data(as_text=True)
    rows = audit_rows(html)
    assert rows and all(r["at"].startswith("2026-01-08") for r in rows)
    rows = audit_rows(await (await root.get("/admin/audit?until=2026-01-05")).get_data(as_text=True))
    assert rows and all(r["at"].startswith("2026-01-05") for r in rows)
    assert (await root.get("/admin/audit?since=garbage")).status_code == 200  # a bad date is no filter
    assert (await root.get("/admin/audit?before=xyz")).status_code == 400  # ids: tests/web/test_id_arguments.py
    # Keyset paging: more than 100 entries show an "Older entries" link.
    from app.actions import audit
    from app.vocab import AuditAction

    for i in range(120):
        await audit.record_alone(svc, None, AuditAction.CSRF_REFUSED, detail=f"test {i}")
    html = await (await root.get("/admin/audit")).get_data(as_text=True)
    assert len(audit_rows(html)) == 100
    older = htmllib.unescape(re.search(r'<a href="([^"]+)">Older entries</a>', html).group(1))  # type: ignore[union-attr]
    rest = audit_rows(await (await root.get(older)).get_data(as_text=True))
    assert rest and len(rest) < 100


async def test_audit_never_holds_message_text_passwords_or_tokens(app: Quart, login_as: Any, svc: Services) -> None:
    root = await login_as("root", admin=True)
    alice = await login_as("alice")
    await login_as("bob")
    body_marker = "ZEBRA-" + new_id()
    password_marker = "pw-" + new_id()
    r = await alice.submit("/chats/direct", {"username": "bob"}, page="/directory")
    conv = conversation_id_of(r.headers["Location"])
    html = await (await alice.get(f"/chats/{conv}")).get_data(as_text=True)
    form = {"body": f"potassium {body_marker}", "client_msg_id": hidden(html, "client_msg_id"), "csrf_token": hidden(html, "csrf_token")}
    assert (await alice.post(f"/chats/{conv}/messages", form=form)).status_code == 303
    # A refused body, a failed login, a forged post and a reset link: none leaves its secret behind.
    form["client_msg_id"] = new_id()
    form["body"] = body_marker + "\x00"
    await alice.post(f"/chats/{conv}/messages", form=form)
    await Client(app).submit("/login", {"username": "alice", "password": password_marker}, page="/login")
    await Client(app).submit("/login", {"username": password_marker, "password": password_marker}, page="/login")
    await alice.post(f"/chats/{conv}/messages", form={"body": body_marker, "client_msg_id": new_id()})
    bob_id = (await user_id(svc, "bob"))
    r = await root.submit(f"/admin/staff/{bob_id}/reset", {}, page=f"/admin/staff/{bob_id}")
    token = re.search(r"/invite/([A-Za-z0-9_-]+)", await r.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    async with svc.db.reading() as s:
        entries = list((await s.execute(select(AuditEntry))).scalars())
    assert len(entries) > 5
    for e in entries:
        everything = " ".join(str(v) for v in (e.action, e.actor_name, e.ip, e.detail))
        assert body_marker not in everything and "potassium" not in everything
        assert password_marker not in everything
        assert token not in everything
        assert "correct horse" not in everything
    page = await (await root.get("/admin/audit")).get_data(as_text=True)
    assert body_marker not in page and password_marker not in page and token not in page


# --- locked accounts ----------------------------------------------------------------------


async def test_admin_sees_a_lockout_and_unlocks_it(app: Quart, login_as: Any, make_user: Any, svc: Services) -> None:
    root = await login_as("root", admin=True)
    await make_user("bob", "Bob Brown")
    bob_id = await user_id(svc, "bob")
    stranger = Client(app)
    for _ in range(5):
        await stranger.submit("/login", {"username": "bob", "password": "not his password"}, page="/login")
    listing = await (await root.get("/admin/staff")).get_data(as_text=True)
    assert "locked until 2026-01-05 09:01:00 UTC" in listing
    detail = await (await root.get(f"/admin/staff/{bob_id}")).get_data(as_text=True)
    assert "locked until 2026-01-05 09:01:00 UTC" in detail
    assert f"/admin/staff/{bob_id}/unlock" in detail
    assert (await Client(app).login("bob")).status_code == 400  # locked: the right password fails
    r = await root.submit(f"/admin/staff/{bob_id}/unlock", {}, page=f"/admin/staff/{bob_id}")
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/admin/staff/{bob_id}")
    detail = await (await root.get(f"/admin/staff/{bob_id}")).get_data(as_text=True)
    assert "locked until" not in detail and "/unlock" not in detail
    assert "locked until" not in await (await root.get("/admin/staff")).get_data(as_text=True)
    assert (await Client(app).login("bob")).status_code == 303
    rows = audit_rows(await (await root.get("/admin/audit?action=account_unlocked")).get_data(as_text=True))
    assert [(r["action"], r["who"], r["whom"]) for r in rows] == [("account_unlocked", "root", "bob")]


async def test_unlock_needs_a_csrf_token(login_as: Any, make_user: Any, svc: Services, app: Quart) -> None:
    root = await login_as("root", admin=True)
    await make_user("bob")
    for _ in range(5):
        await Client(app).submit("/login", {"username": "bob", "password": "not his password"}, page="/login")
    bob_id = await user_id(svc, "bob")
    before = await snapshot(svc, skip=("audit_log",))
    r = await root.post(f"/admin/staff/{bob_id}/unlock", form={})
    assert r.status_code == 403
    assert await snapshot(svc, skip=("audit_log",)) == before


def test_every_audit_action_written_is_one_the_filter_offers() -> None:
    """The store accepts only AuditAction (mypy holds every caller to it); the audit page's
    filter lists exactly those, so no entry can be written that the admin cannot find."""
    import ast
    from pathlib import Path

    from app.vocab import AuditAction
    from app.web.admin import AUDIT_ACTIONS

    assert list(AUDIT_ACTIONS) == list(AuditAction)
    written: set[str] = set()
    for path in Path("app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "AuditAction":
                written.add(node.attr)
    assert written <= {a.name for a in AuditAction}
    # Every action is written somewhere (none is a dead filter entry).
    assert {a.name for a in AuditAction} <= written
