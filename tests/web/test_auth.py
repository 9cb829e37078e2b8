"""Login, logout, sessions (idle, lifetime, revocation), setup and invite links."""

from __future__ import annotations

import re
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import select

from app.actions.accounts import do_issue_setup_link
from app.lib.clock import FrozenClock
from app.lib.timefmt import display_zone, when_label
from app.services import Services
from app.store.models import AuditEntry
from app.store.staff import user_row_by_username
from tests.helpers import error_text, fill, hidden, http_rules, is_public, new_id, snapshot
from tests.support import PASSWORD, Client

pytestmark = pytest.mark.usefixtures("database_kind")

SESSION_COOKIE = "__Host-medchat_session"
NEW_PASSWORD = "lantern orchard velvet quarry"

# The no-JS message frame cannot show a login page (it refuses to be framed): it answers
# with a signed-out note instead (tests/web/test_chats.py, the pane tests).
FRAMED = {"/chats/<int:conversation_id>/pane"}
PROTECTED = [(rule, method) for rule, method in http_rules() if not is_public(rule) and rule not in FRAMED]


def session_cookie(client: Client) -> str | None:
    assert client.raw.cookie_jar is not None
    return next((c.value for c in client.raw.cookie_jar if c.name == SESSION_COOKIE), None)


def with_cookie(app: Quart, value: str) -> Client:
    """A fresh browser that presents an old session cookie."""
    c = Client(app)
    c.raw.set_cookie("localhost", SESSION_COOKIE, value, secure=True, httponly=True)
    return c


def goes_to_login(response: Any) -> bool:
    return response.status_code in (302, 303) and re.sub(r"^https?://[^/]+", "", response.headers["Location"]).startswith("/login")


async def audit_actions(svc: Services) -> list[tuple[str, str, str]]:
    from app.store import audit

    async with svc.db.reading() as s:
        return [(r.action, r.actor_name, r.detail) for r in await audit.entries(s, limit=1000)]


