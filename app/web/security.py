"""Sessions, CSRF, origin checks, HTTPS redirect and the headers every response carries."""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup
from quart import Quart, Response, abort, current_app, g, redirect, request, url_for, websocket
from quart_auth import current_user, logout_user
from werkzeug.exceptions import BadRequest, Forbidden

from app.actions import Actor, audit
from app.actions.auth import EndedSession, check_session
from app.lib.hosts import allowed_host_names, host_name
from app.lib.tokens import keyed_digest, same
from app.vocab import AuditAction
from app.web.context import app_settings, client_ip, safe_next, svc
from app.web.files import is_upload

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; manifest-src 'self'; worker-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# The no-JS message pane is the one page MedChat itself shows in a frame (the open
# conversation page without JavaScript): same-origin framing there, nowhere else.
FRAMEABLE_ENDPOINTS = frozenset({"chats.message_pane"})
CSP_SAME_ORIGIN_FRAME = CSP.replace("frame-ancestors 'none'", "frame-ancestors 'self'")
PERMISSIONS = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"


def cookie_name(app: Quart, base: str) -> str:
    """``__Host-`` names need Secure, path / and no domain: the browser enforces all three."""
    return f"__Host-{base}" if app_settings(app).cookie_secure else base


def csrf_token() -> str:
    """The token forms carry: an HMAC of a random per-browser seed and the session."""
    seed = g.get("csrf_seed")
    if seed is None:
        seed = request.cookies.get(cookie_name(current_app, "medchat_csrf")) or ""
        if len(seed) < 32:
            seed = secrets.token_urlsafe(32)
            g.csrf_new_seed = seed
        g.csrf_seed = seed
    session = g.actor.session_id if g.get("actor") else ""
    return keyed_digest(svc().settings.secret_key, "csrf", seed, session)


