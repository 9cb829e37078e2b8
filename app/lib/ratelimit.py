"""A token bucket per key, used by both doors (form and socket) for message sends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """``rate`` tokens per ``period`` seconds, holding at most ``burst``.

    Per process: with several instances each one limits separately (documented).
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
