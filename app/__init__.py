"""MedChat: create_app() builds the Quart application; nothing happens at import time."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from pathlib import Path
from typing import Any

from quart import Quart

from app.config import instance_path_from_env, load_config
from app.settings import Settings

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

    from app.blobs.local import LocalBlobStore
    from app.lib.clock import Clock
    from app.lib.passwords import PasswordHashing
    from app.lib.ratelimit import ChangeThrottle
    from app.media.sandbox import MediaSandbox
    from app.realtime.hub import Hub
    from app.realtime.ratelimit import SharedLimits
    from app.services import Services
    from app.store.db import Database
    from app.store.messages import commit_in_position_order
    from app.store.writer import GroupWriter

    settings = Settings.from_config(app.config)  # once: every value's type checked here

    clock = app.config.get("CLOCK") or Clock()
    hub = Hub(settings.presence_batch_seconds, clock)
    db = Database(settings.database_url, settings.database_pool_size)
    services = Services(
        config=app.config,
        settings=settings,
        db=db,
        writer=GroupWriter(db, first=commit_in_position_order),
        blobs=LocalBlobStore(Path(settings.files_path) / "objects"),
        media=MediaSandbox(
            concurrency=settings.media_workers, timeout=settings.media_timeout_seconds,
            memory_bytes=settings.media_memory_mib * 1024 * 1024, cpu_seconds=settings.media_cpu_seconds,
        ),
        incoming=Path(settings.files_path) / "incoming",
        broker=_make_broker(settings),
        hub=hub,
        clock=clock,
        # Tests may hand in a cheaper hasher object (the settings themselves refuse low costs);
        # tests/test_config.py, tests/actions/test_accounts_actions.py and tests/test_cli.py
        # prove the real ones and that only a TESTING dict may hand one in.
        passwords=app.config.get("PASSWORD_HASHING") or PasswordHashing(
            settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism
        ),
        message_buckets=SharedLimits(
            "messages", settings.message_rate, settings.message_rate_period_seconds, settings.message_burst,
            clock.monotonic, settings.redis_url, settings.rate_limit_key_prefix,
        ),
        handshake_buckets=SharedLimits(
            "handshakes", settings.ws_handshakes_per_minute, 60, settings.ws_handshakes_per_minute,
            clock.monotonic, settings.redis_url, settings.rate_limit_key_prefix,
        ),
        typing_throttle=ChangeThrottle(settings.typing_min_interval_seconds, clock.monotonic),
    )
    app.extensions["medchat"] = services

    @app.before_serving
    async def _open() -> None:
        if settings.gc_thresholds:  # process-wide: put back when the app stops serving
            app.extensions["medchat_gc_thresholds"] = gc.get_threshold()
            gc.set_threshold(*settings.gc_thresholds)
        if settings.migrate_on_start:
            await services.db.upgrade_to_head()
        await services.broker.start(hub.handle)
        if settings.redis_url:  # other processes exist only with Redis
            from app.actions.presence import keep_presence_alive

            app.extensions["medchat_presence_heartbeat"] = asyncio.create_task(
                keep_presence_alive(services), name="presence-heartbeat"
            )
        if settings.session_sweep_seconds:
            from app.actions.auth import sweep_sessions_forever

            app.extensions["medchat_session_sweep"] = asyncio.create_task(
                sweep_sessions_forever(services, float(settings.session_sweep_seconds)), name="session-sweep"
            )
        if settings.files_sweep_seconds:
            from app.actions.files import sweep_files_forever

            app.extensions["medchat_files_sweep"] = asyncio.create_task(
                sweep_files_forever(services, settings.files_sweep_seconds), name="files-sweep"
            )

    @app.after_serving
    async def _close() -> None:
        if "medchat_gc_thresholds" in app.extensions:
            gc.set_threshold(*app.extensions.pop("medchat_gc_thresholds"))
        ws_state = app.extensions.get("medchat_ws")  # app/ws/endpoint.py WsState
        if ws_state is not None:
            await ws_state.stop()
        for name in ("medchat_session_sweep", "medchat_files_sweep", "medchat_presence_heartbeat"):
            task = app.extensions.get(name)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if "medchat_presence_heartbeat" in app.extensions:
            from app.actions.presence import depart

            await depart(services)
        await services.broker.stop()
        await hub.stop()
        await services.message_buckets.close()
        await services.handshake_buckets.close()
        await services.writer.stop()
        await services.db.dispose()

    from app.web import register_web

    register_web(app)

    from app.ws import register_ws

    register_ws(app)

    from app.cli import register_cli

    register_cli(app)
    return app


def _make_broker(settings: Settings) -> Any:
    if settings.redis_url:
        from app.realtime.redis_broker import RedisBroker

        return RedisBroker(settings.redis_url)
    from app.realtime.broker import LocalBroker

    return LocalBroker()
