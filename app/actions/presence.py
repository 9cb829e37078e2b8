"""Presence: who sees whom, when someone is online, and when they were last seen.

The rules live here; the hub (``app/realtime/hub.py``) only keeps the claims, batches the
frames and delivers them, and the socket door (``app/ws/endpoint.py``) only says when a
socket opened or closed.

- **Who sees whom** (``contacts``): people who share a direct chat or a group of at most
  ``PRESENCE_MAX_GROUP`` members. Live frames and pages (``shared_presence``) use the same rule.
- **Online** is per process: the first socket of a user on this process announces "online"
  (``socket_opened``); the last one, once it closed, waits ``PRESENCE_GRACE_SECONDS`` and
  announces "offline" only if no socket of that user came back meanwhile (``socket_closed``),
  so a reload does not flash "offline". The offline announcement writes ``last_seen``.
- **A new socket** gets a snapshot of all its contacts (``snapshot``), then changes only.
- **A process that dies** leaves claims behind. With Redis each process says it is alive
  every third of ``PRESENCE_INSTANCE_TTL_SECONDS`` (``keep_presence_alive``); each process
  takes back, as ordinary "offline" events handed to its own hub, the claims of a process
  not heard from for that long, and at once those of one that said it is stopping
  (``depart``). Each surviving process writes ``last_seen`` for them (the same instant).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.realtime.events import Event
from app.services import Services
from app.store import conversations, staff
from app.store.db import Session
from app.vocab import EventKind

log = logging.getLogger("medchat.presence")


async def contacts(svc: Services, user_id: int) -> list[int]:
    """Whose presence I see and who sees mine: direct chats and groups up to PRESENCE_MAX_GROUP."""
    async with svc.db.reading() as s:
        return await conversations.contact_ids(s, user_id, svc.settings.presence_max_group)


@dataclass(frozen=True)
class Presence:
    """What a page may show of someone's presence: online now, or when last seen."""

    online: bool
    last_seen: datetime | None


async def shared_presence(svc: Services, viewer_id: int, user_ids: Collection[int]) -> dict[int, Presence]:
    """The presence of those among ``user_ids`` who share it with ``viewer_id``, by id.

    The live rule (``contacts``): a direct chat or a group of at most PRESENCE_MAX_GROUP
    members together. Anyone else is left out, so a page cannot show when they were last seen.
    """
    wanted = set(user_ids)
    if not wanted:
        return {}
    async with svc.db.reading() as s:
        shared = wanted.intersection(await conversations.contact_ids(s, viewer_id, svc.settings.presence_max_group))
        seen = await staff.last_seen(s, sorted(shared))
    return {uid: Presence(online=svc.hub.is_online(uid), last_seen=seen.get(uid)) for uid in shared}


async def announce_presence(
    svc: Services, user_id: int, online: bool, origin: str, ids: list[int] | None = None
) -> None:
    """Publish that this process has (or no longer has) sockets of ``user_id`` (to ``ids``,
    their contacts, when the caller has them already)."""
    now = svc.clock.now()
    if not online:
        # Through the group writer: many sockets close together (a restart, a network cut).
        await svc.writer.submit(lambda s: staff.set_last_seen(s, user_id, now))
    if ids is None:
        ids = await contacts(svc, user_id)
    frame = {"type": "presence", "user_id": user_id, "online": online, "last_seen": None if online else now.isoformat()}
    await svc.publish(Event(EventKind.PRESENCE, tuple(ids), frame, origin=origin))


async def last_seen(svc: Services, user_ids: list[int]) -> dict[int, datetime | None]:
    async with svc.db.reading() as s:
        return await staff.last_seen(s, user_ids)


async def socket_opened(svc: Services, user_id: int, first: bool) -> dict[str, Any]:
    """A socket of ``user_id`` opened here; ``first``: none of theirs was open on this process.
    Returns the new socket's ``presence_snapshot`` frame: the announcement and the snapshot
    share one contacts query (a restart reopens every socket at once)."""
    ids = await contacts(svc, user_id)
    if first:
        await announce_presence(svc, user_id, True, svc.hub.instance_id, ids)
    return await snapshot(svc, user_id, ids)


async def socket_closed(svc: Services, user_id: int, last: bool) -> None:
    """A socket of ``user_id`` closed here; ``last``: none of theirs is left on this process.

    After the last one, wait the grace and announce "offline" unless a socket came back.
    Waits ``PRESENCE_GRACE_SECONDS`` of ``svc.clock``: the caller runs it in the background.
    """
    if not last:
        return
    await svc.clock.sleep(svc.settings.presence_grace_seconds)
    if not svc.hub.has_local(user_id):
        await announce_presence(svc, user_id, False, svc.hub.instance_id)


async def take_back_silent_claims(svc: Services) -> None:
    """Turn the claims of processes not heard from (or departed) into "offline" here.

    Each process does this for its own hub (nothing is published): the event is the one the
    silent process would have sent, so the hub's change detection and batching apply.
    """
    for origin, users in svc.hub.silent_instances(svc.settings.presence_instance_ttl_seconds).items():
        for user_id in users:
            still_online = bool(svc.hub.claims.get(user_id, set()) - {origin}) or svc.hub.has_local(user_id)
            now = svc.clock.now()
            if not still_online:
                await svc.writer.submit(functools.partial(_set_last_seen, user_id=user_id, now=now))
            ids = await contacts(svc, user_id)
            frame = {"type": "presence", "user_id": user_id, "online": False, "last_seen": now.isoformat()}
            await svc.hub.handle(Event(EventKind.PRESENCE, tuple(ids), frame, origin=origin))


async def _set_last_seen(s: Session, *, user_id: int, now: datetime) -> None:
    await staff.set_last_seen(s, user_id, now)


async def keep_presence_alive(svc: Services) -> None:
    """Say this process is alive every third of the TTL, and take back silent ones' claims.

    A background task (create_app runs it with a Redis broker, from before_serving to
    after_serving); waits with ``svc.clock``.
    """
    ttl = svc.settings.presence_instance_ttl_seconds
    while True:
        try:
            await svc.publish(Event(EventKind.INSTANCE_ALIVE, origin=svc.hub.instance_id))
            await take_back_silent_claims(svc)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a failed round must not end the heartbeat
            log.exception("presence heartbeat failed")
        await svc.hub.until_departure(ttl / 3)


async def depart(svc: Services) -> None:
    """Tell the other processes this one is stopping: they take its claims back at once."""
    try:
        await svc.publish(Event(EventKind.INSTANCE_GONE, origin=svc.hub.instance_id))
    except Exception:  # noqa: BLE001 - best effort: the TTL covers it
        log.warning("could not announce this process's departure; the others wait for the TTL")


async def snapshot(svc: Services, user_id: int, ids: list[int] | None = None) -> dict[str, Any]:
    """The ``presence_snapshot`` frame for a new socket of ``user_id``: every contact's state."""
    if ids is None:
        ids = await contacts(svc, user_id)
    seen = await last_seen(svc, ids)
    users = [
        {"user_id": uid, "online": svc.hub.is_online(uid), "last_seen": _iso(seen.get(uid))}
        for uid in ids
    ]
    return {"type": "presence_snapshot", "users": users}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
