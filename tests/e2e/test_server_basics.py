"""A real Hypercorn from hypercorn.toml: health, headers over HTTP/2, CSRF in a real browser."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.harness import ServerProcess, login_client, nojs_context

pytestmark = pytest.mark.e2e

PASSWORD = "lantern quarry pebble orchid 42"


def h2_client(server: ServerProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.base_url, http2=True, verify=False, timeout=10.0)  # noqa: S501


async def test_healthz_answers_json_over_http2(server: ServerProcess) -> None:
    async with h2_client(server) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.http_version == "HTTP/2"
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_healthz_is_not_redirected_on_plain_http(server: ServerProcess) -> None:
    async with httpx.AsyncClient(timeout=10.0) as client:
        health = await client.get(f"{server.http_url}/healthz")
        page = await client.get(f"{server.http_url}/login?next=/chats")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert page.status_code == 308
    assert page.headers["location"] == f"{server.base_url}/login?next=/chats"


async def test_a_forged_host_is_never_reflected(server: ServerProcess) -> None:
    """The plain port redirects to PUBLIC_URL whatever Host says; HTTPS refuses unknown hosts."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        page = await client.get(f"{server.http_url}/invite/abc", headers={"Host": "phish.example"})
    assert page.status_code == 308
    assert page.headers["location"] == f"{server.base_url}/invite/abc"
    async with h2_client(server) as client:
        refused = await client.get("/login", headers={"Host": "phish.example"})
        served = await client.get("/login", headers={"Host": f"localhost:{server.https_port}"})
    assert refused.status_code == 400
    assert "phish.example" not in refused.text
    assert served.status_code == 200


def _check_security_headers(headers: httpx.Headers) -> None:
    csp = headers["content-security-policy"]
    directives = {part.strip().split(" ", 1)[0]: part.strip() for part in csp.split(";") if part.strip()}
    assert directives["default-src"] == "default-src 'self'"
    assert directives["object-src"] == "object-src 'none'"
    assert directives["base-uri"] == "base-uri 'none'"
    assert directives["frame-ancestors"] == "frame-ancestors 'none'"
    assert directives["form-action"] == "form-action 'self'"
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    hsts = headers["strict-transport-security"]
    assert "max-age=" in hsts and int(hsts.split("max-age=")[1].split(";")[0]) >= 31536000
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert "camera=()" in headers["permissions-policy"]


async def test_security_headers_on_real_http2_responses(server: ServerProcess) -> None:
    server.create_user("hdr.check", PASSWORD, display_name="Header Check")
    async with h2_client(server) as anonymous:
        login_page = await anonymous.get("/login")
    assert login_page.status_code == 200
    assert login_page.http_version == "HTTP/2"
    _check_security_headers(login_page.headers)

    client = await login_client(server, "hdr.check", PASSWORD)
    try:
        chats = await client.get("/chats")
        css = await client.get("/static/css/app.css")
    finally:
        await client.aclose()
    assert chats.status_code == 200 and chats.http_version == "HTTP/2"
    _check_security_headers(chats.headers)
    assert "no-store" in chats.headers["cache-control"]
    assert css.status_code == 200
    assert css.headers["x-content-type-options"] == "nosniff"


async def test_login_form_post_from_the_real_page_passes_the_csrf_check(server: ServerProcess, browser: Any) -> None:
    """Referrer-Policy: no-referrer makes Chromium send ``Origin: null``; Sec-Fetch-Site decides."""
    server.create_user("csrf.check", PASSWORD, display_name="Csrf Check")
    context = await nojs_context(browser, server.base_url)
    try:
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)
        await cdp.send("Network.enable")
        protocols: dict[str, str] = {}
        cdp.on("Network.responseReceived", lambda e: protocols.__setitem__(e["response"]["url"], e["response"].get("protocol", "")))

        response = await page.goto("/login")
        assert response is not None and response.status == 200
        await page.fill("#username", "csrf.check")
        await page.fill("#password", PASSWORD)
        async with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/login")) as posted:
            await page.click("button[type=submit].primary")
        await page.wait_for_load_state()
        request = await posted.value
        headers = await request.all_headers()

        assert page.url == f"{server.base_url}/chats", await page.content()
        assert await page.locator("h1").first.inner_text() == "Chats"
        assert "Csrf Check" in await page.locator(".whoami").inner_text()
        # What the browser really sent: the pitfall this test exists for.
        assert headers.get("sec-fetch-site") == "same-origin"
        assert headers.get("origin") == "null", headers
        # Chromium itself spoke HTTP/2 to Hypercorn.
        assert protocols.get(f"{server.base_url}/login") == "h2", protocols
    finally:
        await context.close()


async def test_a_cross_site_form_post_is_refused(server: ServerProcess, browser: Any) -> None:
    """A form on another site that posts to /login gets 403 (Sec-Fetch-Site: cross-site)."""
    server.create_user("forge.target", PASSWORD, display_name="Forge Target")
    context = await nojs_context(browser)
    try:
        evil = (
            f'<!doctype html><form method="post" action="{server.base_url}/login">'
            '<input name="username" value="forge.target"><input name="password" value="x">'
            '<input name="csrf_token" value="guessed"><button id="go">go</button></form>'
        )

        async def serve_evil(route: Any) -> None:
            await route.fulfill(status=200, content_type="text/html", body=evil)

        await context.route("https://evil.example/**", serve_evil)
        page = await context.new_page()
        await page.goto("https://evil.example/")
        async with page.expect_response(lambda r: r.url == f"{server.base_url}/login") as answered:
            await page.click("#go")
        response = await answered.value
        request_headers = await response.request.all_headers()
        # Playwright does not always see the Sec-Fetch-* headers of this navigation; the
        # Origin it shows is enough to know the browser sent a cross-site POST.
        assert request_headers.get("origin") == "https://evil.example"
        assert response.status == 403
        assert "did not come from MedChat" in await page.locator("main").inner_text()
    finally:
        await context.close()


async def test_restart_keeps_data_on_the_same_ports(server: ServerProcess) -> None:
    server.create_user("restart.check", PASSWORD, display_name="Restart Check")
    before = (server.https_port, server.http_port)
    server.restart()
    assert (server.https_port, server.http_port) == before
    client = await login_client(server, "restart.check", PASSWORD)
    try:
        chats = await client.get("/chats")
    finally:
        await client.aclose()
    assert chats.status_code == 200 and "Restart Check" in chats.text