@pytest.fixture
async def url_values(login_as: Any, svc: Services) -> dict[str, Any]:
    """Real ids for every URL parameter: a group with a message, a member, a session."""
    alice = await login_as("alice")
    await login_as("bob")
    r = await alice.submit("/chats/group", {"title": "Ward 7", "members": ["bob"]})
    assert r.status_code == 303
    conv_id = int(re.search(r"/chats/(\d+)", r.headers["Location"]).group(1))  # type: ignore[union-attr]
    page = await alice.get(f"/chats/{conv_id}")
    html = await page.get_data(as_text=True)
    cid = re.search(r'name="client_msg_id" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    r = await alice.submit(f"/chats/{conv_id}/messages", {"body": "hello ward", "client_msg_id": cid}, page=f"/chats/{conv_id}")
    assert r.status_code == 303
    async with svc.db.reading() as s:
        bob = await user_row_by_username(s, "bob")
        assert bob is not None
        from app.store.sessions import open_sessions

        sessions = await open_sessions(s, bob.id)
    return {"conversation_id": conv_id, "user_id": bob.id, "session_id": sessions[0].id, "message_id": 1}


# --- every protected URL sends an anonymous visitor to login ------------------------------


@pytest.mark.parametrize(("rule", "method"), [p for p in PROTECTED if p[1] == "GET"])
async def test_login_required_get(app: Quart, url_values: dict[str, Any], rule: str, method: str) -> None:
    anonymous = Client(app)
    response = await anonymous.get(fill(rule, url_values))
    assert goes_to_login(response), (rule, response.status_code)


@pytest.mark.parametrize(("rule", "method"), [p for p in PROTECTED if p[1] != "GET"])
async def test_login_required_post_changes_nothing(app: Quart, svc: Services, url_values: dict[str, Any], rule: str, method: str) -> None:
    anonymous = Client(app)
    token = await anonymous.csrf("/login")  # a valid token for this (anonymous) browser
    before = await snapshot(svc)
    form = {
        "csrf_token": token, "body": "anonymous text", "client_msg_id": new_id(), "title": "Taken over",
        "username": "alice", "members": "alice", "role": "admin", "display_name": "X",
    }
    # The token as a form field and as the header uploads carry it in (app/web/files.py).
    response = await anonymous.raw.open(fill(rule, url_values), method=method, form=form, scheme="https", headers={"X-CSRF-Token": token})
    assert goes_to_login(response), (rule, response.status_code, await response.get_data(as_text=True))
    assert await snapshot(svc) == before


def test_public_rules_are_known() -> None:
    """The anonymous-access tests cover something: the map has protected GET and POST rules."""
    methods = {m for _, m in PROTECTED}
    assert {"GET", "POST"} <= methods
    assert ("/chats/<int:conversation_id>/messages", "POST") in PROTECTED


# --- login -------------------------------------------------------------------------------


async def test_unknown_user_and_wrong_password_look_the_same(client: Client, make_user: Any, svc: Services) -> None:
    await make_user("alice")
    wrong = await client.submit("/login", {"username": "alice", "password": "not the password at all"}, page="/login")
    unknown = await client.submit("/login", {"username": "nobody", "password": "not the password at all"}, page="/login")
    assert wrong.status_code == unknown.status_code == 400
    wrong_html = await wrong.get_data(as_text=True)
    unknown_html = await unknown.get_data(as_text=True)
    assert error_text(wrong_html) == error_text(unknown_html)
    assert wrong_html.replace('value="alice"', 'value="X"') == unknown_html.replace('value="nobody"', 'value="X"')
    assert session_cookie(client) is None
    actions = [a for a, _, _ in await audit_actions(svc)]
    assert actions.count("login_failed") == 2


async def test_login_success_and_audit(client: Client, make_user: Any, svc: Services) -> None:
    await make_user("alice")
    r = await client.login("alice")
    assert r.status_code == 303
    assert r.headers["Location"].endswith("/chats")
    assert session_cookie(client)
    page = await client.get("/chats")
    assert page.status_code == 200
    assert ("login", "alice", "") in await audit_actions(svc)


async def test_login_next_is_local_only(client: Client, make_user: Any) -> None:
    await make_user("alice")
    r = await client.submit("/login", {"username": "alice", "password": PASSWORD, "next": "https://evil.example/x"}, page="/login")
    assert r.status_code == 303
    assert r.headers["Location"] == "/chats"
    r = await client.submit("/login", {"username": "alice", "password": PASSWORD, "next": "/directory?q=a"}, page="/chats")
    assert r.headers["Location"] == "/directory?q=a"


async def test_login_next_drops_the_automatic_refresh_parameters(client: Client, make_user: Any) -> None:
    """A no-JS page that refreshed itself into the login page (``?auto=1&n=3``) must not send
    the person on to a URL that marks nothing read: ``auto`` and ``n`` go, the rest stays."""
    await make_user("alice")
    first = await client.get("/chats/7?auto=1&n=3&before=40")
    assert goes_to_login(first)
    form_page = await client.get(first.headers["Location"])
    html = await form_page.get_data(as_text=True)
    assert 'name="next" value="/chats/7?before=40"' in html
    r = await client.submit("/login", {"username": "alice", "password": PASSWORD, "next": "/chats/7?auto=1&n=3&before=40#bottom"}, page="/login")
    assert r.headers["Location"] == "/chats/7?before=40#bottom"
    r = await client.get("/login", query_string={"next": "/chats?auto=1"})
    assert r.headers["Location"] == "/chats"
    r = await client.get("/login", query_string={"next": "/directory?q=auto%3D1&auto=1"})
    assert r.headers["Location"] == "/directory?q=auto%3D1"


NASTY_NEXT = ["https://evil.example/", "//evil.example", "/\\evil.example", "/\t/evil.example", "/\n/evil.example", "/\r\n/x", " /x", "/\x00/x", "javascript:alert(1)"]


@pytest.mark.parametrize("target", NASTY_NEXT)
async def test_login_never_redirects_off_site(client: Client, make_user: Any, target: str) -> None:
    await make_user("alice")
    r = await client.submit("/login", {"username": "alice", "password": PASSWORD, "next": target}, page="/login")
    assert r.status_code == 303
    assert r.headers["Location"] == "/chats"
    # Logged in, GET /login?next=... redirects at once: the same rule applies.
    r = await client.get("/login", query_string={"next": target})
    assert r.status_code in (302, 303)
    assert r.headers["Location"] == "/chats"


async def test_login_rate_limit_per_address(app: Quart, make_user: Any, svc: Services) -> None:
    await make_user("alice")
    c = Client(app)
    token = await c.csrf("/login")
    here = {"client": ("203.0.113.7", 40000)}
    statuses = []
    for _ in range(11):
        r = await c.raw.post("/login", form={"csrf_token": token, "username": "ghost", "password": "x" * 12}, scheme="https", scope_base=here)
        statuses.append(r.status_code)
    assert statuses[:10] == [400] * 10
    assert statuses[10] == 429
    html = await r.get_data(as_text=True)
    assert "Too many attempts" in html
    assert "Retry-After" in r.headers
    assert any(a == "rate_limited" for a, _, _ in await audit_actions(svc))
    # Another address is not affected.
    other = await c.raw.post("/login", form={"csrf_token": token, "username": "alice", "password": PASSWORD}, scheme="https", scope_base={"client": ("198.51.100.9", 40000)})
    assert other.status_code == 303


async def test_x_forwarded_for_is_ignored_without_trusted_proxy(app: Quart, make_user: Any) -> None:
    c = Client(app)
    token = await c.csrf("/login")
    here = {"client": ("203.0.113.8", 40000)}
    statuses = []
    for i in range(11):
        r = await c.raw.post(
            "/login", form={"csrf_token": token, "username": "ghost", "password": "x" * 12}, scheme="https",
            scope_base=here, headers={"X-Forwarded-For": f"10.0.0.{i}"},
        )
        statuses.append(r.status_code)
    assert statuses[10] == 429


async def test_lockout_after_five_failures(client: Client, make_user: Any, svc: Services, clock: FrozenClock) -> None:
    await make_user("alice")
    for _ in range(5):
        r = await client.submit("/login", {"username": "alice", "password": "wrong password here"}, page="/login")
        assert r.status_code == 400
    locked = await client.login("alice")
    assert locked.status_code == 400, "the right password must fail while locked"
    assert session_cookie(client) is None
    entries = await audit_actions(svc)
    assert any(a == "account_locked" and n == "alice" for a, n, _ in entries)
    # The page for a locked account says the same as for a wrong password.
    wrong = await client.submit("/login", {"username": "nobody", "password": "wrong password here"}, page="/login")
    assert error_text(await locked.get_data(as_text=True)) == error_text(await wrong.get_data(as_text=True))
    clock.advance(61)
    r = await client.login("alice")
    assert r.status_code == 303
    assert (await client.get("/chats")).status_code == 200


async def test_new_session_id_at_every_login(client: Client, make_user: Any, svc: Services) -> None:
    await make_user("alice")
    await client.login("alice")
    first = session_cookie(client)
    r = await client.submit("/login", {"username": "alice", "password": PASSWORD}, page="/chats")  # logging in again
    assert r.status_code == 303
    second = session_cookie(client)
    assert first and second and first != second
    other = Client(client.app)
    await other.login("alice")
    assert session_cookie(other) not in (first, second)


async def test_session_cookie_flags(client: Client, make_user: Any) -> None:
    await make_user("alice")
    r = await client.login("alice")
    cookie = next(v for v in r.headers.get_all("Set-Cookie") if v.startswith(SESSION_COOKIE + "="))
    lowered = cookie.lower()
    assert "secure" in lowered and "httponly" in lowered and "samesite=lax" in lowered and "path=/" in lowered
    assert "domain=" not in lowered
    # The CSRF seed cookie is just as guarded.
    fresh = await Client(client.app).get("/login")
    seed = next(v for v in fresh.headers.get_all("Set-Cookie") if v.startswith("__Host-medchat_csrf="))
    assert all(flag in seed.lower() for flag in ("secure", "httponly", "samesite=lax", "path=/"))


async def test_logout_ends_the_session_server_side(app: Quart, login_as: Any, svc: Services) -> None:
    alice = await login_as("alice")
    old = session_cookie(alice)
    assert old
    r = await alice.submit("/logout", {})
    assert r.status_code == 303
    assert "/login" in r.headers["Location"]
    assert "Clear-Site-Data" in r.headers
    assert '"cookies"' in r.headers["Clear-Site-Data"]
    assert goes_to_login(await alice.get("/chats"))
    replay = with_cookie(app, old)
    assert goes_to_login(await replay.get("/chats"))
    assert any(a == "logout" for a, _, _ in await audit_actions(svc))


async def test_idle_timeout(login_as: Any, clock: FrozenClock, svc: Services) -> None:
    alice = await login_as("alice")
    clock.advance(20 * 60)
    assert (await alice.get("/chats")).status_code == 200  # activity resets the idle clock
    clock.advance(20 * 60)
    assert (await alice.get("/chats")).status_code == 200
    clock.advance(30 * 60 + 1)
    expired = await alice.get("/chats")
    assert goes_to_login(expired)
    assert "Clear-Site-Data" in expired.headers  # the browser drops what the session left behind
    assert any(a == "session_expired" and d == "idle" for a, _, d in await audit_actions(svc))


async def test_automatic_refresh_does_not_keep_a_session_alive(login_as: Any, clock: FrozenClock) -> None:
    alice = await login_as("alice")
    for _ in range(3):
        clock.advance(9 * 60)
        assert (await alice.get("/chats?auto=1")).status_code == 200
    clock.advance(4 * 60)  # 31 minutes since the person last did anything
    assert goes_to_login(await alice.get("/chats"))


async def test_absolute_lifetime(login_as: Any, clock: FrozenClock, svc: Services) -> None:
    alice = await login_as("alice")
    elapsed = 0
    while elapsed + 20 * 60 < 12 * 3600:
        clock.advance(20 * 60)
        elapsed += 20 * 60
        assert (await alice.get("/chats")).status_code == 200, elapsed
    clock.advance(12 * 3600 - elapsed)
    assert goes_to_login(await alice.get("/chats"))
    assert any(a == "session_expired" and d == "lifetime" for a, _, d in await audit_actions(svc))


async def test_sign_out_other_sessions(login_as: Any, svc: Services) -> None:
    laptop = await login_as("alice")
    phone = await login_as("alice")
    ward_pc = await login_as("alice")
    page = await laptop.get("/account/sessions")
    assert (await page.get_data(as_text=True)).count("Sign out</button>") == 3
    r = await laptop.submit("/account/sessions/end-others", {}, page="/account/sessions")
    assert r.status_code == 303
    assert goes_to_login(await phone.get("/chats"))
    assert goes_to_login(await ward_pc.get("/chats"))
    assert (await laptop.get("/chats")).status_code == 200
    assert any(a == "sessions_revoked" for a, _, _ in await audit_actions(svc))


async def test_end_one_session_from_the_list(login_as: Any, svc: Services) -> None:
    laptop = await login_as("alice")
    phone = await login_as("alice")
    async with svc.db.reading() as s:
        from app.store.sessions import open_sessions

        user = await user_row_by_username(s, "alice")
        assert user is not None
        infos = await open_sessions(s, user.id)
    html = await (await laptop.get("/account/sessions")).get_data(as_text=True)
    current = re.search(r'<tr class="current">.*?/account/sessions/([0-9a-f]+)/end', html, re.S).group(1)  # type: ignore[union-attr]
    other = next(i.id for i in infos if i.id != current)
    r = await laptop.submit(f"/account/sessions/{other}/end", {}, page="/account/sessions")
    assert r.status_code == 303
    assert goes_to_login(await phone.get("/chats"))
    assert (await laptop.get("/chats")).status_code == 200


async def test_ending_this_session_from_the_list_logs_out(login_as: Any) -> None:
    laptop = await login_as("alice")
    html = await (await laptop.get("/account/sessions")).get_data(as_text=True)
    current = re.search(r'<tr class="current">.*?/account/sessions/([0-9a-f]+)/end', html, re.S).group(1)  # type: ignore[union-attr]
    r = await laptop.submit(f"/account/sessions/{current}/end", {}, page="/account/sessions")
    assert r.status_code == 303
    assert "/login" in r.headers["Location"]
    assert "Clear-Site-Data" in r.headers
    assert goes_to_login(await laptop.get("/chats"))


async def test_cannot_end_someone_elses_session(login_as: Any, svc: Services) -> None:
    alice = await login_as("alice")
    bob = await login_as("bob")
    async with svc.db.reading() as s:
        from app.store.sessions import open_sessions

        row = await user_row_by_username(s, "bob")
        assert row is not None
        bobs = await open_sessions(s, row.id)
    r = await alice.submit(f"/account/sessions/{bobs[0].id}/end", {}, page="/account/sessions")
    assert r.status_code == 404
    assert (await bob.get("/chats")).status_code == 200


async def _staff_id(svc: Services, username: str) -> int:
    async with svc.db.reading() as s:
        row = await user_row_by_username(s, username)
        assert row is not None
        return row.id


async def test_deactivation_ends_every_session_at_once(login_as: Any, svc: Services, client: Client) -> None:
    admin = await login_as("root", admin=True)
    bob_a = await login_as("bob")
    bob_b = await login_as("bob")
    bob_id = await _staff_id(svc, "bob")
    r = await admin.submit(f"/admin/staff/{bob_id}/deactivate", {}, page=f"/admin/staff/{bob_id}")
    assert r.status_code == 303
    assert goes_to_login(await bob_a.get("/chats"))
    assert goes_to_login(await bob_b.get("/chats"))
    assert (await client.login("bob")).status_code == 400
    r = await admin.submit(f"/admin/staff/{bob_id}/reactivate", {}, page=f"/admin/staff/{bob_id}")
    assert r.status_code == 303
    assert (await client.login("bob")).status_code == 303
    actions = [a for a, _, _ in await audit_actions(svc)]
    assert "account_deactivated" in actions and "account_reactivated" in actions


async def _reset_link(admin: Client, user_id: int) -> str:
    r = await admin.submit(f"/admin/staff/{user_id}/reset", {}, page=f"/admin/staff/{user_id}")
    assert r.status_code == 200
    html = await r.get_data(as_text=True)
    match = re.search(r'href="[^"]*(/invite/[A-Za-z0-9_-]+)"', html)
    assert match, html
    return match.group(1)


async def test_admin_password_reset(app: Quart, login_as: Any, svc: Services, clock: FrozenClock) -> None:
    admin = await login_as("root", admin=True)
    bob = await login_as("bob")
    old_cookie = session_cookie(bob)
    assert old_cookie
    bob_id = await _staff_id(svc, "bob")
    link = await _reset_link(admin, bob_id)
    # Old cookie and old password stop working.
    assert goes_to_login(await bob.get("/chats"))
    assert goes_to_login(await with_cookie(app, old_cookie).get("/chats"))
    fresh = Client(app)
    assert (await fresh.login("bob")).status_code == 400
    # The link sets a new password, once.
    page = await fresh.get(link)
    assert page.status_code == 200
    assert "bob" in await page.get_data(as_text=True)
    r = await fresh.submit(link, {"password": NEW_PASSWORD, "password2": NEW_PASSWORD}, page=link)
    assert r.status_code == 303
    assert (await fresh.get("/chats")).status_code == 200  # signed in by setting the password
    assert (await fresh.get(link)).status_code == 404
    r = await Client(app).submit("/login", {"username": "bob", "password": NEW_PASSWORD}, page="/login")
    assert r.status_code == 303
    assert (await Client(app).login("bob")).status_code == 400  # the old password stays dead
    # A second reset link expires after 72 h.
    link2 = await _reset_link(admin, bob_id)
    clock.advance(72 * 3600 + 1)
    assert (await Client(app).get(link2)).status_code == 404


async def test_reset_link_can_be_used_until_72_hours(app: Quart, login_as: Any, svc: Services, clock: FrozenClock) -> None:
    admin = await login_as("root", admin=True)
    await login_as("bob")
    link = await _reset_link(admin, await _staff_id(svc, "bob"))
    clock.advance(72 * 3600 - 60)
    assert (await Client(app).get(link)).status_code == 200


async def test_reset_gives_a_new_link_and_kills_the_old_one(app: Quart, login_as: Any, svc: Services) -> None:
    admin = await login_as("root", admin=True)
    await login_as("bob")
    bob_id = await _staff_id(svc, "bob")
    first = await _reset_link(admin, bob_id)
    second = await _reset_link(admin, bob_id)
    assert first != second
    assert (await Client(app).get(first)).status_code == 404
    assert (await Client(app).get(second)).status_code == 200


async def test_invite_link_flow_and_weak_password(app: Quart, login_as: Any, svc: Services) -> None:
    admin = await login_as("root", admin=True)
    r = await admin.submit("/admin/staff", {"username": "carol", "display_name": "Carol Jones", "department": "ICU", "job_title": "Doctor", "role": "member"}, page="/admin/staff")
    assert r.status_code == 200
    link = re.search(r'href="[^"]*(/invite/[A-Za-z0-9_-]+)"', await r.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    carol = Client(app)
    for weak in ("short", "password1234", "carolcarolcarol1", "qwertyuiopasdf"):
        r = await carol.submit(link, {"password": weak, "password2": weak}, page=link)
        assert r.status_code == 400, weak
        assert "error-text" in await r.get_data(as_text=True)
    r = await carol.submit(link, {"password": NEW_PASSWORD, "password2": NEW_PASSWORD + "x"}, page=link)
    assert r.status_code == 400
    assert "differ" in error_text(await r.get_data(as_text=True))
    r = await carol.submit(link, {"password": NEW_PASSWORD, "password2": NEW_PASSWORD}, page=link)
    assert r.status_code == 303
    # Signed in at once: no second typing of the new password.
    assert r.headers["Location"].endswith("/chats?welcome=1")
    page = await carol.get("/chats?welcome=1")
    assert page.status_code == 200
    assert "Your password is set and you are signed in" in await page.get_data(as_text=True)
    async with svc.db.reading() as s:
        rows = (await s.execute(select(AuditEntry).where(AuditEntry.action == "login", AuditEntry.actor_name == "carol"))).scalars().all()
    assert [r.detail for r in rows] == ["after the invite link"]
    r = await Client(app).submit("/login", {"username": "carol", "password": NEW_PASSWORD}, page="/login")
    assert r.status_code == 303


async def test_a_weak_password_says_why_and_keeps_the_other_fields(svc: Services, client: Client) -> None:
    token = await do_issue_setup_link(svc)
    path = f"/setup/{token}"
    form = {"username": "root", "display_name": "Rosa Admin", "department": "IT", "job_title": "Administrator", "password": "qwertyuiopasdf", "password2": "qwertyuiopasdf"}
    r = await client.submit(path, form, page=path)
    assert r.status_code == 400
    html = await r.get_data(as_text=True)
    for kept in ('value="root"', 'value="Rosa Admin"', 'value="IT"', 'value="Administrator"'):
        assert kept in html
    assert "qwertyuiopasdf" not in html  # never echo a password
    why = error_text(html)
    assert "commonly used password" in why and "Add another word" in why  # zxcvbn's own feedback


# --- the first-administrator setup link ---------------------------------------------------


async def test_setup_link_creates_the_first_admin_once(app: Quart, svc: Services, client: Client) -> None:
    token = await do_issue_setup_link(svc)
    assert token
    path = f"/setup/{token}"
    assert (await client.get(path)).status_code == 200
    form = {"username": "root", "display_name": "Rosa Admin", "department": "IT", "job_title": "Administrator", "password": NEW_PASSWORD, "password2": NEW_PASSWORD}
    r = await client.submit(path, form, page=path)
    assert r.status_code == 303, await r.get_data(as_text=True)
    assert r.headers["Location"].endswith("/admin/staff?welcome=1")  # signed in, on to inviting staff
    staff = await client.get("/admin/staff?welcome=1")
    assert staff.status_code == 200 and "first administrator" in await staff.get_data(as_text=True)
    await client.submit("/logout")
    async with svc.db.reading() as s:
        row = await user_row_by_username(s, "root")
        assert row is not None and row.role == "admin"
    assert (await client.get(path)).status_code == 404
    token_again = await client.csrf("/login")
    second = await client.post(path, form={**form, "username": "root2", "csrf_token": token_again})
    assert second.status_code == 404
    r = await client.submit("/login", {"username": "root", "password": NEW_PASSWORD}, page="/login")
    assert r.status_code == 303
    assert (await client.get("/admin/staff")).status_code == 200
    assert await do_issue_setup_link(svc) is None


async def test_setup_link_refuses_a_weak_password(svc: Services, client: Client) -> None:
    token = await do_issue_setup_link(svc)
    path = f"/setup/{token}"
    form = {"username": "root", "display_name": "Rosa Admin", "password": "password1234", "password2": "password1234"}
    r = await client.submit(path, form, page=path)
    assert r.status_code == 400
    assert 'value="root"' in await r.get_data(as_text=True)  # what was typed is kept
    assert (await client.get(path)).status_code == 200  # the link still works


async def test_setup_link_expires_after_24_hours(svc: Services, client: Client, clock: FrozenClock) -> None:
    token = await do_issue_setup_link(svc)
    clock.advance(24 * 3600 - 60)
    assert (await client.get(f"/setup/{token}")).status_code == 200
    clock.advance(61)
    assert (await client.get(f"/setup/{token}")).status_code == 404


async def test_only_the_newest_setup_link_works(svc: Services, client: Client) -> None:
    old = await do_issue_setup_link(svc)
    new = await do_issue_setup_link(svc)
    assert (await client.get(f"/setup/{old}")).status_code == 404
    assert (await client.get(f"/setup/{new}")).status_code == 200


async def test_no_setup_link_when_accounts_exist(svc: Services, make_user: Any, client: Client) -> None:
    token = await do_issue_setup_link(svc)
    await make_user("alice")
    assert await do_issue_setup_link(svc) is None
    # A link printed before the first account appeared is dead too.
    path = f"/setup/{token}"
    form = {"username": "intruder", "display_name": "In Truder", "password": NEW_PASSWORD, "password2": NEW_PASSWORD}
    r = await client.submit(path, form, page="/login")
    assert r.status_code == 404
    async with svc.db.reading() as s:
        assert await user_row_by_username(s, "intruder") is None


async def test_unknown_setup_and_invite_tokens_are_404(client: Client) -> None:
    assert (await client.get("/setup/not-a-token")).status_code == 404
    assert (await client.get("/invite/not-a-token")).status_code == 404


async def test_index_redirects(client: Client, make_user: Any) -> None:
    r = await client.get("/")
    assert goes_to_login(r)
    await make_user("alice")
    await client.login("alice")
    r = await client.get("/")
    assert r.headers["Location"].endswith("/chats")


@pytest.fixture
def three_logins_a_minute(app_config: dict[str, Any]) -> None:
    app_config["LOGIN_RATE_LIMIT"] = 3


@pytest.mark.usefixtures("three_logins_a_minute")
async def test_login_rate_limit_follows_the_configuration(app: Quart) -> None:
    c = Client(app)
    token = await c.csrf("/login")
    here = {"client": ("203.0.113.8", 40000)}
    statuses = []
    for _ in range(4):
        r = await c.raw.post("/login", form={"csrf_token": token, "username": "ghost", "password": "x" * 12}, scheme="https", scope_base=here)
        statuses.append(r.status_code)
    assert statuses == [400, 400, 400, 429]


async def test_my_sessions_names_devices_and_places(app: Quart, make_user: Any, clock: FrozenClock) -> None:
    """"Chrome on Android, 10.0.0.12, since Yesterday 23:50", not a raw User-Agent string."""
    await make_user("alice")
    zone = display_zone(app.config["DISPLAY_TIMEZONE"])
    local = clock.now().astimezone(zone)
    # Just before local midnight: the phone logs in; twenty minutes later, the next day, the laptop.
    clock.advance((local.replace(hour=23, minute=50) - local).total_seconds())
    phone_since = clock.now()
    android = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
    phone = Client(app)
    token = await phone.csrf("/login")
    r = await phone.raw.post(
        "/login", scheme="https", form={"username": "alice", "password": PASSWORD, "csrf_token": token},
        headers={"User-Agent": android}, scope_base={"client": ("10.0.0.12", 50000)},
    )
    assert r.status_code == 303
    clock.advance(20 * 60)
    laptop = Client(app)
    assert (await laptop.login("alice")).status_code == 303
    html = await (await laptop.get("/account/sessions")).get_data(as_text=True)
    text = " ".join(re.sub(r"<[^>]+>", "", html).split())
    assert "Mozilla/5.0" not in text  # the raw string only in a tooltip
    assert when_label(phone_since, clock.now(), zone) == "Yesterday 23:50"
    assert "Chrome on Android, 10.0.0.12, since Yesterday 23:50" in text


async def test_login_error_says_accounts_lock_and_whom_to_ask(client: Client, make_user: Any) -> None:
    await make_user("alice")
    r = await client.submit("/login", {"username": "alice", "password": "not the password at all"}, page="/login")
    message = error_text(await r.get_data(as_text=True))
    assert "After 5 wrong passwords in a row an account is locked" in message
    assert "administrator" in message


@pytest.fixture
def three_failures_lock(app_config: dict[str, Any]) -> None:
    app_config["LOCKOUT_AFTER_FAILURES"] = 3


@pytest.mark.usefixtures("three_failures_lock")
async def test_login_error_follows_the_lockout_setting(client: Client, make_user: Any) -> None:
    await make_user("alice")
    r = await client.submit("/login", {"username": "nobody", "password": "not the password at all"}, page="/login")
    assert "After 3 wrong passwords" in error_text(await r.get_data(as_text=True))


async def test_deactivation_kills_an_invite_link_for_good(app: Quart, login_as: Any, svc: Services) -> None:
    admin = await login_as("root", admin=True)
    r = await admin.submit("/admin/staff", {"username": "carol", "display_name": "Carol Jones", "role": "member"}, page="/admin/staff")
    link = re.search(r'href="[^"]*(/invite/[A-Za-z0-9_-]+)"', await r.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    carol_id = await _staff_id(svc, "carol")
    assert (await admin.submit(f"/admin/staff/{carol_id}/deactivate", {}, page=f"/admin/staff/{carol_id}")).status_code == 303
    assert (await admin.submit(f"/admin/staff/{carol_id}/reactivate", {}, page=f"/admin/staff/{carol_id}")).status_code == 303
    assert (await Client(app).get(link)).status_code == 404
    r = await Client(app).submit(link, {"password": NEW_PASSWORD, "password2": NEW_PASSWORD}, page="/login")
    assert r.status_code == 404
    assert "invite expired" in await (await admin.get(f"/admin/staff/{carol_id}")).get_data(as_text=True)


# --- a session that ended: the login page says why, and works on the first try -----------


async def browse(client: Client, path: str, **kwargs: Any) -> Any:
    """GET like a browser: Clear-Site-Data with "cookies" drops every cookie of the site."""
    response = await client.get(path, **kwargs)
    if '"cookies"' in response.headers.get("Clear-Site-Data", ""):
        assert client.raw.cookie_jar is not None
        client.raw.cookie_jar.clear()
    return response


def login_url(response: Any) -> tuple[str, dict[str, list[str]]]:
    from urllib.parse import parse_qs, urlsplit

    assert response.status_code == 303, response.status_code
    url = urlsplit(re.sub(r"^https?://[^/]+", "", response.headers["Location"]))
    return url.path, parse_qs(url.query)


async def log_in_on(client: Client, page: str | Any) -> Any:
    """Post the login form of ``page`` (a path to open, or a response already read) once,
    as a person would."""
    response = await browse(client, page) if isinstance(page, str) else page
    html = await response.get_data(as_text=True)
    form = {"csrf_token": hidden(html, "csrf_token"), "next": hidden(html, "next"), "username": "alice", "password": PASSWORD}
    return await client.post("/login", form=form)


async def test_idle_lock_sends_to_login_with_the_reason_and_the_first_login_works(login_as: Any, clock: FrozenClock, svc: Services) -> None:
    alice = await login_as("alice")
    clock.advance(30 * 60 + 1)
    r = await browse(alice, "/chats/directory?q=ward")
    assert login_url(r) == ("/login", {"next": ["/chats/directory?q=ward"], "why": ["idle"]})
    assert '"cookies"' in r.headers["Clear-Site-Data"]
    page = await browse(alice, r.headers["Location"])
    assert page.status_code == 200
    assert "Signed out after 30 minutes without activity" in await page.get_data(as_text=True)
    done = await log_in_on(alice, r.headers["Location"])
    assert done.status_code == 303, await done.get_data(as_text=True)
    assert done.headers["Location"] == "/chats/directory?q=ward"
    assert (await alice.get("/chats")).status_code == 200


async def test_the_login_page_a_locked_out_script_opens_works_on_the_first_try(login_as: Any, clock: FrozenClock, svc: Services) -> None:
    """With JavaScript on, the socket closes (4401) and the page goes to /login?next=...
    with the dead cookie still there: the login form the browser ends up on (following
    redirects, honouring Clear-Site-Data) must work the first time, not answer 403."""
    alice = await login_as("alice")
    clock.advance(30 * 60 + 1)
    page = "/login?next=/chats/7"
    r = await browse(alice, page)
    while r.status_code in (302, 303):
        page = r.headers["Location"]
        r = await browse(alice, page)
    assert r.status_code == 200
    done = await log_in_on(alice, r)  # the form on the page the browser shows
    assert done.status_code == 303, (done.status_code, await done.get_data(as_text=True))
    assert done.headers["Location"] == "/chats/7"
    assert "why=idle" in page


async def test_the_session_expiry_is_audited_once_with_the_address(app: Quart, login_as: Any, clock: FrozenClock, svc: Services) -> None:
    alice = await login_as("alice")
    clock.advance(30 * 60 + 1)
    here = {"client": ("203.0.113.44", 40000)}
    r = await alice.raw.get("/chats", scheme="https", scope_base=here)
    assert login_url(r)[1]["why"] == ["idle"]
    await alice.raw.get("/chats", scheme="https", scope_base=here)
    from app.store import audit

    async with svc.db.reading() as s:
        expired = [e for e in await audit.entries(s, action="session_expired")]
    assert [(e.actor_name, e.ip, e.detail) for e in expired] == [("alice", "203.0.113.44", "idle")]


@pytest.fixture
def signer_clock(clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """The signed cookie's timestamp (itsdangerous) follows the test clock too."""
    import itsdangerous.timed

    class Time:
        @staticmethod
        def time() -> float:
            return clock.now().timestamp()

    monkeypatch.setattr(itsdangerous.timed, "time", Time)


@pytest.mark.usefixtures("signer_clock")
async def test_the_server_sees_the_cookie_when_the_lifetime_ends(login_as: Any, clock: FrozenClock, svc: Services) -> None:
    alice = await login_as("alice")
    for _ in range(35):  # busy all day: never idle
        clock.advance(20 * 60)
        assert (await alice.get("/chats")).status_code == 200
    clock.advance(20 * 60)  # 12 hours after the login
    r = await browse(alice, "/chats")
    assert login_url(r) == ("/login", {"next": ["/chats"], "why": ["lifetime"]})
    assert "Signed out after 12 hours (the longest a session lasts)" in await (await browse(alice, r.headers["Location"])).get_data(as_text=True)
    assert ("session_expired", "alice", "lifetime") in await audit_actions(svc)


@pytest.mark.parametrize(
    ("how", "why", "text"),
    [
        ("others", "signed_out_elsewhere", "Signed out from another of your sessions"),
        ("deactivate", "deactivated", "your account has been deactivated"),
        ("reset", "password_reset", "an administrator reset your password"),
    ],
)
async def test_the_login_page_says_why_a_session_ended(login_as: Any, svc: Services, how: str, why: str, text: str) -> None:
    admin = await login_as("root", admin=True)
    alice = await login_as("alice")
    laptop = await login_as("alice")
    alice_id = await _staff_id(svc, "alice")
    if how == "others":
        await laptop.submit("/account/sessions/end-others", {}, page="/account/sessions")
    else:
        await admin.submit(f"/admin/staff/{alice_id}/{how}", {}, page=f"/admin/staff/{alice_id}")
    r = await browse(alice, "/chats")
    assert login_url(r)[1]["why"] == [why]
    html = await (await browse(alice, r.headers["Location"])).get_data(as_text=True)
    assert text in html


async def test_a_post_with_an_ended_session_goes_to_login_too(login_as: Any, clock: FrozenClock, svc: Services) -> None:
    alice = await login_as("alice")
    token = await alice.csrf("/chats")
    clock.advance(30 * 60 + 1)
    before = await snapshot(svc, skip=("audit_log", "sessions"))
    r = await alice.post("/chats/group", form={"csrf_token": token, "title": "Late", "members": "alice"})
    assert login_url(r) == ("/login", {"next": ["/chats"], "why": ["idle"]})
    assert await snapshot(svc, skip=("audit_log", "sessions")) == before


async def test_logging_in_over_a_dead_cookie_works(app: Quart, make_user: Any, clock: FrozenClock) -> None:
    """A login form opened before (another tab) still logs in once the session has ended,
    and its answer wipes nothing: Clear-Site-Data would drop the new session cookie."""
    await make_user("alice")
    browser = Client(app)
    old_form = await browser.csrf("/login")
    assert (await browser.login("alice")).status_code == 303
    clock.advance(30 * 60 + 1)
    r = await browser.post("/login", form={"csrf_token": old_form, "username": "alice", "password": PASSWORD})
    assert r.status_code == 303 and r.headers["Location"] == "/chats"
    assert "Clear-Site-Data" not in r.headers
    assert (await browse(browser, "/chats")).status_code == 200


async def test_an_invite_link_opens_over_a_dead_cookie(app: Quart, login_as: Any, clock: FrozenClock) -> None:
    """A shared terminal whose last user's session ended: the new colleague's invite link
    shows its form at once (a detour through the login page would lose the link) and
    signs the colleague in."""
    admin = await login_as("root", admin=True)
    r = await admin.submit("/admin/staff", {"username": "carol", "display_name": "Carol Jones", "department": "ICU", "job_title": "Doctor", "role": "member"}, page="/admin/staff")
    link = re.search(r'href="[^"]*(/invite/[A-Za-z0-9_-]+)"', await r.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    terminal = await login_as("bob")
    clock.advance(30 * 60 + 1)
    page = await terminal.get(link)
    assert page.status_code == 200
    assert 'name="password2"' in await page.get_data(as_text=True)
    r = await terminal.submit(link, {"password": NEW_PASSWORD, "password2": NEW_PASSWORD}, page=link)
    assert r.status_code == 303 and r.headers["Location"].endswith("/chats?welcome=1")
    assert "Carol Jones" in await (await terminal.get("/chats?welcome=1")).get_data(as_text=True)


async def test_my_sessions_lists_live_sessions_only(login_as: Any, clock: FrozenClock, svc: Services) -> None:
    laptop = await login_as("alice")
    clock.advance(20 * 60)
    assert (await laptop.get("/chats")).status_code == 200
    await login_as("alice")  # the phone: never used again
    clock.advance(20 * 60)
    assert (await laptop.get("/chats")).status_code == 200
    clock.advance(11 * 60)  # the phone has been idle for 31 minutes, the laptop for 11
    html = await (await laptop.get("/account/sessions")).get_data(as_text=True)
    assert html.count("Sign out</button>") == 1
    assert '<tr class="current">' in html


# --- the background sweep -----------------------------------------------------------------


@pytest.fixture
def quick_sweep(app_config: dict[str, Any]) -> None:
    app_config["SESSION_SWEEP_SECONDS"] = 0.02


@pytest.mark.usefixtures("quick_sweep")
async def test_a_background_sweep_ends_sessions_nobody_comes_back_to(login_as: Any, clock: FrozenClock, svc: Services) -> None:
    import asyncio

    from app.realtime.events import Event

    await login_as("alice")
    svc.published.clear()
    clock.advance(30 * 60 + 1)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not svc.published and loop.time() < deadline:
        await asyncio.sleep(0.02)  # the sweep runs on the real clock, every 20 ms here
    ended: list[Event] = list(svc.published)
    assert [e.kind for e in ended] == ["session_ended"]
    assert ("session_expired", "alice", "idle") in await audit_actions(svc)
    async with svc.db.reading() as s:
        from app.store.sessions import open_sessions

        assert await open_sessions(s, await _staff_id(svc, "alice")) == []


async def test_the_sweep_runs_while_serving_only(app_config: dict[str, Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from app import create_app

    monkeypatch.setenv("MEDCHAT_INSTANCE_PATH", str(tmp_path / "instance"))
    application = create_app({**app_config, "SESSION_SWEEP_SECONDS": 0.02})
    assert "medchat_session_sweep" not in application.extensions
    async with application.test_app():
        task = application.extensions["medchat_session_sweep"]
        assert not task.done()
    assert task.cancelled()
