"""The HTML side: blueprints, quart-auth, the login rate limit, filters and error pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, cast

from quart import Quart, request
from quart_auth import QuartAuth
from quart_rate_limiter import QUART_RATE_LIMITER_LIMITS_ATTRIBUTE, RateLimit, RateLimiter
from werkzeug.routing import IntegerConverter, ValidationError

from app.lib.clock import as_utc
from app.lib.devices import describe_device
from app.lib.ids import IdError, parse_id
from app.lib.text import preview, render_body
from app.lib.timefmt import day_label, display_zone, last_seen_label, when_label
from app.web.context import app_settings, client_ip, current_actor, svc
from app.web.security import cookie_name, register_security

# How long the signed session cookie outlives SESSION_MAX_SECONDS.
COOKIE_GRACE_SECONDS = 60 * 60


async def _rate_key() -> str:
    return client_ip()


class IdConverter(IntegerConverter):
    """``<int:...>`` for database ids, parsed by ``app.lib.ids`` like every other id.

    ASCII digits only (werkzeug's ``\\d+`` also takes "٣"), and beyond 64 bits a number
    names nothing (404), where passing it on would overflow the database driver (500).
    """

    regex = "[0-9]+"

    def to_python(self, value: str) -> int:
        try:
            return parse_id(value, minimum=0)
        except IdError:
            raise ValidationError() from None


def _limit_login(app: Quart) -> None:
    """Rate-limit POST /login per client address, as configured for this app.

    quart-rate-limiter reads its limits from an attribute of the view function; the
    blueprint's function is shared by every app in a process, so each app gets its own
    thin wrapper carrying its own limit. The per-account lockout is in do_login.
    """
    view = cast(Callable[..., Awaitable[Any]], app.view_functions["auth.login_submit"])

    @wraps(view)
    async def login_submit(*args: Any, **kwargs: Any) -> Any:
        return await view(*args, **kwargs)

    settings = app_settings(app)
    limit = RateLimit(settings.login_rate_limit, timedelta(seconds=settings.login_rate_period_seconds))
    setattr(login_submit, QUART_RATE_LIMITER_LIMITS_ATTRIBUTE, [limit])
    app.view_functions["auth.login_submit"] = login_submit


def register_web(app: Quart) -> None:
    settings = app_settings(app)
    app.url_map.converters["int"] = IdConverter
    app.config["QUART_AUTH_COOKIE_NAME"] = cookie_name(app, "medchat_session")
    app.config["QUART_AUTH_COOKIE_SECURE"] = settings.cookie_secure
    app.config["QUART_AUTH_COOKIE_SAMESITE"] = "Lax"
    app.config["QUART_AUTH_COOKIE_HTTP_ONLY"] = True
    # The session row decides. The signed cookie's own ceiling lies a little beyond the
    # absolute lifetime, so that the server still sees a cookie whose session ran out and
    # can end (and audit) it and tell the person why they were signed out.
    app.config["QUART_AUTH_DURATION"] = settings.session_max_seconds + COOKIE_GRACE_SECONDS
    app.config["QUART_AUTH_SALT"] = "medchat session"
    QuartAuth(app)

    store = None
    if settings.redis_url:
        from quart_rate_limiter.redis_store import RedisStore

        store = RedisStore(settings.redis_url)
    RateLimiter(app, key_function=_rate_key, store=store, enabled=settings.rate_limit_enabled)

    register_security(app)
    from app.web.confirmations import register_confirmations

    register_confirmations(app)

    zone = display_zone(settings.display_timezone)  # resolved by load_config; the page's data-tz

    def local(value: datetime) -> datetime:
        return as_utc(value).astimezone(zone)

    def now() -> datetime:
        return svc().clock.now()

    app.jinja_env.filters["render_body"] = render_body
    app.jinja_env.filters["preview"] = preview
    app.jinja_env.filters["hhmm"] = lambda v: local(v).strftime("%H:%M")
    app.jinja_env.filters["day"] = lambda v: day_label(v, now(), zone)
    app.jinja_env.filters["when"] = lambda v: when_label(v, now(), zone)
    app.jinja_env.filters["last_seen"] = lambda v: last_seen_label(v, now(), zone)
    app.jinja_env.filters["list_when"] = lambda v: when_label(v, now(), zone, with_time=False)
    app.jinja_env.filters["stamp"] = lambda v: local(v).strftime("%Y-%m-%d %H:%M:%S %Z")
    app.jinja_env.filters["device"] = describe_device
    app.jinja_env.globals["me"] = current_actor

    @app.context_processor
    def _settings() -> dict[str, Any]:
        """Pages read settings from the typed object too (``settings.page_size``), never config.X."""
        return {"settings": svc().settings}
    app.jinja_env.globals["request"] = request

    from app.web.admin import bp as admin_bp
    from app.web.auth import bp as auth_bp
    from app.web.chats import bp as chats_bp
    from app.web.errors import register_errors
    from app.web.files import bp as files_bp
    from app.web.files import upload_request_class
    from app.web.pwa import bp as pwa_bp

    app.request_class = upload_request_class(settings.upload_max_bytes)
    for bp in (auth_bp, chats_bp, admin_bp, pwa_bp, files_bp):
        app.register_blueprint(bp)
    _limit_login(app)
    register_errors(app)
