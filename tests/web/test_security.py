"""CSRF and origin checks, idempotent sends, bad input, security headers, error pages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from app import create_app
from app.services import Services
from tests.helpers import all_messages, conversation_id_of, hidden, new_id, snapshot
from tests.support import Client

pytestmark = pytest.mark.usefixtures("database_kind")


@pytest.fixture
async def chat(login_as: Any) -> tuple[Client, int, str]:
    """Alice logged in, her direct chat with Bob, and the page's CSRF token."""
    alice = await login_as("alice")
    await login_as("bob")
    r = await alice.submit("/chats/direct", {"username": "bob"}, page="/directory")
    conv = conversation_id_of(r.headers["Location"])
    html = await (await alice.get(f"/chats/{conv}")).get_data(as_text=True)
    return alice, conv, hidden(html, "csrf_token")


async def audit_actions(svc: Services) -> list[str]:
    from app.store import audit

    async with svc.db.reading() as s:
        return [r.action for r in await audit.entries(s, limit=1000)]


# --- CSRF ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "headers"),
    [
        ("missing token", {}),
        ("wrong token", {}),
        ("cross-site fetch", {"Sec-Fetch-Site": "cross-site"}),
        ("same-site fetch", {"Sec-Fetch-Site": "same-site"}),
        ("foreign origin", {"Origin": "https://evil.example"}),
        ("null origin", {"Origin": "null"}),
        ("http origin", {"Origin": "http://localhost"}),
    ],
)
async def test_forged_send_is_refused_and_changes_nothing(chat: tuple[Client, int, str], svc: Services, case: str, headers: dict[str, str]) -> None:
    alice, conv, token = chat
    form = {"body": "forged", "client_msg_id": new_id()}
    if case == "wrong token":
        form["csrf_token"] = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    elif case != "missing token":
        form["csrf_token"] = token
    before = await snapshot(svc, skip=("audit_log",))
    r = await alice.post(f"/chats/{conv}/messages", form=form, headers=headers)
    assert r.status_code == 403, case
    assert "did not come from MedChat" in await r.get_data(as_text=True)
    assert await snapshot(svc, skip=("audit_log",)) == before
    assert await all_messages(svc, conv) == []
    assert "csrf_refused" in await audit_actions(svc)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Sec-Fetch-Site": "same-origin"},
        {"Origin": "https://localhost"},
        # Referrer-Policy: no-referrer makes browsers send Origin: null on same-origin posts.
        {"Sec-Fetch-Site": "same-origin", "Origin": "null"},
    ],
    ids=["no-headers", "sec-fetch-same-origin", "own-origin", "same-origin-with-null-origin"],
)
async def test_same_origin_form_works(chat: tuple[Client, int, str], svc: Services, headers: dict[str, str]) -> None:
    alice, conv, token = chat
    r = await alice.post(f"/chats/{conv}/messages", form={"body": "genuine", "client_msg_id": new_id(), "csrf_token": token}, headers=headers)
    assert r.status_code == 303
    assert [m.body for m in await all_messages(svc, conv)] == ["genuine"]


async def test_token_of_another_browser_is_refused(chat: tuple[Client, int, str], login_as: Any, svc: Services) -> None:
    alice, conv, _ = chat
    mallory = await login_as("mallory")
    stolen_shape = await mallory.csrf("/chats")  # valid for Mallory's browser, not Alice's
    r = await alice.post(f"/chats/{conv}/messages", form={"body": "forged", "client_msg_id": new_id(), "csrf_token": stolen_shape})
    assert r.status_code == 403
    assert await all_messages(svc, conv) == []


async def test_token_from_before_login_is_refused_after(client: Client, make_user: Any, svc: Services) -> None:
    await make_user("alice")
    await make_user("bob")
    anonymous_token = await client.csrf("/login")
    await client.login("alice")
    r = await client.post("/chats/direct", form={"username": "bob", "csrf_token": anonymous_token})
    assert r.status_code == 403


