"""Per-key token buckets: refuse with 429 and a Retry-After instead of queueing.

Use one :class:`RateLimiter` per worker process; ``take(key)`` returns 0.0
when the request may proceed, else the seconds until a token is available.
Buckets exist only for authenticated keys (plus one anonymous bucket when
keys are optional), so the map stays as small as the key list.

>>> rl = RateLimiter(rate=1.0, burst=1.0, clock=lambda: 0.0)
>>> rl.take("k"), rl.take("k")
(0.0, 1.0)
"""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    """Token bucket per key: ``rate`` tokens per second, at most ``burst`` stored."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float:
        """Take one token; return 0.0 if granted, else seconds to wait (Retry-After)."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate
