"""What actions need from the running process: database, broker, hub, clock, hashing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.blobs import BlobStore
from app.lib.cache import VersionedCache
from app.lib.clock import Clock
from app.lib.passwords import PasswordHashing, PasswordPolicy
from app.lib.ratelimit import ChangeThrottle
from app.media.sandbox import MediaSandbox
from app.realtime.broker import Broker
from app.realtime.events import Event
from app.realtime.hub import Hub
from app.realtime.ratelimit import SharedLimits
from app.settings import Settings
from app.store.db import Database
from app.store.writer import GroupWriter


@dataclass
class Services:
    config: Mapping[str, Any]
    settings: Settings
    db: Database
    broker: Broker
    hub: Hub
    clock: Clock
    passwords: PasswordHashing
    # Shared by every process through Redis when REDIS_URL is set (app/realtime/ratelimit.py).
    message_buckets: SharedLimits
    handshake_buckets: SharedLimits
    typing_throttle: ChangeThrottle
    writer: GroupWriter  # group commit of the sends (app/store/writer.py)
    blobs: BlobStore  # shared files' bytes (app/blobs)
    media: MediaSandbox  # photo and PDF work in a subprocess (app/media)
    incoming: Path  # uploads being received: private, on the blob store's file system
    # Member lists by conversation, good while its members_version stands (actions/messages.py).
    members: VersionedCache[int, dict[int, int]] = field(default_factory=lambda: VersionedCache(10_000))
    published: list[Event] = field(default_factory=list)  # filled only when recording
    uploads_open: int = 0  # uploads being received by this process (UPLOAD_CONCURRENCY)

    @property
    def policy(self) -> PasswordPolicy:
        return PasswordPolicy(
            min_chars=self.settings.password_min_chars,
            max_chars=self.settings.password_max_chars,
            min_score=self.settings.password_min_score,
        )

    async def publish(self, event: Event) -> None:
        """Hand an event to the broker. Call only after the transaction committed."""
        if self.settings.record_events:
            self.published.append(event)
        await self.broker.publish(event)