async def test_login_form_needs_a_token(client: Client, make_user: Any) -> None:
    await make_user("alice")
    r = await client.post("/login", form={"username": "alice", "password": "correct horse battery staple"})
    assert r.status_code == 403
    r = await client.post("/login", form={"username": "alice", "password": "correct horse battery staple", "csrf_token": await client.csrf("/login")}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    assert (await client.get("/chats")).status_code == 303


async def test_logout_needs_a_token(login_as: Any) -> None:
    alice = await login_as("alice")
    r = await alice.post("/logout", form={})
    assert r.status_code == 403
    assert (await alice.get("/chats")).status_code == 200


async def test_double_submitted_send_stores_one_message(chat: tuple[Client, int, str], svc: Services, events: list[Any]) -> None:
    alice, conv, token = chat
    events.clear()
    form = {"body": "give 5 mg now", "client_msg_id": new_id(), "csrf_token": token}
    first = await alice.post(f"/chats/{conv}/messages", form=form)
    second = await alice.post(f"/chats/{conv}/messages", form=form)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert [m.body for m in await all_messages(svc, conv)] == ["give 5 mg now"]
    # The form door goes through the same action: one message event, to both members.
    sent = [e for e in events if e.kind == "message"]
    assert len(sent) == 1 and len(sent[0].user_ids) == 2


async def test_client_msg_id_reused_in_another_conversation(chat: tuple[Client, int, str], svc: Services, login_as: Any) -> None:
    alice, conv, token = chat
    await login_as("carol")
    r = await alice.submit("/chats/direct", {"username": "carol"}, page="/directory")
    other = conversation_id_of(r.headers["Location"])
    cid = new_id()
    assert (await alice.post(f"/chats/{conv}/messages", form={"body": "one", "client_msg_id": cid, "csrf_token": token})).status_code == 303
    r = await alice.post(f"/chats/{other}/messages", form={"body": "two", "client_msg_id": cid, "csrf_token": token})
    assert r.status_code == 400
    assert await all_messages(svc, other) == []


# --- bad input ----------------------------------------------------------------------------


async def test_oversized_body_is_413(chat: tuple[Client, int, str], svc: Services) -> None:
    alice, conv, token = chat
    before = await snapshot(svc, skip=("audit_log",))
    r = await alice.post(f"/chats/{conv}/messages", form={"body": "x" * (65 * 1024), "client_msg_id": new_id(), "csrf_token": token})
    assert r.status_code == 413
    assert "Too large" in await r.get_data(as_text=True)
    assert await snapshot(svc, skip=("audit_log",)) == before


async def test_biggest_legal_message_fits_the_request_limit(chat: tuple[Client, int, str], svc: Services) -> None:
    """4000 four-byte characters, percent-encoded (12 bytes each), stay under 64 KiB... almost."""
    alice, conv, token = chat
    text = "\u00e9" * 4000  # two bytes in UTF-8, six once percent-encoded
    r = await alice.post(f"/chats/{conv}/messages", form={"body": text, "client_msg_id": new_id(), "csrf_token": token})
    assert r.status_code == 303
    assert (await all_messages(svc, conv))[0].body == text


@pytest.mark.parametrize("path", ["/chats/abc", "/chats/-1", "/chats/1.5", "/chats/99999999999999999999999", "/chats/0x1", "/chats/%00"])
async def test_malformed_conversation_id_is_404(chat: tuple[Client, int, str], path: str) -> None:
    alice, _, _ = chat
    r = await alice.get(path)
    assert r.status_code == 404
    assert "Not found" in await r.get_data(as_text=True)


async def test_huge_conversation_id_is_404_not_500(chat: tuple[Client, int, str]) -> None:
    alice, _, token = chat
    big = 2**63 + 5
    assert (await alice.get(f"/chats/{big}")).status_code == 404
    r = await alice.post(f"/chats/{big}/messages", form={"body": "x", "client_msg_id": new_id(), "csrf_token": token})
    assert r.status_code == 404


@pytest.mark.parametrize("before", ["abc", "-5", "1e3", "9" * 30, "%00"])
async def test_non_numeric_before_is_400(chat: tuple[Client, int, str], before: str) -> None:
    alice, conv, _ = chat
    r = await alice.get(f"/chats/{conv}?before={before}")
    assert r.status_code == 400


@pytest.mark.parametrize("cid", ["", "not-a-uuid", "12345678-1234-1234-1234-1234567890123", "{12345678-1234-1234-1234-123456789012}", "x" * 200])
async def test_invalid_client_msg_id_is_400(chat: tuple[Client, int, str], svc: Services, cid: str) -> None:
    alice, conv, token = chat
    r = await alice.post(f"/chats/{conv}/messages", form={"body": "hello", "client_msg_id": cid, "csrf_token": token})
    assert r.status_code == 400
    html = await r.get_data(as_text=True)
    assert "client_msg_id" in html
    assert hidden(html, "client_msg_id") != cid  # a fresh, valid one to retry with
    assert await all_messages(svc, conv) == []


@pytest.mark.parametrize(
    ("content_type", "with_token"),
    [
        ("application/x-www-form-urlencoded", False),
        ("application/x-www-form-urlencoded", True),
        ("multipart/form-data", False),
        ("multipart/form-data; boundary=zzz", True),
        ("application/octet-stream", True),
    ],
)
async def test_binary_garbage_is_4xx(chat: tuple[Client, int, str], svc: Services, content_type: str, with_token: bool) -> None:
    alice, conv, token = chat
    garbage = bytes(range(256)) * 40 + b"\xff\xfe%%%zz&&==\x00"
    data = (f"csrf_token={token}&client_msg_id={new_id()}&body=".encode() + garbage) if with_token else garbage
    before = await snapshot(svc, skip=("audit_log",))
    r = await alice.post(f"/chats/{conv}/messages", data=data, headers={"Content-Type": content_type})
    assert 400 <= r.status_code < 500, r.status_code
    assert await snapshot(svc, skip=("audit_log",)) == before


async def test_too_many_multipart_parts(chat: tuple[Client, int, str], svc: Services) -> None:
    alice, conv, token = chat
    boundary = "medchatboundary"
    fields = [("csrf_token", token), ("client_msg_id", new_id()), ("body", "x")] + [(f"f{i}", "1") for i in range(500)]
    data = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields) + f"--{boundary}--\r\n"
    assert len(data) < 64 * 1024
    r = await alice.post(f"/chats/{conv}/messages", data=data.encode(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413
    assert await all_messages(svc, conv) == []


async def test_wrong_method_is_405_page(chat: tuple[Client, int, str]) -> None:
    alice, conv, _ = chat
    r = await alice.get("/logout")
    assert r.status_code == 405
    assert "Not allowed that way" in await r.get_data(as_text=True)
    r = await alice.get(f"/chats/{conv}/messages")
    assert r.status_code == 405


async def test_unknown_page_is_404_page(client: Client) -> None:
    r = await client.get("/no/such/page")
    assert r.status_code == 404
    assert r.mimetype == "text/html"
    assert "Not found" in await r.get_data(as_text=True)


async def test_json_clients_get_json_errors(client: Client) -> None:
    r = await client.get("/no/such/page", headers={"Accept": "application/json"})
    assert r.status_code == 404
    assert (await r.get_json())["error"]


# --- headers ------------------------------------------------------------------------------


def check_common_headers(r: Any, *, https: bool = True) -> None:
    h = r.headers
    csp = h["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    for part in ("default-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'"):
        assert part in csp, part
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "no-referrer"
    assert "camera=()" in h["Permissions-Policy"] and "geolocation=()" in h["Permissions-Policy"]
    assert h["Cross-Origin-Opener-Policy"] == "same-origin"
    if https:
        assert h["Strict-Transport-Security"].startswith("max-age=")
        assert int(h["Strict-Transport-Security"].split("=")[1].split(";")[0]) >= 31536000
    else:
        assert "Strict-Transport-Security" not in h


async def test_headers_on_authenticated_pages(chat: tuple[Client, int, str]) -> None:
    alice, conv, _ = chat
    for path in ("/chats", f"/chats/{conv}", f"/chats/{conv}/info", "/directory", "/account/sessions", "/chats/new-group"):
        r = await alice.get(path)
        assert r.status_code == 200, path
        check_common_headers(r)
        assert "no-store" in r.headers["Cache-Control"], path


async def test_headers_on_public_pages_and_errors(client: Client) -> None:
    for path, status in (("/login", 200), ("/no/such/page", 404), ("/healthz", 200), ("/", 302)):
        r = await client.get(path)
        assert r.status_code == status, path
        check_common_headers(r)


async def test_no_hsts_over_plain_http(app: Any) -> None:
    plain = app.test_client()
    r = await plain.get("/login", scheme="http")
    check_common_headers(r, https=False)


async def test_no_inline_script_or_style_in_pages(chat: tuple[Client, int, str]) -> None:
    alice, conv, _ = chat
    for path in ("/chats", f"/chats/{conv}", "/directory"):
        html = await (await alice.get(path)).get_data(as_text=True)
        assert "<script>" not in html and "<style" not in html and " style=" not in html
        assert " onclick=" not in html.lower() and " onload=" not in html.lower()


async def test_https_redirect_goes_to_public_url_not_the_host_asked_for(app_config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDCHAT_INSTANCE_PATH", str(tmp_path / "instance2"))
    application = create_app({**app_config, "HTTPS_REDIRECT": True, "PUBLIC_URL": "https://ward.example:8443/"})
    async with application.test_app() as test_app:
        c = test_app.test_client()
        r = await c.get("/chats?x=1", scheme="http", headers={"Host": "ward.example:8080"})
        assert r.status_code == 308
        assert r.headers["Location"] == "https://ward.example:8443/chats?x=1"
        # A forged Host is never reflected: the redirect names the configured address.
        r = await c.get("/login", scheme="http", headers={"Host": "phish.example"})
        assert r.status_code == 308 and r.headers["Location"] == "https://ward.example:8443/login"
        assert (await c.get("/healthz", scheme="http")).status_code == 200  # probes stay on plain HTTP
        assert (await c.get("/login", scheme="https", headers={"Host": "ward.example:8443"})).status_code == 200


@pytest.mark.parametrize("host", ["phish.example", "phish.example:8443", "localhost.evil.example", "[::2]:8443", "10.0.0.1"])
async def test_an_unknown_host_gets_400(client: Client, host: str) -> None:
    for path in ("/login", "/chats", "/invite/abc", "/no/such/page"):
        r = await client.get(path, headers={"Host": host})
        assert r.status_code == 400, (host, path)
        assert host.split(":")[0] not in await r.get_data(as_text=True)
    # Probes may use any address.
    assert (await client.get("/healthz", headers={"Host": host})).status_code == 200


@pytest.mark.parametrize("host", ["localhost", "localhost:8443", "127.0.0.1:8443", "[::1]:8443", "LOCALHOST"])
async def test_public_url_host_and_its_loopback_aliases_are_served(client: Client, host: str) -> None:
    r = await client.get("/login", headers={"Host": host})
    assert r.status_code == 200


async def test_allowed_hosts_adds_names(app_config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDCHAT_INSTANCE_PATH", str(tmp_path / "instance3"))
    application = create_app({**app_config, "PUBLIC_URL": "https://medchat.hospital.example", "ALLOWED_HOSTS": ["medchat", "10.1.2.3"]})
    async with application.test_app() as test_app:
        c = test_app.test_client()
        for host, status in (("medchat.hospital.example", 200), ("medchat", 200), ("10.1.2.3:443", 200), ("localhost", 400)):
            assert (await c.get("/login", headers={"Host": host})).status_code == status, host


@pytest.mark.parametrize("bad", ["", "medchat.example", "ftp://x.example", "https://x.example/path", "https://"])
def test_a_bad_public_url_is_refused_at_start(app_config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("MEDCHAT_INSTANCE_PATH", str(tmp_path / "instance4"))
    with pytest.raises(ValueError, match="PUBLIC_URL"):
        create_app({**app_config, "PUBLIC_URL": bad})


async def test_a_crash_is_a_500_page_without_details(chat: tuple[Client, int, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from app.actions import conversations

    async def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(conversations, "list_conversations", boom)
    alice, _, _ = chat
    r = await alice.get("/chats")
    assert r.status_code == 500
    html = await r.get_data(as_text=True)
    assert "Something went wrong" in html
    assert "secret internal detail" not in html and "Traceback" not in html
    assert "no-store" in r.headers["Cache-Control"]


async def test_every_signed_in_page_locks_itself_without_javascript(login_as: Any, svc: Services) -> None:
    """A <noscript> reload a little after the idle timeout, never counted as activity
    (auto=1) and to a URL that really changes (n): an unattended page ends at the login."""
    root = await login_as("root", admin=True)
    await login_as("bob")
    r = await root.submit("/chats/group", {"title": "Ward 7", "members": ["bob"]}, page="/chats/new-group")
    conv = conversation_id_of(r.headers["Location"])
    idle = svc.settings.session_idle_seconds
    for path in ("/directory?q=nurse", "/chats/new-group", "/account/sessions", "/admin/staff", "/admin/audit", f"/chats/{conv}/info"):
        html = await (await root.get(path)).get_data(as_text=True)
        match = re.search(r'<noscript><meta http-equiv="refresh" content="(\d+);url=([^"]+)"></noscript>', html)
        assert match, path
        assert int(match.group(1)) == idle + 5, path
        target = match.group(2).replace("&amp;", "&")
        assert target.startswith(path.split("?")[0] + "?") and "auto=1" in target and "&n=" in target, target
        if "q=nurse" in path:
            assert "q=nurse" in target
    # Pages with their own refresh keep theirs; anonymous pages have none.
    assert (await (await root.get("/chats")).get_data(as_text=True)).count('http-equiv="refresh"') == 1
    anonymous = await (await Client(root.app).get("/login")).get_data(as_text=True)
    assert 'http-equiv="refresh"' not in anonymous


@pytest.mark.parametrize("path", ["//evil.example/x", "//evil.example", "/\\evil.example/x", "/no/such/page"])
async def test_the_idle_lock_refresh_never_leaves_the_site(login_as: Any, path: str) -> None:
    """A 404 page for a path that is no route reloads to the chat list, not to the path:
    ``//evil.example/x`` as a refresh target would be an open redirect after the idle time."""
    alice = await login_as("alice")
    r = await alice.get("/", scope_base={"path": path, "raw_path": path.encode()})
    assert r.status_code == 404
    html = await r.get_data(as_text=True)
    match = re.search(r'<noscript><meta http-equiv="refresh" content="(\d+);url=([^"]+)"></noscript>', html)
    assert match, html[:300]
    assert match.group(2).startswith("/chats?auto=1&amp;n="), match.group(2)
