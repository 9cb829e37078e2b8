"""This process's open sockets, by user and by session, and who is online anywhere."""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from collections import defaultdict
from typing import Any, Protocol

from app.lib.clock import Clock
from app.protocol import dumps
from app.realtime.events import Event
from app.vocab import CloseCode, EventKind

# Close codes (docs/protocol.md).
CLOSE_SESSION_ENDED = CloseCode.SESSION_ENDED
CLOSE_SLOW_CONSUMER = CloseCode.SLOW_CONSUMER


class Connection(Protocol):
    socket_id: str
    user_id: int
    session_id: str

    def offer(self, frame: str, position: int | None = None) -> bool:
        """Queue a frame (of the change at ``position``, if any) without waiting; False when
        the queue is full."""

    def close_soon(self, code: int, reason: str) -> None:
        """Ask the connection to close with ``code``."""


class Hub:
    """Routes events to the sockets of the users they name. Serialises a frame once.

    Presence mechanics only (the rules are in ``app/actions/presence.py``): ``claims[user]``
    is the set of processes (``instance_id``) that say they hold a socket of that user; the
    user is online while the set is not empty. Presence frames go out only when that
    changes, batched per recipient for ``presence_batch_seconds`` of ``clock`` time.

    Every other process is heard from now and then (its presence events, its
    ``INSTANCE_ALIVE`` heartbeats); ``silent_instances`` names those not heard from for a
    while, or that said they are stopping (``INSTANCE_GONE``), with the users they claim, so
    that ``app/actions/presence.py`` can take those claims back as ordinary "offline" events.
    """

    def __init__(self, presence_batch_seconds: float = 0.0, clock: Clock | None = None) -> None:
        self.instance_id = uuid.uuid4().hex
        # Presence changes wait this long and go out together (0: at once).
        self.presence_batch_seconds = presence_batch_seconds
        self.clock = clock or Clock()
        self._presence_pending: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
        self._presence_flush: asyncio.Task[None] | None = None
        self._by_user: dict[int, dict[str, Connection]] = defaultdict(dict)
        self._by_session: dict[str, dict[str, Connection]] = defaultdict(dict)
        self.claims: dict[int, set[str]] = defaultdict(set)
        self._heard: dict[str, float] = {}  # other instance -> clock.monotonic() when last heard
        self._departed = asyncio.Event()

    def add(self, conn: Connection) -> bool:
        """Register a socket; True when it is the user's first on this process."""
        first = not self._by_user.get(conn.user_id)
        self._by_user[conn.user_id][conn.socket_id] = conn
        self._by_session[conn.session_id][conn.socket_id] = conn
        return first

    def remove(self, conn: Connection) -> bool:
        """Unregister a socket; True when it was the user's last on this process."""
        sockets = self._by_user.get(conn.user_id, {})
        sockets.pop(conn.socket_id, None)
        by_session = self._by_session.get(conn.session_id, {})
        by_session.pop(conn.socket_id, None)
        if not by_session:
            self._by_session.pop(conn.session_id, None)
        if not sockets:
            self._by_user.pop(conn.user_id, None)
            return True
        return False

    def has_local(self, user_id: int) -> bool:
        return bool(self._by_user.get(user_id))

    def is_online(self, user_id: int) -> bool:
        return bool(self.claims.get(user_id)) or self.has_local(user_id)

    def connection_count(self) -> int:
        return sum(len(v) for v in self._by_user.values())

    async def handle(self, event: Event) -> None:
        """Deliver an event that came through the broker."""
        if event.kind in (EventKind.INSTANCE_ALIVE, EventKind.PRESENCE, EventKind.INSTANCE_GONE):
            self._heard_from(event)
            if event.kind != EventKind.PRESENCE:
                return
        for session_id in event.session_ids:
            for conn in list(self._by_session.get(session_id, {}).values()):
                conn.close_soon(CLOSE_SESSION_ENDED, "session ended")
        if event.kind == EventKind.PRESENCE:
            if not self._presence_changed(event):
                return
            if self.presence_batch_seconds > 0:
                self._hold_presence(event)
                return
        if event.kind == EventKind.SYNC_NEEDED:
            self.broadcast(dumps({"type": "sync_needed"}))
            return
        if not event.user_ids or not event.data:
            return
        frame = dumps(event.data)
        self.deliver(event.user_ids, frame, except_socket=event.except_socket, position=event.position)

    def _heard_from(self, event: Event) -> None:
        origin = event.origin
        if origin is None or origin == self.instance_id:
            return
        if event.kind == EventKind.INSTANCE_GONE:
            self._heard[origin] = -math.inf  # silent from now on: its claims go at once
            self._departed.set()
        elif event.kind == EventKind.PRESENCE and not event.data.get("online"):
            return  # not a sign of life: claims taken back here look the same
        elif self._heard.get(origin) != -math.inf:  # a late event of a departed one stays departed
            self._heard[origin] = self.clock.monotonic()

    def silent_instances(self, ttl: float) -> dict[str, list[int]]:
        """Forget the other instances not heard from for ``ttl`` seconds (or departed);
        return each one's claimed users (the caller takes the claims back)."""
        cutoff = self.clock.monotonic() - ttl
        silent = [origin for origin, heard in self._heard.items() if heard <= cutoff]
        found: dict[str, list[int]] = {}
        for origin in silent:
            del self._heard[origin]
            found[origin] = sorted(user for user, origins in self.claims.items() if origin in origins)
        return found

    async def until_departure(self, seconds: float) -> None:
        """Wait ``seconds`` of clock time, or less if an instance says it is stopping."""
        if self._departed.is_set():
            self._departed.clear()
            return
        waits = [
            asyncio.ensure_future(self.clock.sleep(seconds)),
            asyncio.ensure_future(self._departed.wait()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        self._departed.clear()

    def _hold_presence(self, event: Event) -> None:
        """Keep the newest state per (recipient here, subject); flush them together."""
        subject = int(event.data["user_id"])
        for recipient in event.user_ids:
            if self.has_local(recipient):
                self._presence_pending[recipient][subject] = event.data
        if self._presence_pending and self._presence_flush is None:
            self._presence_flush = asyncio.create_task(self._flush_later(), name="presence-batch")

    async def _flush_later(self) -> None:
        await self.clock.sleep(self.presence_batch_seconds)
        self._presence_flush = None
        self.flush_presence()

    def flush_presence(self) -> None:
        """Send what ``_hold_presence`` kept: one frame per recipient socket."""
        pending, self._presence_pending = self._presence_pending, defaultdict(dict)
        for recipient, changes in pending.items():
            if len(changes) == 1:
                frame = dumps(next(iter(changes.values())))
            else:
                users = [
                    {"user_id": d["user_id"], "online": d["online"], "last_seen": d["last_seen"]}
                    for d in changes.values()
                ]
                frame = dumps({"type": "presence_batch", "users": users})
            self.deliver([recipient], frame)

    def _presence_changed(self, event: Event) -> bool:
        user_id = int(event.data["user_id"])
        before = bool(self.claims.get(user_id))
        origin = event.origin or "?"
        if event.data.get("online"):
            self.claims[user_id].add(origin)
        else:
            self.claims[user_id].discard(origin)
            if not self.claims[user_id]:
                del self.claims[user_id]
        return before != bool(self.claims.get(user_id))

    def deliver(
        self, user_ids: tuple[int, ...] | list[int], frame: str, except_socket: str | None = None, position: int | None = None
    ) -> None:
        for user_id in user_ids:
            for conn in list(self._by_user.get(user_id, {}).values()):
                if conn.socket_id == except_socket:
                    continue
                if not conn.offer(frame, position):
                    conn.close_soon(CLOSE_SLOW_CONSUMER, "slow consumer, resync")

    async def stop(self) -> None:
        """Drop a batch still waiting for its window (the process is stopping)."""
        task, self._presence_flush = self._presence_flush, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def broadcast(self, frame: str) -> None:
        """Send a frame to every socket of this process."""
        for sockets in list(self._by_user.values()):
            for conn in list(sockets.values()):
                if not conn.offer(frame):
                    conn.close_soon(CLOSE_SLOW_CONSUMER, "slow consumer, resync")
