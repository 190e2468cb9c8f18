"""How each upstream has been answering: requests and failures over the last hour, the last
error. Fed by every provider's HTTP client; read by /providers and the error-burst alert."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_S = 3600.0


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    requests: int
    errors: int
    last_error: str | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


class ProviderHealth:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._events: dict[str, deque[tuple[float, bool]]] = defaultdict(
            lambda: deque(maxlen=50_000)
        )
        self._last_error: dict[str, str] = {}

    def record(self, provider: str, ok: bool, error: str | None = None) -> None:
        self._events[provider].append((self.clock(), ok))
        if not ok and error:
            self._last_error[provider] = error[:200]

    def snapshot(self, provider: str, window_s: float = WINDOW_S) -> HealthSnapshot:
        since = self.clock() - window_s
        events = [ok for at, ok in self._events.get(provider, ()) if at >= since]
        errors = sum(1 for ok in events if not ok)
        return HealthSnapshot(len(events), errors, self._last_error.get(provider))


# One per process, like a metrics registry: every ProviderHttp reports here.
HEALTH = ProviderHealth()
