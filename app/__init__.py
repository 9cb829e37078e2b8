"""MedChat: create_app() builds the Quart application; nothing happens at import time."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from quart import Quart

from app.config import instance_path_from_env, load_config

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict[str, Any] | None = None) -> Quart:
    """Build the app: configuration, extensions, blueprints, headers, error pages."""
    app = Quart(
        __name__,
        instance_path=instance_path_from_env() or str(ROOT / "instance"),
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        static_url_path="/static",
    )
    load_config(app, test_config)

    from app.lib.clock import Clock
    from app.lib.passwords import PasswordHashing
    from app.lib.ratelimit import ChangeThrottle, TokenBuckets
    from app.realtime.hub import Hub
    from app.services import Services
    from app.store.db import Database

    clock = app.config.get("CLOCK") or Clock()
    hub = Hub(app.config["PRESENCE_BATCH_SECONDS"])
    services = Services(
        config=app.config,
        db=Database(app.config["DATABASE_URL"], app.config["DATABASE_POOL_SIZE"]),
        broker=_make_broker(app.config),
        hub=hub,
        clock=clock,
        # Tests may hand in a cheaper hasher object (the settings themselves refuse low costs);
        # tests/test_config.py, tests/actions/test_accounts_actions.py and tests/test_cli.py
        # prove the real ones and that only a TESTING dict may hand one in.
        passwords=app.config.get("PASSWORD_HASHING") or PasswordHashing(
            app.config["ARGON2_MEMORY_KIB"], app.config["ARGON2_TIME_COST"], app.config["ARGON2_PARALLELISM"]
        ),
        message_buckets=TokenBuckets(
            app.config["MESSAGE_RATE"], app.config["MESSAGE_RATE_PERIOD_SECONDS"],
            app.config["MESSAGE_BURST"], clock.monotonic,
        ),
        typing_throttle=ChangeThrottle(app.config["TYPING_MIN_INTERVAL_SECONDS"], clock.monotonic),
    )
    app.extensions["medchat"] = services

    @app.before_serving
    async def _open() -> None:
        if app.config.get("MIGRATE_ON_START", True):
            await services.db.upgrade_to_head()
        await services.broker.start(hub.handle)
        if app.config["SESSION_SWEEP_SECONDS"]:
            from app.actions.auth import sweep_sessions_forever

            app.extensions["medchat_session_sweep"] = asyncio.create_task(
                sweep_sessions_forever(services, float(app.config["SESSION_SWEEP_SECONDS"])), name="session-sweep"
            )

    @app.after_serving
    async def _close() -> None:
        sweep = app.extensions.get("medchat_session_sweep")
        if sweep is not None:
            sweep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweep
        await services.broker.stop()
        await services.db.dispose()

    from app.web import register_web

    register_web(app)

    from app.ws import register_ws

    register_ws(app)

    from app.cli import register_cli

    register_cli(app)
    return app


def _make_broker(config: Any) -> Any:
    if config.get("REDIS_URL"):
        from app.realtime.redis_broker import RedisBroker

        return RedisBroker(config["REDIS_URL"])
    from app.realtime.broker import LocalBroker

    return LocalBroker()
