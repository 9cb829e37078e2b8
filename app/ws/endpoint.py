"""The /ws endpoint: a second door into the same actions as the forms.

One socket per browser tab. The handler receives in its own task and sends from a bounded
queue in another, both cancelled in ``finally``; the process's one ``Heartbeat``
(app/ws/heartbeat.py) pings it and re-checks its session.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, cast

from quart import Quart, abort, current_app, websocket
from quart_auth import current_user

from app.actions import Actor
from app.actions.auth import ResolvedSession, resolve_session, resolve_sessions, touch_sessions
from app.actions.errors import ActionError
from app.actions.frames import message_dict
from app.actions.messages import do_send_message
from app.actions.presence import socket_closed, socket_opened
from app.actions.receipts import do_mark_delivered, do_mark_read
from app.actions.stream import legacy_position, missed_changes
from app.actions.typing import do_typing
from app.lib.batch import Batcher
from app.lib.clock import Clock
from app.lib.errors import Unavailable
from app.lib.forwarded import peer_address
from app.lib.ids import parse_position
from app.lib.ratelimit import Limiter
from app.protocol import (
    CLOSE_HEARTBEAT,
    CLOSE_SESSION_ENDED,
    CLOSE_SLOW_CONSUMER,
    CLOSE_TOO_BIG,
    FrameError,
    Pong,
    Send,
    Sync,
    Typing,
    Watermark,
    dumps,
    error_frame,
    parse_frame,
)
from app.services import Services
from app.ws.access_log import redact_access_log
from app.ws.deflate import disable_permessage_deflate
from app.ws.frame_limit import refuse_oversized_frames
from app.ws.frame_queue import Flag, FrameQueue
from app.ws.heartbeat import Heartbeat
from app.ws.plain_http import http1_only_on_plain_http
from app.ws.tls_buffer import share_tls_read_buffer, shrink_tls_read_buffer
from app.ws.tls_close import quiet_tls_close

log = logging.getLogger("medchat.ws")

BATCH_FRAMES = 64  # at most this many frames in one batched WebSocket message
BATCH_CHARS = 48 * 1024  # and (roughly) no more characters than this, then the rest next time


@dataclass
class WsState:
    handshakes: Limiter
    heartbeat: Heartbeat
    # The heartbeats' session re-checks, one query a batch (app/lib/batch.py), and the
    # handshakes' (those arriving in the same turn of the loop: a reconnect storm).
    session_checks: Batcher[str, ResolvedSession | None]
    handshake_sessions: Batcher[str, ResolvedSession | None]
    # The sockets' activity on sessions known to be live: one UPDATE a batch, not waited for.
    session_touches: Batcher[str, None]
    background: set[asyncio.Task[Any]] = field(default_factory=set)

    async def stop(self) -> None:
        """The app stops serving: no more heartbeats, and no session read left running (the
        app calls this before it closes the database: a read still running then would leave
        its connection unclosed)."""
        self.heartbeat.stop()
        for task in list(self.background):
            task.cancel()
        await self.session_checks.drain()
        await self.handshake_sessions.drain()
        await self.session_touches.drain()


class SocketConnection:
    """One accepted socket: a bounded queue of frames and a request to close."""

    def __init__(self, user_id: int, session_id: str, queue_size: int, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.socket_id = uuid.uuid4().hex
        self.user_id = user_id
        self.session_id = session_id
        self.queue: FrameQueue[str] = FrameQueue(queue_size)
        self.closing: tuple[int, str] | None = None
        self.closed = Flag()
        self.resuming = False
        self.held: list[tuple[str, int | None]] = []
        # The newest position a sync page of this socket carried. A live frame of a change at
        # or below it was in a page already (positions commit in order: every change up to it
        # had committed when the page was read), or is not this member's to see, and is not
        # sent again: its wake-up may cross Redis after the resume ended
        # (tests/realtime/test_stream_two_processes.py).
        self.covered = 0
        self.last_heard = self.clock.monotonic()

    def offer(self, frame: str, position: int | None = None) -> bool:
        if self.closing is not None:
            return True
        if self.resuming:
            self.held.append((frame, position))
            return len(self.held) <= self.queue.maxsize
        if position is not None and position <= self.covered:
            return True  # the socket had it in a sync page
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            return False
        return True

    def close_soon(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = (code, reason)
        self.closed.set()


def _svc() -> Services:
    return cast(Services, current_app.extensions["medchat"])


def _state() -> WsState:
    return cast(WsState, current_app.extensions["medchat_ws"])


def _peer() -> str:
    return peer_address(websocket.headers.get("X-Forwarded-For"), websocket.remote_addr, _svc().settings.trusted_proxy_count)


def _origin_allowed() -> bool:
    origin = websocket.headers.get("Origin")
    if origin is None:
        return True  # not a browser: the session cookie is still required
    scheme = "https" if websocket.scheme in ("wss", "https") else "http"
    own = f"{scheme}://{websocket.host}"
    return origin == own or origin in _svc().settings.allowed_origins


def register(app: Quart) -> None:
    settings = cast(Services, app.extensions["medchat"]).settings
    # Hypercorn adaptations (each module says why); all idempotent, all process-wide.
    if not settings.ws_permessage_deflate:
        disable_permessage_deflate()
    if settings.tls_read_buffer_bytes:
        shrink_tls_read_buffer(settings.tls_read_buffer_bytes)
    if settings.tls_shared_read_buffer:
        share_tls_read_buffer()
    refuse_oversized_frames(settings.ws_max_message_bytes)
    http1_only_on_plain_http()
    redact_access_log()
    quiet_tls_close(settings.tls_shutdown_seconds)
    services = cast(Services, app.extensions["medchat"])
    app.extensions["medchat_ws"] = WsState(
        handshakes=services.handshake_buckets,
        heartbeat=Heartbeat(services.clock, settings.ws_heartbeat_seconds, settings.ws_heartbeat_spread),
        session_checks=Batcher(functools.partial(resolve_sessions, services), settings.ws_session_check_batch_seconds),
        handshake_sessions=Batcher(functools.partial(resolve_sessions, services), 0),
        session_touches=Batcher(functools.partial(touch_sessions, services), settings.ws_session_check_batch_seconds),
    )
    # Stopped by the app's own after_serving (app/__init__.py), before the database closes.

    app.add_websocket("/ws", "ws", ws_endpoint)


async def ws_endpoint() -> None:
    """Authenticate the handshake, then serve the socket until it or its session ends."""
    if _svc().settings.https_redirect and websocket.scheme not in ("wss", "https"):
        abort(403)  # the plain-HTTP port only redirects: no cleartext socket, no cookie read
    svc = _svc()
    if not _origin_allowed():
        abort(403)
    token = current_user.auth_id
    resolved = await _state().handshake_sessions.ask(token) if token else None
    if resolved is None:
        abort(401)
    ip = _peer()
    state = _state()
    if await state.handshakes.take(("user", resolved.user.id)) or await state.handshakes.take(("ip", ip)):
        abort(429)
    await websocket.accept()
    handler = SocketHandler(svc, state, Actor(resolved.user, resolved.session_id, ip), cast(str, token), resolved)
    await handler.run()


class SocketHandler:
    """Serves one accepted socket: its send and receive tasks and its heartbeat, for one actor."""

    def __init__(self, svc: Services, state: WsState, actor: Actor, token: str, session: ResolvedSession) -> None:
        self.svc = svc
        self.state = state
        self.actor = actor
        self.token = token
        self.settings = svc.settings
        self.clock = svc.clock
        self.conn = SocketConnection(actor.user.id, cast(str, actor.session_id), self.settings.ws_send_queue, self.clock)
        self.last_touch = self.clock.monotonic()
        self.session = session  # as last read or touched: when it runs out unless used

    async def run(self) -> None:
        conn, hub = self.conn, self.svc.hub
        since = parse_position(websocket.args.get("since", ""))
        # v1 clients resume after a message id (docs/protocol.md, migration).
        legacy_after = None if since is not None else parse_position(websocket.args.get("after", ""))
        resume = (since, None) if since is not None else (None, legacy_after) if legacy_after is not None else None
        conn.resuming = resume is not None
        first = hub.add(conn)
        # The resume runs in the receive task: closing the socket (slow consumer, heartbeat,
        # session end) cancels it even when the peer stopped reading in the middle of it.
        tasks = [
            asyncio.create_task(self._guarded(self._send_loop()), name="ws-send"),
            asyncio.create_task(self._guarded(self._receive_loop(resume)), name="ws-receive"),
        ]
        beat = self.state.heartbeat.add(self._beat)
        try:
            conn.queue.put_nowait(dumps({
                "type": "hello", "user_id": self.actor.user.id, "socket_id": conn.socket_id,
                "heartbeat": self.settings.ws_heartbeat_seconds, "max_frame": self.settings.ws_max_message_bytes,
            }))
            try:
                self._reply(dumps(await socket_opened(self.svc, self.actor.user.id, first)))
            except Unavailable:
                log.warning("presence skipped: the database is busy")  # the socket works without it
            await conn.closed.wait()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("socket handler failed")
            conn.close_soon(1011, "server error")
        finally:
            beat.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if hub.remove(conn):
                self._in_background(socket_closed(self.svc, self.actor.user.id, last=True))
            if conn.closing is not None:
                code, reason = conn.closing
                # The peer may be gone already; closing is best effort.
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    async with asyncio.timeout(2):
                        await websocket.close(code, reason)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` past this socket's end; the app cancels it when it stops serving.
        A busy database skips the work with a warning, as at the socket's start."""

        async def logged() -> None:
            try:
                await work
            except Unavailable:
                log.warning("presence skipped: the database is busy")
            except Exception:
                log.exception("background work of a closed socket failed")

        task = asyncio.get_running_loop().create_task(logged())
        self.state.background.add(task)
        task.add_done_callback(self.state.background.discard)

    async def _guarded(self, work: Coroutine[Any, Any, None]) -> None:
        """Run one of the socket's tasks; an unexpected error closes the socket with 1011."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("socket task failed")
            self.conn.close_soon(1011, "server error")

    async def _send_loop(self) -> None:
        """Send queued frames. A client that opened with ``?batch=1`` gets the frames that
        queued up while the previous send was on the wire as one JSON array, in order:
        under load that saves a WebSocket and TLS record per frame."""
        queue = self.conn.queue
        batch = websocket.args.get("batch") == "1"
        while True:
            frame = await queue.get()
            if batch and not queue.empty():
                frames, size = [frame], len(frame)
                while not queue.empty() and len(frames) < BATCH_FRAMES and size < BATCH_CHARS:
                    frames.append(queue.get_nowait())
                    size += len(frames[-1])
                frame = "[" + ",".join(frames) + "]"
            await websocket.send(frame)

    async def _receive_loop(self, resume: tuple[int | None, int | None] | None) -> None:
        limit = self.settings.ws_max_message_bytes
        if resume is not None:
            await self._resume(*resume)  # before reading frames: one resume at a time
        while True:
            raw = await websocket.receive()
            self.conn.last_heard = self.clock.monotonic()
            size = len(raw.encode("utf-8")) if isinstance(raw, str) else len(raw)
            if size > limit:
                self.conn.close_soon(CLOSE_TOO_BIG, "frame too big")
                return
            try:
                frame = parse_frame(raw)
                await self._handle(frame)
            except FrameError as exc:
                self._reply(error_frame(exc.code, exc.message, exc.ref))
            except (ActionError, Unavailable) as exc:
                # Unavailable: the database was busy; nothing was stored, the client resends.
                ref = frame.client_msg_id if isinstance(frame, Send) else getattr(frame, "conversation_id", None)
                extra: dict[str, Any] = {"retry_after": round(exc.retry_after, 2)} if exc.retry_after else {}
                self._reply(error_frame(exc.code, exc.message, str(ref) if ref is not None else None, **extra))

    def _reply(self, frame: str) -> None:
        if not self.conn.offer(frame):
            self.conn.close_soon(CLOSE_SLOW_CONSUMER, "slow consumer, resync")

    async def _activity(self) -> None:
        """A frame the person sent: keep the session alive (at most every SESSION_TOUCH_SECONDS), or end here.

        While the session cannot have run out (``ResolvedSession.live_until``) the touch is
        one key in the next batch (``WsState.session_touches``) and the frame goes on at
        once: 1000 sockets that connected together would otherwise each read their session
        in the same few seconds, every SESSION_TOUCH_SECONDS. An explicit end reaches the
        socket as SESSION_ENDED (and the heartbeat's check catches a missed one)."""
        now = self.clock.monotonic()
        if now - self.last_touch < self.settings.session_touch_seconds:
            return
        self.last_touch = now
        wall = self.clock.now()
        live_until = self.session.live_until
        if live_until is not None and wall < live_until:
            self.state.session_touches.tell(self.session.session_id)
            self.session = self.session.touched(self.svc, wall)
            return
        resolved = await resolve_session(self.svc, self.token, activity=True)
        if resolved is None:
            self.conn.close_soon(CLOSE_SESSION_ENDED, "session ended")
        else:
            self.session = resolved

    async def _handle(self, frame: Send | Sync | Watermark | Typing | Pong) -> None:
        if isinstance(frame, Pong):
            return
        if isinstance(frame, Sync):
            await self._resume(frame.since, frame.after_id)
            return
        await self._activity()
        if self.conn.closing is not None:
            return  # the session ended (or the socket is closing): the frame does nothing
        if isinstance(frame, Send):
            sent = await do_send_message(self.svc, self.actor, frame.conversation_id, frame.body, frame.client_msg_id, frame.reply_to)
            self._reply(dumps({
                "type": "ack", "client_msg_id": frame.client_msg_id, "message": message_dict(sent.message),
                "duplicate": not sent.created, "position": sent.position,
            }))
        elif isinstance(frame, Watermark):
            if frame.kind == "read":
                await do_mark_read(self.svc, self.actor, frame.conversation_id, frame.up_to_id)
            else:
                await do_mark_delivered(self.svc, self.actor, frame.conversation_id, frame.up_to_id)
        elif isinstance(frame, Typing):
            await do_typing(self.svc, self.actor, frame.conversation_id, frame.typing, self.conn.socket_id)

    def _beat(self) -> Coroutine[Any, Any, None] | None:
        """Every heartbeat interval: a peer silent for three intervals is gone; otherwise
        ping it and re-check the session (the follow-up the heartbeat runs)."""
        conn = self.conn
        if conn.closing is not None:
            return None  # closing: the handler takes this socket out of the heartbeat
        try:
            if self.clock.monotonic() - conn.last_heard > 3 * self.settings.ws_heartbeat_seconds:
                conn.close_soon(CLOSE_HEARTBEAT, "heartbeat timeout")
                return None
            self._reply(dumps({"type": "ping"}))
        except Exception:
            log.exception("socket heartbeat failed")
            conn.close_soon(1011, "server error")
            return None
        return self._check_session()

    async def _check_session(self) -> None:
        # Guarded inside rather than wrapped in ``_guarded``: the heartbeat's task may be
        # cancelled (the socket closed) before it starts, and a wrapped coroutine would then
        # never be awaited (a RuntimeWarning in the server's log).
        await self._guarded(self._read_session())

    async def _read_session(self) -> None:
        try:
            resolved = await self.state.session_checks.ask(self.token)
        except Unavailable:
            return  # a busy database is no reason to drop the socket: check next time
        if resolved is None:
            self.conn.close_soon(CLOSE_SESSION_ENDED, "session ended")
        elif self.session.live_until is None or (resolved.live_until is not None and resolved.live_until > self.session.live_until):
            self.session = resolved

    async def _resume(self, since: int | None, legacy_after: int | None = None) -> None:
        """Send every change after position ``since`` in order, holding live events meanwhile.

        A v1 client gives a message id instead (``legacy_after``): it resumes from that
        message's position and its sync pages also carry ``messages`` and ``last_id``.
        """
        conn = self.conn
        conn.resuming = True
        sent: set[int] = set()
        page, cap = self.settings.ws_resume_page, self.settings.ws_resume_max
        try:
            last = since if since is not None else await legacy_position(self.svc, legacy_after or 0)
            last_id = legacy_after or 0
            while True:
                missed = await missed_changes(self.svc, self.actor.user, last, page, cap)
                if missed.too_many:
                    # What was held (acks, errors, the presence snapshot, live events) follows.
                    await conn.queue.put(dumps({"type": "resync", "reason": "too_far_behind"}))
                    return
                last = missed.position
                sent.update(missed.positions)
                frame: dict[str, Any] = {"type": "sync", "changes": missed.frames, "done": missed.complete, "position": last}
                if since is None:
                    last_id = max([last_id, *(m.id for m in missed.messages)])
                    frame.update(messages=[message_dict(m) for m in missed.messages], last_id=last_id)
                await conn.queue.put(dumps(frame))
                # Only a position the page carried: an empty page proves nothing (``since``
                # may name a position beyond every committed one).
                conn.covered = max([conn.covered, *missed.positions])
                if missed.complete:
                    break
        finally:
            held, conn.held = conn.held, []
            conn.resuming = False
            for frame_text, position in held:
                # Skip exactly what a sync page carried (``offer`` also drops anything at or
                # below ``conn.covered``). A change that committed after the page was read
                # has a higher position: it is held here and still goes out.
                if position is not None and position in sent:
                    continue
                if not conn.offer(frame_text, position):
                    conn.close_soon(CLOSE_SLOW_CONSUMER, "slow consumer, resync")
                    break
