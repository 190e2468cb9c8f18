"""Requests per API key and endpoint: RESELLER_API_RATE_PER_MIN.

A sliding window of the last minute per (key, endpoint), checked without waiting: a request
over the limit is refused at once, and each protocol answers that its own way, with the
seconds until the oldest request leaves the window. (aiolimiter, already in the tree for the
providers, waits for capacity and has no "refuse now" call, which a server needs.)

The windows live in this process: with several API processes behind one address, each allows
the rate (docs/api.md says so). Windows that emptied are dropped now and then.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 60.0
PRUNE_EVERY = 1000  # checks between sweeps of idle windows


class RateLimits:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._windows: dict[tuple[int, str], deque[float]] = {}
        self._checks = 0

    def check(self, key_id: int, endpoint: str) -> int | None:
        """None: go ahead (the request is counted). Else the whole seconds to wait."""
        if self.per_minute <= 0:
            return None
        now = self._clock()
        self._checks += 1
        if self._checks % PRUNE_EVERY == 0:
            self._prune(now)
        window = self._windows.setdefault((key_id, endpoint), deque())
        while window and window[0] <= now - WINDOW_S:
            window.popleft()
        if len(window) >= self.per_minute:
            return max(1, math.ceil(window[0] + WINDOW_S - now))
        window.append(now)
        return None

    def _prune(self, now: float) -> None:
        for key, window in list(self._windows.items()):
            if not window or window[-1] <= now - WINDOW_S:
                del self._windows[key]
