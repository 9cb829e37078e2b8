"""What a request handler needs: the services, who is calling, and the login guard."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar, cast
from urllib.parse import parse_qsl, urlencode

from quart import Quart, current_app, g, redirect, request, url_for
from werkzeug.exceptions import BadRequest, Forbidden

from app.actions import Actor
from app.lib.forwarded import peer_address
from app.lib.ids import IdError, parse_id
from app.services import Services
from app.settings import Settings

# Query parameters only an automatic no-JS refresh adds: they must not survive a login, where
# ``auto=1`` would make the person's first page look like a refresh (no read receipt).
REFRESH_ONLY_PARAMS = frozenset({"auto", "n"})

P = ParamSpec("P")
T = TypeVar("T")


def svc() -> Services:
    return cast(Services, current_app.extensions["medchat"])


def app_settings(app: Quart) -> Settings:
    """The settings while the app is being put together (no request yet)."""
    return cast(Services, app.extensions["medchat"]).settings


def id_arg(name: str, raw: str | None, *, minimum: int = 1) -> int | None:
    """An optional id (or, with ``minimum`` 0, a watermark or counter) from a query string or
    a form field: absent or empty is None.

    Anything but plain ASCII digits naming a possible id is a 400 (``app.lib.ids``).
    """
    if raw is None or raw == "":
        return None
    try:
        return parse_id(raw, minimum=minimum)
    except IdError:
        raise BadRequest(f"{name} must be a {'positive ' if minimum else ''}whole number.") from None


def client_ip() -> str:
    """The requesting client's address (X-Forwarded-For only behind a trusted proxy)."""
    return peer_address(request.headers.get("X-Forwarded-For"), request.remote_addr, svc().settings.trusted_proxy_count)


def actor() -> Actor:
    """The logged-in caller (only inside ``login_required`` views)."""
    return cast(Actor, g.actor)


def current_actor() -> Actor | None:
    return cast(Actor | None, g.get("actor"))


def login_required(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[Any]]:
    """Send anonymous visitors to the login page, coming back here afterwards."""

    @wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        if g.get("actor") is None:
            target = request.full_path if request.method == "GET" else "/chats"
            return redirect(url_for("auth.login_form", next=target.rstrip("?")), 303)
        return await func(*args, **kwargs)

    return wrapper


def admin_required(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[Any]]:
    @wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        if g.get("actor") is None:
            return redirect(url_for("auth.login_form", next=request.full_path.rstrip("?")), 303)
        if not cast(Actor, g.actor).user.is_admin:
            raise Forbidden("Only administrators can open this page.")
        return await func(*args, **kwargs)

    return wrapper


def safe_next(target: str | None) -> str:
    """A local path to go to after login; anything else becomes /chats.

    Browsers drop tabs and newlines inside URLs, so ``/<TAB>/evil.example`` would become
    ``//evil.example``: white space and control characters are refused outright. The
    parameters of an automatic refresh (``auto``, ``n``) are dropped.
    """
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in target)
    ):
        return _without_refresh_params(target)
    return "/chats"


def _without_refresh_params(target: str) -> str:
    path, sep, rest = target.partition("?")
    if not sep:
        return target
    query, hash_sep, fragment = rest.partition("#")
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if k not in REFRESH_ONLY_PARAMS]
    if len(kept) == len(pairs):
        return target
    return path + ("?" + urlencode(kept) if kept else "") + hash_sep + fragment
