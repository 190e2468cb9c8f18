"""OTP activations: the poller (one list request per provider where the protocol has one).

A round reads every active activation once, as a few plain columns (not ORM objects: at
10,000 active those cost tens of MB, and nearly every row changes nothing in a round). Each
provider's answers are compared with those columns in memory; only an activation whose status
changed (a code it has not shown, an order ended upstream) is loaded in full and moved.

Adaptive polling: after a round, while orders wait at a provider with an order list, that list
is read again as often as `poll_rate_share` of the provider's rate limit allows (never faster
than MIN_LIST_PERIOD_S, and a long or slow list less often), until the next round is due.
The poll job holds its lease all the while (bot/app.py singleton_jobs), so with several
processes only one polls, and it ends before the next round is due, so rounds never overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import or_, select

from db.models import Activation
from services.orders.errors import (
    TryLater,
)
from services.otp.common import (
    ACTIVE,
    EXPIRED,
    FINISHED,
    REASON_TIMEOUT,
    RECEIVED,
    WAITING,
    OtpBase,
    _new_code,
)
from services.providers.base import (
    OtpProvider,
    OtpState,
    OtpStatus,
)
from services.providers.errors import (
    InvalidState,
    OrderNotFound,
    ProviderError,
)

log = logging.getLogger(__name__)

MIN_LIST_PERIOD_S = 0.5  # the fastest an order list is read, whatever the rate limit allows
# The rate limit assumed of a provider configured without one (the only limit documented,
# Toolvico's, is 60 a minute per endpoint): its list is read every 2 s at the default share.
UNKNOWN_RATE_PER_MIN = 60
LIST_BUSY_SHARE = 0.5  # reading (and parsing) a list takes at most this share of the time
ROUND_MARGIN_S = 0.25  # the last list reading ends this long before the next round is due
CONCURRENT_UPSTREAM_CALLS = 16  # per provider: status checks and deadline cancels at once
CONCURRENT_CHANGES = 8  # orders ended upstream closed at once (each its transaction and card)
CODES_PER_TRANSACTION = 100  # codes of a round moved (and put in the outbox) in one transaction
STALE_CARDS_PER_ROUND = 20  # "time left" edits per round: Telegram limits edits too
_UNCHANGED = (OtpState.CODE, OtpState.WAITING)


class Active(NamedTuple):
    """What a round needs to know of an active activation."""

    id: int
    provider: str
    order_id: str
    status: str
    code: str | None
    expires_at: datetime | None


def _changes(row: Active, status: OtpStatus) -> bool:
    """Would apply_status() do anything? Only a code not shown yet or an order ended upstream."""
    return bool(status.code and status.code != row.code) or status.state not in _UNCHANGED


class Polling(OtpBase):
    """The scheduler's rounds: codes, deadlines and the cards' time left."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per provider with an order list: when its last reading began (loop time), the
        # requests (pages) and seconds it took, and the seconds with the changes applied.
        self._list_read_at: dict[str, float] = {}
        self._list_requests: dict[str, int] = {}
        self._list_read_s: dict[str, float] = {}
        self._list_round_s: dict[str, float] = {}

    async def poll(self) -> None:
        """One round over every active activation, then the order lists of providers where
        orders wait, as often as their rate limits allow, until the next round is due. Runs
        never overlap."""
        if self._busy(self._poll_lock):
            return
        async with self._poll_lock:
            next_round = asyncio.get_running_loop().time() + self.rules.poll_interval_s
            waiting = await self._round()
            await self._follow_lists(waiting, next_round)

    async def _round(self) -> set[str]:
        """Every active activation checked once; the providers whose orders still wait."""
        rows = await self._active_rows()
        by_provider: dict[str, list[Active]] = defaultdict(list)
        for row in rows:
            by_provider[row.provider].append(row)
        await asyncio.gather(
            *(self._poll_provider(name, group) for name, group in by_provider.items())
        )
        await self._refresh_stale_cards()
        return {
            name for name, group in by_provider.items() if any(r.status == WAITING for r in group)
        }

    async def _active_rows(self, provider: str | None = None) -> list[Active]:
        """Youngest first: where the budget runs short, the newest orders are the ones
        waiting for a code."""
        query = select(
            Activation.id,
            Activation.provider,
            Activation.provider_order_id,
            Activation.status,
            Activation.code,
            Activation.expires_at,
        ).where(Activation.status.in_(ACTIVE))
        if provider is not None:
            query = query.where(Activation.provider == provider)
        async with self.db.read() as session:
            result = await session.execute(query.order_by(Activation.created_at.desc()))
            return [
                Active(id_, name or "", order_id or "", status, code, expires)
                for id_, name, order_id, status, code, expires in result
            ]

    async def _load(self, ids: Iterable[int]) -> dict[int, Activation]:
        """The full rows of the few activations a round acts on."""
        wanted = list(ids)
        loaded: dict[int, Activation] = {}
        for start in range(0, len(wanted), 500):  # bound the statement's parameters
            async with self.db.read() as session:
                rows = await session.execute(
                    select(Activation).where(Activation.id.in_(wanted[start : start + 500]))
                )
                loaded.update((a.id, a) for a in rows.scalars())
        return loaded

    def _poll_budget(self, provider: str) -> int | None:
        per_minute = self.rules.rate_limits.get(provider)
        if not per_minute:
            return None
        return max(1, int(per_minute * self.rules.poll_interval_s / 60))

    async def _poll_provider(self, name: str, rows: list[Active]) -> None:
        provider = self.providers.get(name)
        if provider is None:
            log.error("activation of an unconfigured provider", extra={"provider": name})
            return
        now = self.clock()
        due = [r for r in rows if r.expires_at is not None and now >= r.expires_at]
        live = [r for r in rows if r.expires_at is None or now < r.expires_at]
        listed = await self._listed_statuses(provider) if live else {}
        single = [r for r in live if r.order_id not in listed]
        budget = self._poll_budget(name)
        if budget is not None:
            # Youngest first: they are the ones waiting for a code.
            single = single[: max(0, budget - (1 if provider.supports_order_list else 0))]
        semaphore = asyncio.Semaphore(CONCURRENT_UPSTREAM_CALLS)
        await asyncio.gather(
            self._expire_rows(due, semaphore),
            self._apply_listed(live, listed),
            *(self._poll_one(provider, row, semaphore) for row in single),
        )

    async def _apply_listed(self, rows: Sequence[Active], listed: dict[str, OtpStatus]) -> None:
        """The upstream's answers, for the rows they change (most change nothing): codes in
        a few transactions, anything else (an order ended upstream) one by one."""
        changed = [(r, listed[r.order_id]) for r in rows if r.order_id in listed]
        changed = [(r, status) for r, status in changed if _changes(r, status)]
        if not changed:
            return
        full = await self._load(r.id for r, _ in changed)
        arrivals: list[tuple[Activation, OtpStatus]] = []
        others: list[tuple[Activation, OtpStatus]] = []
        for row, status in changed:
            activation = full.get(row.id)
            if activation is None or activation.status not in ACTIVE:
                continue
            plain_code = _new_code(activation, status) and status.state in _UNCHANGED
            (arrivals if plain_code else others).append((activation, status))
        moved: dict[int, Activation] = {}
        languages: dict[int, str | None] = {}
        for start in range(0, len(arrivals), CODES_PER_TRANSACTION):
            batch = await self._codes_arrived(arrivals[start : start + CODES_PER_TRANSACTION])
            moved.update(batch[0])
            languages.update(batch[1])
        # The cards' edits go in the outbox, after the codes (it sends them in their turn).
        await self._refresh_cards(list(moved.values()), languages)
        semaphore = asyncio.Semaphore(CONCURRENT_CHANGES)

        async def one(activation: Activation, status: OtpStatus) -> None:
            async with semaphore:
                await self.apply_status(activation, status, polled=True)

        await asyncio.gather(*(one(activation, status) for activation, status in others))

    async def _expire_rows(self, rows: Sequence[Active], semaphore: asyncio.Semaphore) -> None:
        if not rows:
            return
        full = await self._load(r.id for r in rows)

        async def one(activation: Activation) -> None:
            async with semaphore:
                await self._expire(activation)

        await asyncio.gather(*(one(a) for a in full.values() if a.status in ACTIVE))

    async def _listed_statuses(self, provider: OtpProvider) -> dict[str, OtpStatus]:
        """One list call instead of one status call per order, where the protocol has a list.
        Orders missing from it (ended, or beyond its pages) are asked one by one."""
        if not provider.supports_order_list:
            return {}
        loop = asyncio.get_running_loop()
        http = getattr(provider, "http", None)  # the demo has none
        sent, started = getattr(http, "requests", 0), loop.time()
        try:
            return await provider.active_statuses()
        except ProviderError as exc:
            log.info("order list failed", extra={"provider": provider.name, "error": str(exc)})
            return {}
        finally:  # when, and what a reading costs, for when it may be repeated
            self._list_read_at[provider.name] = started
            self._list_read_s[provider.name] = loop.time() - started
            self._list_requests[provider.name] = max(1, getattr(http, "requests", 0) - sent)

    async def _poll_one(
        self, provider: OtpProvider, row: Active, semaphore: asyncio.Semaphore
    ) -> None:
        async with semaphore:
            try:
                status = await provider.status(row.order_id)
            except OrderNotFound:
                status = OtpStatus(state=OtpState.EXPIRED)
            except ProviderError as exc:
                log.info(
                    "status check failed",
                    extra={"activation_id": row.id, "error": type(exc).__name__},
                )
                return
        await self._apply_listed([row], {row.order_id: status})

    # --- adaptive polling of order lists ------------------------------------------------------

    def _list_period(self, name: str) -> float | None:
        """How often the order list of `name` may be read while its orders wait; None: no
        faster than the rounds."""
        provider = self.providers.get(name)
        share = self.rules.poll_rate_share
        if provider is None or not provider.supports_order_list or share <= 0:
            return None
        per_minute = self.rules.rate_limits.get(name) or UNKNOWN_RATE_PER_MIN
        pages = self._list_requests.get(name, 1)  # a list of several pages costs several
        period = max(MIN_LIST_PERIOD_S, 60 * pages / (per_minute * share))
        # A long list (or a slow upstream) is read less often.
        period = max(period, self._list_read_s.get(name, 0.0) / LIST_BUSY_SHARE)
        return period if period < self.rules.poll_interval_s else None

    async def _follow_lists(self, names: Iterable[str], next_round: float) -> None:
        """Until the next round is due: each provider's list again whenever its period has
        passed since its last reading, while orders still wait there. The next round's
        reading comes a period after the last one at least (the share of the rate limit
        holds across rounds), and that last one ends before the next round starts: rounds
        never overlap."""
        loop = asyncio.get_running_loop()
        interval = self.rules.poll_interval_s
        due_at: dict[str, float] = {}
        periods: dict[str, float] = {}
        next_reading: dict[str, float] = {}  # when the next round will read it, about
        for name in names:
            period = self._list_period(name)
            if period is not None:
                read_at = self._list_read_at.get(name, loop.time())
                due_at[name], periods[name] = read_at + period, period
                next_reading[name] = read_at + interval
        while due_at and not self._stopping():
            name = min(due_at, key=due_at.__getitem__)
            at = due_at[name]
            busy = self._list_round_s.get(name, 0.0) + ROUND_MARGIN_S
            if at + periods[name] > next_reading[name] + 0.05 or at + busy > next_round:
                del due_at[name]  # the next round reads it
                continue
            await self._pause(at - loop.time())
            if self._stopping():
                return
            period = self._list_period(name) if await self._list_round(name) else None
            if period is None:
                del due_at[name]
            else:
                due_at[name], periods[name] = max(at + period, loop.time()), period

    async def _list_round(self, name: str) -> bool:
        """The order list's answers applied; do orders still wait at `name`?"""
        provider = self.providers.get(name)
        if provider is None:
            return False
        loop = asyncio.get_running_loop()
        started = loop.time()
        rows = await self._active_rows(name)
        now = self.clock()
        live = [r for r in rows if r.expires_at is None or now < r.expires_at]
        if not any(r.status == WAITING for r in live):
            return False
        listed = await self._listed_statuses(provider)
        await self._apply_listed(live, listed)
        self._list_round_s[name] = loop.time() - started
        return True

    def _stopping(self) -> bool:
        return self._stopped or self._stop.is_set()

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the service stops."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    # --- deadlines and cards ----------------------------------------------------------------

    async def _expire(self, activation: Activation) -> None:
        """Past its deadline: a received activation is finished; a waiting one is cancelled
        upstream and refunded, unless the upstream shows a code after all (whatever its state
        word says: a code we have not shown is a delivered code)."""
        provider = self.providers.get(activation.provider or "")
        if provider is None:
            return
        if activation.status == WAITING:
            try:
                activation = await self._last_look(activation, provider)
            except TryLater:
                return
            if activation.status == WAITING:
                await self._cancel_expired(activation, provider)
                return
        if activation.status == RECEIVED:
            with contextlib.suppress(TryLater):
                await self._finish_upstream(activation)
                await self._close(activation.id, (RECEIVED,), FINISHED, refund=False, notify=False)

    async def _cancel_expired(self, activation: Activation, provider: OtpProvider) -> None:
        try:
            await provider.cancel(activation.provider_order_id or "")
        except (InvalidState, OrderNotFound):
            try:
                status = await provider.status(activation.provider_order_id or "")
            except OrderNotFound:
                status = OtpStatus(state=OtpState.EXPIRED)
            except ProviderError:
                return
            if _new_code(activation, status):
                await self.apply_status(activation, status)
                return
        except ProviderError as exc:
            log.info(
                "timeout cancel failed, retrying next round",
                extra={"activation_id": activation.id, "error": type(exc).__name__},
            )
            return
        await self._close(activation.id, (WAITING,), EXPIRED, refund=True, reason=REASON_TIMEOUT)

    async def _refresh_stale_cards(self) -> None:
        """The card's "time left", at most every `card_refresh_s`, a few per round. Read after
        the round's changes: a card that just showed its code is not re-rendered from a row
        loaded before the code arrived."""
        now = self.clock()
        stale_before = now - timedelta(seconds=self.rules.card_refresh_s)
        async with self.db.read() as session:
            rows = await session.execute(
                select(Activation)
                .where(
                    Activation.status == WAITING,
                    Activation.card_message_id.is_not(None),
                    or_(Activation.expires_at.is_(None), Activation.expires_at > now),
                    or_(
                        Activation.card_updated_at.is_(None),
                        Activation.card_updated_at <= stale_before,
                    ),
                )
                .order_by(Activation.card_updated_at)
                .limit(STALE_CARDS_PER_ROUND)
            )
            stale = list(rows.scalars())
        await self._refresh_cards(stale, {})
