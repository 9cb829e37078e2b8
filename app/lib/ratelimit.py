"""A token bucket per key, used by both doors (form and socket) for message sends."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Protocol


class Limiter(Protocol):
    """What the doors need of a rate limit: ``take`` one go for a key."""

    async def take(self, key: Hashable) -> float:
        """Take one go; return 0 when allowed, else the seconds until one is free."""


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """``rate`` tokens per ``period`` seconds, holding at most ``burst``.

    Per process. ``app/realtime/ratelimit.py`` shares the limit between processes through
    Redis and falls back to one of these without Redis (and when Redis is unreachable).
    """

    def __init__(self, rate: float, period: float, burst: int, now: Callable[[], float]) -> None:
        self.per_second = rate / period
        self.burst = burst
        self._now = now
        self._buckets: dict[object, _Bucket] = {}

    def take(self, key: object) -> float:
        """Take one token; return 0 when allowed, else the seconds until one is free."""
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            if len(self._buckets) > 100_000:
                self._prune(now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.per_second)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.per_second

    def _prune(self, now: float) -> None:
        full = self.burst / self.per_second
        for key in [k for k, b in self._buckets.items() if now - b.at > full]:
            del self._buckets[key]


class ChangeThrottle:
    """At most one on/off change per key every ``interval`` seconds; "off" only after "on".

    Typing indicators: whatever a client sends, at most one frame per person and conversation
    goes out per interval, and a stop goes out only if the start before it did (a repeated
    start after the interval refreshes the indicator). ``allows`` looks, ``record`` commits,
    so a frame refused for another reason (not a member) leaves no trace. Per process.
    """

    def __init__(self, interval: float, now: Callable[[], float]) -> None:
        self.interval = interval
        self._now = now
        self._last: dict[object, tuple[float, bool]] = {}

    def allows(self, key: object, on: bool) -> bool:
        last = self._last.get(key)
        if last is not None and self._now() - last[0] < self.interval:
            return False
        return on or (last is not None and last[1])

    def record(self, key: object, on: bool) -> None:
        now = self._now()
        self._last[key] = (now, on)
        if len(self._last) > 100_000:
            for old in [k for k, (at, _) in self._last.items() if now - at > self.interval]:
                del self._last[old]
