"""Rate limits shared by every process: through Redis with the ``limits`` library.

Without ``REDIS_URL`` a limit is this process's ``TokenBuckets`` (app/lib/ratelimit.py), on
the app's clock (tests move it with ``FrozenClock``). ``limits``' own memory storage reads
``time.time()`` and runs its own expiry task, so it is not used.

With ``REDIS_URL`` every process counts in the same Redis keys, with ``limits``' moving
window: a token bucket of ``burst`` and ``rate`` per ``period`` seconds becomes two windows
that must both allow a go, ``burst`` per ``burst / (rate / period)`` seconds (rounded down,
at least 1 s) and ``rate`` per ``period`` seconds (only when ``rate`` is above ``burst``).
With the message defaults (burst 10, 30 per 10 s): at most 10 in any 3 s and 30 in any 10 s.
A go refused by the second window has used one of the first (a sender over the sustained
rate waits a little longer). The wait returned is the moving window's reset time.

Redis unreachable: the go is counted in this process's ``TokenBuckets`` instead (one warning
per outage), and Redis is tried again ``retry_seconds`` later. A send never fails for it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Hashable
from typing import Any

import redis.asyncio as redis
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.exceptions import RedisError

from app.lib.ratelimit import TokenBuckets

log = logging.getLogger("medchat.ratelimit")

KEY_PREFIX = "medchat:limits"


def moving_windows(rate: int, period: int, burst: int) -> list[RateLimitItem]:
    """The ``limits`` windows that stand for a token bucket (module docstring)."""
    burst_window = max(1, math.floor(burst * period / rate))
    items: list[RateLimitItem] = [RateLimitItemPerSecond(burst, burst_window)]
    if rate > burst:
        items.append(RateLimitItemPerSecond(rate, period))
    return items


class SharedLimits:
    """``rate`` goes per ``period`` seconds per key, in bursts of at most ``burst``.

    ``name`` keeps the keys of two limits apart (``messages``, ``handshakes``).
    """

    def __init__(
        self,
        name: str,
        rate: int,
        period: int,
        burst: int,
        now: Callable[[], float],
        redis_url: str | None = None,
        key_prefix: str = KEY_PREFIX,
        retry_seconds: float = 5.0,
    ) -> None:
        self.name = name
        self.local = TokenBuckets(rate, period, burst, now)
        self.windows = moving_windows(rate, period, burst)
        self.retry_seconds = retry_seconds
        self._now = now
        self._retry_at = -math.inf
        self._down = False
        self._pool: redis.ConnectionPool | None = None
        self._limiter: MovingWindowRateLimiter | None = None
        if redis_url:
            # Our own pool, so that close() can release it (the storage has no close), with
            # short timeouts: an unreachable Redis must not hold a send for long.
            self._pool = redis.ConnectionPool.from_url(redis_url, socket_connect_timeout=1, socket_timeout=1)
            options: dict[str, Any] = {"connection_pool": self._pool}
            storage = RedisStorage(
                "async+" + redis_url, implementation="redispy", key_prefix=key_prefix, wrap_exceptions=True, **options,
            )
            self._limiter = MovingWindowRateLimiter(storage)

    @property
    def shared(self) -> bool:
        """Whether the goes are counted in Redis (for every process)."""
        return self._limiter is not None

    async def take(self, key: Hashable) -> float:
        """Take one go for ``key``; return 0 when allowed, else the seconds until one is free."""
        if self._limiter is None or self._now() < self._retry_at:
            return self.local.take(key)
        try:
            wait = await self._take_shared(self._limiter, key)
        except (RedisError, StorageError, OSError) as exc:
            if not self._down:
                log.warning(
                    "rate limit %s: Redis unreachable (%s); limiting in this process only until it is back",
                    self.name, type(exc).__name__,
                )
                self._down = True
            self._retry_at = self._now() + self.retry_seconds
            return self.local.take(key)
        if self._down:
            log.warning("rate limit %s: Redis is back; the limit is shared again", self.name)
            self._down = False
        return wait

    async def _take_shared(self, limiter: MovingWindowRateLimiter, key: Hashable) -> float:
        parts = key if isinstance(key, tuple) else (key,)
        identifiers = (self.name, *(str(p) for p in parts))
        for window in self.windows:
            if not await limiter.hit(window, *identifiers):
                stats = await limiter.get_window_stats(window, *identifiers)
                return max(stats.reset_time - time.time(), 0.01)
        return 0.0

    async def close(self) -> None:
        """Release the Redis connections (the app stops serving)."""
        if self._pool is not None:
            await self._pool.aclose()
