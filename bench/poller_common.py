"""What the processes of bench/poller.py share: the fixed identities of the simulated world, the
scenario record and small stdlib-only helpers (the parent imports this, so nothing heavy here)."""

from __future__ import annotations

import math
import resource
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository: cwd of the children
TOKEN = "123456:BENCH-TOKEN-abcdefghijklmnop"
API_KEY = "bench-sa-key-0123456789abcdef"
PROVIDER = "sim"
CHAT_BASE = 50_000_000  # chat (and user) id of activation i is CHAT_BASE + i
CARD_BASE = 900_000_000  # the activation card's message id (never collides with the fake's ids)
PRICE_MICRO = 180_000
WINDOW_S = 60.0


@dataclass(frozen=True)
class Scenario:
    label: str
    n: int
    rate_limit: int | None
    duration_s: float
    expiring: int  # the oldest rows whose own deadline falls inside the run
    share: float  # POLL_RATE_SHARE
    idle_s: float  # the bot runs this long on an empty database before its RSS is read
    drain_s: float  # after the last code is handed out, time for it to reach the chat


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; values sorted, may end in inf (codes never delivered)."""
    if not values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(values)))
    return values[rank - 1]


def window_max(times: list[float], limit: int | None = None) -> tuple[int, int]:
    """(most requests in any 60-second window, requests that arrived over the limit):
    for each request, how many arrived in the 60 s up to and including it."""
    best = over = 0
    start = 0
    for end, moment in enumerate(times):
        while times[start] <= moment - WINDOW_S:
            start += 1
        count = end - start + 1
        best = max(best, count)
        if limit is not None and count > limit:
            over += 1
    return best, over