def _origin_ok() -> bool:
    """Trust Sec-Fetch-Site first (browsers send ``Origin: null`` under no-referrer)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser, or a very old one: the token still has to match
    own = f"{request.scheme}://{request.host}"
    return origin == own or origin in svc().settings.allowed_origins


async def check_csrf() -> None:
    if request.method not in UNSAFE_METHODS:
        return
    if not _origin_ok():
        await _refuse("cross-site request")
    if is_upload(request.path):
        # An upload's body is a file, read as it arrives by its view (app/web/files.py):
        # parsing it as a form here would read all of it first. Its token is in the header.
        sent = request.headers.get("X-CSRF-Token") or ""
    else:
        form = await request.form
        sent = form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    seed = request.cookies.get(cookie_name(current_app, "medchat_csrf")) or ""
    if len(seed) < 32 or not same(sent, csrf_token()):
        await _refuse("bad or missing CSRF token")


async def _refuse(reason: str) -> None:
    await audit.record_alone(svc(), g.get("actor"), AuditAction.CSRF_REFUSED, ip=client_ip(), detail=f"{request.method} {request.path}: {reason}"[:200])
    raise Forbidden("This form has expired or did not come from MedChat. Go back, reload the page and try again.")


async def load_session() -> Any:
    """Find the server-side session behind quart-auth's cookie, or forget the cookie.

    A cookie whose session has ended (idle, lifetime, deactivated, ended elsewhere) gets a
    303 to the login page saying why, carrying Clear-Site-Data: the login page is then
    fetched afresh and plants a new CSRF seed. (Rendered on the response that carries the
    wipe, its form would be derived from a seed the browser has just dropped.)
    """
    g.actor = None
    if request.path.startswith("/static/"):
        return None  # static files need no session: no database round trip for them
    token = current_user.auth_id
    if not token:
        return None
    # An automatic no-JS refresh is not the person being there: it must not hold off the idle timeout.
    found = await check_session(svc(), token, activity=request.args.get("auto") != "1", ip=client_ip())
    if isinstance(found, EndedSession):
        logout_user()
        if request.endpoint in _OPEN_WITH_A_DEAD_COOKIE:
            return None  # the cookie is forgotten; the page needs no session
        g.session_ended = True
        if request.endpoint in _FETCHED_BY_THE_BROWSER or request.endpoint in FRAMEABLE_ENDPOINTS:
            # The no-JS message frame says "signed out" itself: the login page refuses framing.
            return None
        target = request.args.get("next") if request.endpoint == "auth.login_form" else (request.full_path.rstrip("?") if request.method == "GET" else "/chats")
        return redirect(url_for("auth.login_form", next=safe_next(target), why=found.reason), 303)
    g.actor = Actor(user=found.user, session_id=found.session_id, ip=client_ip())
    return None


# Logging in over a dead cookie simply replaces it; a one-time setup or invite link opened
# in a browser whose old session ended must still show its form (a detour through the login
# page would lose the link).
_OPEN_WITH_A_DEAD_COOKIE = {"auth.login_submit", "auth.invite", "auth.setup"}

# Fetched by the browser on its own (not a page a person reads): no redirect to the login page.
_FETCHED_BY_THE_BROWSER = {"pwa.healthz", "pwa.service_worker", "pwa.manifest", "pwa.offline"}


def https_redirect() -> Any:
    """On the plain-HTTP port, answer every request but /healthz with a redirect to the same
    path under PUBLIC_URL: never to the Host the request named."""
    if svc().settings.https_redirect and request.scheme == "http" and request.path != "/healthz":
        return redirect(svc().settings.public_url + request.full_path.rstrip("?"), 308)
    return None


def _known_host(host: str) -> bool:
    allowed = current_app.extensions.get("medchat_hosts")
    if allowed is None:
        allowed = current_app.extensions["medchat_hosts"] = allowed_host_names(
            svc().settings.public_url, svc().settings.allowed_hosts
        )
    return host_name(host) in allowed


def check_host() -> None:
    """Refuse a request for a host that is not ours (400): a forged ``Host`` must never shape
    a page, a link or a redirect. /healthz answers any name (probes use addresses)."""
    if request.path != "/healthz" and not _known_host(request.host):
        raise BadRequest("This server does not answer for that host name.")


def check_websocket_host() -> None:
    if not _known_host(websocket.host):
        abort(400)


async def add_headers(response: Response) -> Response:
    h = response.headers
    framed = request.endpoint in FRAMEABLE_ENDPOINTS
    h["Content-Security-Policy"] = CSP_SAME_ORIGIN_FRAME if framed else CSP
    h["X-Content-Type-Options"] = "nosniff"
    h["X-Frame-Options"] = "SAMEORIGIN" if framed else "DENY"
    h["Referrer-Policy"] = "no-referrer"
    h["Permissions-Policy"] = PERMISSIONS
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    h["Cross-Origin-Resource-Policy"] = "same-origin"
    if request.is_secure:
        h["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
    if request.path.startswith("/static/"):
        h.setdefault("Cache-Control", "no-cache")
    else:
        # Authenticated pages hold clinical text; the rest is cheap to re-fetch.
        h["Cache-Control"] = "no-store"
        h["Pragma"] = "no-cache"
    seed = g.get("csrf_new_seed")
    if seed:
        response.set_cookie(
            cookie_name(current_app, "medchat_csrf"), seed, path="/", secure=svc().settings.cookie_secure,
            httponly=True, samesite="Lax",
        )
    elif g.get("session_ended") or g.get("clear_site_data"):
        # Not on a response that also plants a fresh CSRF seed: the browser would drop it.
        h["Clear-Site-Data"] = '"cache", "cookies", "storage"'
    return response


def idle_lock_refresh() -> Markup:
    """A ``<noscript>`` refresh that locks an unattended page without JavaScript.

    Every signed-in page reloads itself a few seconds after the idle timeout, with
    ``auto=1`` (never activity) and a changing ``n`` (a reload to the same URL plus a
    fragment would only be an in-page jump). By then nothing on the page counted as
    activity, so the reload finds the session ended and lands on the login page, which
    says why. Pages with their own refresh (chat list, conversation) replace this block.
    With JavaScript the socket's session check does the same.
    """
    if g.get("actor") is None:
        return Markup("")
    if request.method == "GET" and request.url_rule is not None and safe_next(request.path) == request.path:
        args = [(k, v) for k, v in request.args.items(multi=True) if k not in ("auto", "n")]
        path = request.path
    else:
        # A page drawn by a POST (its GET may not exist), or an error page for a path that
        # is no route: ``//evil.example/x`` must never become a refresh to another site.
        args, path = [], url_for("chats.chat_list")
    seconds = int(svc().settings.session_idle_seconds) + IDLE_LOCK_MARGIN_SECONDS
    target = path + "?" + urlencode([*args, ("auto", "1"), ("n", str(int(time.time())))])
    return Markup('<noscript><meta http-equiv="refresh" content="{}"></noscript>').format(f"{seconds};url={target}")


# Seconds past the idle timeout before a page without JavaScript reloads itself to lock.
IDLE_LOCK_MARGIN_SECONDS = 5


def register_security(app: Quart) -> None:
    app.before_request(https_redirect)
    app.before_request(check_host)
    app.before_websocket(check_websocket_host)
    app.before_request(load_session)
    app.before_request(check_csrf)
    app.after_request(add_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["idle_lock_refresh"] = idle_lock_refresh
