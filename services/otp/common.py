"""OTP activations: what every part of the service shares (states, refusals, rules, the
state changes that every path ends in)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import func, or_, select, update

from db.models import Activation, User, utcnow
from services import outbox
from services.catalog import Offer, OtpCatalog
from services.money import ceil_micro
from services.notifier import OtpGoods
from services.orders import core
from services.orders.errors import (
    OrderError,
    TryLater,
)
from services.orders.lifecycle import OTP, Refund
from services.orders.lifecycle import OtpState as S
from services.orders.service import OrderService
from services.providers.base import (
    OtpProvider,
    OtpPurchase,
    OtpState,
    OtpStatus,
)
from services.providers.errors import (
    InvalidState,
    NotSupported,
    OrderNotFound,
    ProviderError,
)

log = logging.getLogger(__name__)

BUYING, UNKNOWN, WAITING, RECEIVED = S.BUYING, S.UNKNOWN, S.WAITING, S.RECEIVED
FINISHED, CANCELLED, EXPIRED, FAILED = S.FINISHED, S.CANCELLED, S.EXPIRED, S.FAILED
OPEN = OTP.open
ACTIVE = (WAITING, RECEIVED)
CLOSED = tuple(state for state in S if state in OTP.final)


# --- what the service tells its callers ------------------------------------------------------


ActivationError = OrderError  # the handlers' name for every refusal of this service


class TooManyActive(OrderError):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class TooManyCancels(OrderError):
    """MAX_CANCELS_PER_DAY reached: no new number before `until`."""

    def __init__(self, limit: int, until: datetime) -> None:
        super().__init__(limit, until)
        self.limit = limit
        self.until = until


class OutOfStock(OrderError):
    pass


class ConfirmAgain(OrderError):
    """The Buy press does not match a confirmation this user was shown (a forged or changed
    price, another item, an unknown or expired token): nothing was charged."""


class TooEarly(OrderError):
    def __init__(self, seconds: int) -> None:
        super().__init__(seconds)
        self.seconds = max(1, seconds)


class Presenter(Protocol):
    """The bot layer: texts in the user's language, and the activation card in the chat."""

    def code_text(self, activation: Activation, language: str) -> str: ...

    def closed_text(self, activation: Activation, language: str) -> str: ...

    def card(self, activation: Activation, language: str) -> outbox.Edit | None:
        """The edit of the activation's card to what it should show now; None without a
        card, or when it shows that already."""
        ...

    def card_queued(self, edit: outbox.Edit) -> None:
        """That edit is in the outbox: the card will show it."""
        ...


@dataclass(frozen=True)
class OtpRules:
    activation_timeout_s: int = 1200
    min_cancel_delay_s: int = 120
    provider_cancel_delay_s: dict[str, int] = field(default_factory=dict)
    max_active: int = 10
    max_cancels_per_day: int = 10  # a user's cancels without a code in 24 h; 0 = no limit
    reconcile_grace_s: float = 30.0
    card_refresh_s: float = 30.0
    poll_interval_s: float = 5.0
    rate_limits: dict[str, int] = field(default_factory=dict)  # provider -> requests/min
    # While orders wait, an order list is read as often as this share of its provider's rate
    # limit allows (services/otp/polling.py); 0 = every poll_interval_s only.
    poll_rate_share: float = 0.5
    # How long a buy may take, every provider asked in turn: its claim's length. Past it,
    # a buy left 'buying' (its process died) is reconciled.
    buy_lease_s: float = 120.0

    def cancel_delay(self, provider: str) -> int:
        return max(self.min_cancel_delay_s, self.provider_cancel_delay_s.get(provider, 0))


@dataclass(frozen=True, slots=True)
class Quote:
    country: str
    service: str
    price: int
    stock: int


# Reasons kept in `fail_reason` (rendered by the bot from locales).
QUOTE_TTL = timedelta(days=1)  # a confirmation screen older than this is shown again

REASON_NO_NUMBERS = "no_numbers"
REASON_PROVIDER_ERROR = "provider_error"
REASON_NO_UPSTREAM_ORDER = "no_upstream_order"
REASON_TIMEOUT = "timeout"
REASON_UPSTREAM_CANCELLED = "upstream_cancelled"
REASON_USER_CANCEL = "user_cancel"


class OtpBase(OrderService[OtpCatalog, OtpProvider, OtpRules, Presenter]):
    """The shared moves of ActivationService (see services/otp/__init__.py)."""

    kind = "otp"
    popular: dict[str, int]  # country -> purchases, for "most bought first"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.popular = {}

    async def get(self, order_id: int) -> Activation:
        activation: Activation = await super().get(order_id)
        return activation

    async def get_own(self, user_id: int, order_id: int) -> Activation:
        activation: Activation = await super().get_own(user_id, order_id)
        return activation

    async def load_popularity(self) -> None:
        async with self.db.read() as session:
            rows = await session.execute(
                select(Activation.country, func.count())
                .where(Activation.status.in_((WAITING, RECEIVED, FINISHED)))
                .group_by(Activation.country)
            )
            self.popular = {country: int(count) for country, count in rows}

    async def attach_card(self, activation_id: int, chat_id: int, message_id: int) -> None:
        async with self.db.write() as session:
            await session.execute(
                update(Activation)
                .where(Activation.id == activation_id)
                .values(
                    card_chat_id=chat_id, card_message_id=message_id, card_updated_at=self.clock()
                )
            )

    @property
    def has_demo(self) -> bool:
        """Is a demo provider on (its numbers and codes made up)? The shop says so up front."""
        return any(provider.is_demo for provider in self.providers.values())

    def supports(self, activation: Activation, feature: str) -> bool:
        return supports(self.providers, activation, feature)

    async def _close(
        self,
        activation_id: int,
        from_states: Sequence[str],
        to_state: str,
        *,
        refund: bool,
        reason: str | None = None,
        notify: bool = True,
        where: Sequence[Any] = (),
    ) -> Activation:
        """Move to a final state; refund in the same transaction when goods were not delivered."""
        language = None
        async with self.db.write() as session:
            moved = await core.move(
                session,
                "otp",
                activation_id,
                from_states,
                to_state,
                now=self.clock(),
                refund=Refund.FULL if refund else Refund.NONE,
                reason=reason,
                where=where,
            )
            if moved is not None:
                if moved.refunded:
                    await self.notifier.emit(
                        session,
                        "refund",
                        user=moved.user_id,
                        amount=moved.refunded,
                        order=f"otp:{activation_id}",
                        reason=reason or to_state,
                    )
                language = await session.scalar(
                    select(User.language).where(User.id == moved.user_id)
                )
                if notify and self.presenter is not None:
                    activation = await session.get_one(Activation, activation_id)
                    if not activation.quiet:  # a reseller API order that pushes no codes
                        text = self.presenter.closed_text(activation, language or "en")
                        await outbox.enqueue(session, moved.user_id, text, f"otp:{to_state}")
        activation = await self.get(activation_id)
        if moved is not None:
            log.info(
                "activation closed",
                extra={
                    "activation_id": activation_id,
                    "status": to_state,
                    "refund": refund,
                    "reason": reason,
                },
            )
            if notify:  # a scheduler's change; a user's own action is rendered by its handler
                await self._refresh_card(activation, language)
        return activation

    async def apply_status(
        self, activation: Activation, status: OtpStatus, *, polled: bool = False
    ) -> Activation:
        """What the upstream says about an order we know. A status that carries a code we have
        not shown is a delivered code, whatever its state word: the code is pushed, and an
        order the upstream has already ended is then finished (no refund).

        `polled`: the poller's reading. An order ended upstream is then closed only if no
        customer's request is on its way (a Cancel ends it upstream too, and the customer should
        hear "cancelled", not "cancelled by the provider")."""
        free = [core.unclaimed(Activation, utcnow())] if polled else []
        if _new_code(activation, status):
            updated = await self._code_arrived(activation, status)
            if status.state in (OtpState.CODE, OtpState.WAITING):
                return updated
            return await self._close(
                activation.id, (RECEIVED,), FINISHED, refund=False, notify=False
            )
        match status.state:
            case OtpState.CODE | OtpState.WAITING:
                return activation
            case OtpState.FINISHED | OtpState.CANCELLED | OtpState.EXPIRED if (
                activation.status == RECEIVED
            ):
                return await self._close(
                    activation.id, (RECEIVED,), FINISHED, refund=False, notify=False
                )
            case OtpState.CANCELLED:
                return await self._close(
                    activation.id,
                    (WAITING,),
                    CANCELLED,
                    refund=True,
                    reason=REASON_UPSTREAM_CANCELLED,
                    where=free,
                )
            case _:
                return await self._close(
                    activation.id,
                    (WAITING,),
                    EXPIRED,
                    refund=True,
                    reason=REASON_TIMEOUT,
                    where=free,
                )

    async def _code_arrived(self, activation: Activation, status: OtpStatus) -> Activation:
        moved, languages = await self._codes_arrived([(activation, status)])
        await self._refresh_cards(moved.values(), languages)
        return moved.get(activation.id) or await self.get(activation.id)

    async def _codes_arrived(
        self, arrivals: Sequence[tuple[Activation, OtpStatus]]
    ) -> tuple[dict[int, Activation], dict[int, str | None]]:
        """Codes the customers have not seen (a poll round brings many), in one transaction:
        each activation moves to 'received' in a conditional UPDATE of its own (a code already
        shown, or an order closed meanwhile, moves nothing) and its message goes to the
        outbox. Returns the activations that moved, as committed, and their users' languages
        (for their cards, which the caller refreshes)."""
        now = self.clock()
        moved: dict[int, Activation] = {}
        languages: dict[int, str | None] = {}
        async with self.db.write() as session:
            ids = []
            for activation, status in arrivals:
                done = await core.move(
                    session,
                    "otp",
                    activation.id,
                    ACTIVE,
                    RECEIVED,
                    now=now,
                    values={
                        "code": status.code,
                        "sms_text": status.text,
                        "codes": Activation.codes + 1,
                        "code_at": func.coalesce(Activation.code_at, now),
                    },
                    where=[or_(Activation.code.is_(None), Activation.code != status.code)],
                )
                if done is not None:
                    ids.append(activation.id)
            if ids:
                rows = await session.execute(select(Activation).where(Activation.id.in_(ids)))
                moved = {a.id: a for a in rows.scalars()}
                users = {a.user_id for a in moved.values()}
                found = await session.execute(
                    select(User.id, User.language).where(User.id.in_(users))
                )
                languages = {user_id: language for user_id, language in found}
            if self.presenter is not None:
                for activation_id in ids:
                    fresh = moved[activation_id]
                    language = languages.get(fresh.user_id) or "en"
                    if not fresh.quiet:  # a reseller API order that pushes no codes
                        text = self.presenter.code_text(fresh, language)
                        await outbox.enqueue(session, fresh.user_id, text, "otp:code")
                    await self.notifier.emit(
                        session,
                        "code",
                        order=f"otp:{activation_id}",
                        provider=fresh.provider or "?",
                    )
        for activation_id in moved:
            log.info("code received", extra={"activation_id": activation_id})
        return moved, languages

    async def _refresh_cards(
        self, activations: Iterable[Activation], languages: Mapping[int, str | None]
    ) -> None:
        """The cards' edits to what they should show now, in the outbox (which sends them in
        their turn, after the codes, within Telegram's limits), in one transaction; a card that
        would not change is not edited."""
        if self.presenter is None:
            return
        cards = [a for a in activations if a.card_message_id is not None]
        if not cards:
            return
        languages = await self._languages(cards, languages)
        edits: list[outbox.Edit] = []
        for activation in cards:
            try:
                edit = self.presenter.card(activation, languages.get(activation.user_id) or "en")
            except Exception:  # a card is cosmetic; money and codes never depend on it
                log.exception("card render failed", extra={"activation_id": activation.id})
                continue
            if edit is not None:
                edits.append(edit)
        try:
            async with self.db.write() as session:
                # In one order in every transaction: two never wait for each other's rows.
                for edit in sorted(edits, key=lambda e: (e.chat_id, e.message_id)):
                    await outbox.enqueue_edit(session, edit)
                await session.execute(
                    update(Activation)
                    .where(Activation.id.in_([a.id for a in cards]))
                    .values(card_updated_at=self.clock())
                )
        except Exception:  # the codes and states they show are committed already
            log.exception("card refresh failed", extra={"cards": len(cards)})
            return
        for edit in edits:
            self.presenter.card_queued(edit)

    async def _refresh_card(self, activation: Activation, language: str | None) -> None:
        await self._refresh_cards([activation], {activation.user_id: language})

    async def _languages(
        self, activations: Sequence[Activation], known: Mapping[int, str | None]
    ) -> Mapping[int, str | None]:
        """The users' languages, those not `known` read."""
        missing = {a.user_id for a in activations if known.get(a.user_id) is None}
        if not missing:
            return known
        async with self.db.read() as session:
            found = await session.execute(
                select(User.id, User.language).where(User.id.in_(missing))
            )
            return {**known, **{user_id: language for user_id, language in found}}

    async def card_rendered(self, chat_id: int, message_id: int) -> None:
        """A handler has just shown a card (a button pressed on it): an edit of it still in the
        outbox, rendered before, must not put an older state back over it."""
        async with self.db.read() as session:
            waiting = await outbox.edits_waiting(session, chat_id, message_id)
        if waiting:
            async with self.db.write() as session:
                await outbox.drop_edits(session, chat_id, message_id)

    async def _mark_unknown(self, activation_id: int) -> Activation:
        """The buy's answer was lost. The admins hear of it only if reconciliation gives up."""
        async with self.db.write() as session:
            await core.move(session, "otp", activation_id, (BUYING,), UNKNOWN, now=self.clock())
        return await self.get(activation_id)

    async def _alert_unknown(self, activation: Activation, tried: str) -> None:
        """Reconciliation has given up (the grace period passed, the order is still unknown):
        the group is told once, with what the bot tried."""
        age = (self.clock() - activation.updated_at).total_seconds()
        if age < self.rules.reconcile_grace_s:
            return
        async with self.db.write() as session:
            result = await session.execute(
                update(Activation)
                .where(
                    Activation.id == activation.id,
                    Activation.status == UNKNOWN,
                    Activation.alerted_at.is_(None),
                )
                .values(alerted_at=self.clock())
                .returning(Activation.provider)
            )
            row = result.first()
            if row is None:
                return
            await self.notifier.emit(
                session,
                "unknown-order",
                order=f"otp:{activation.id}",
                provider=row[0] or "?",
                tried=tried,
                since="",
                detail="",
                word="",
            )
        log.error(
            "purchase outcome unknown: an admin must resolve it",
            extra={"activation_id": activation.id, "provider": row[0], "tried": tried},
        )

    async def _bought(self, activation_id: int, offer: Offer, purchase: OtpPurchase) -> Activation:
        now = self.clock()
        expires_at = now + timedelta(seconds=self.rules.activation_timeout_s)
        if purchase.expires_at is not None:
            expires_at = min(expires_at, purchase.expires_at)
        values = {
            "status": WAITING,
            "provider": offer.provider,
            "provider_order_id": purchase.order_id,
            "phone": purchase.phone,
            "cancel_after": now + timedelta(seconds=self.rules.cancel_delay(offer.provider)),
            "expires_at": expires_at,
            "updated_at": now,
        }
        if purchase.price is not None:
            values["upstream_price"] = str(purchase.price)
        async with self.db.write() as session:
            del values["status"]
            moved = await core.move(
                session,
                "otp",
                activation_id,
                (BUYING, UNKNOWN),
                WAITING,
                now=now,
                values=values,
            )
            bought = await session.get(Activation, activation_id) if moved else None
            if bought is not None:
                cost = _cost(bought.upstream_price, bought.rate)
                await self.notifier.emit(
                    session,
                    "purchase",
                    what=OtpGoods(bought.service, bought.country),
                    user=bought.user_id,
                    price=bought.price,
                    cost=cost,
                    profit=bought.price - cost,
                    provider=offer.provider,
                )
        activation = await self.get(activation_id)
        self.popular[activation.country] = self.popular.get(activation.country, 0) + 1
        log.info(
            "number bought",
            extra={
                "activation_id": activation_id,
                "provider": offer.provider,
                "country": activation.country,
                "service": activation.service,
                "price": activation.price,
            },
        )
        return activation

    async def _last_look(self, activation: Activation, provider: OtpProvider) -> Activation:
        """Before a number is finished, cancelled at its deadline or asked for another SMS, a
        code that reached the upstream since the last poll is pushed: afterwards the upstream
        no longer shows it."""
        try:
            status = await provider.status(activation.provider_order_id or "")
        except OrderNotFound:
            return activation
        except ProviderError as exc:
            raise TryLater() from exc
        if _new_code(activation, status):
            return await self.apply_status(activation, status)
        return activation

    async def _finish_upstream(self, activation: Activation) -> None:
        provider = self.providers.get(activation.provider or "")
        if provider is None:
            return
        await self._last_look(activation, provider)
        if not provider.supports_finish:
            return
        try:
            await provider.finish(activation.provider_order_id or "")
        except (NotSupported, InvalidState, OrderNotFound):
            pass  # ended upstream already: nothing to finish
        except ProviderError as exc:
            raise TryLater() from exc


def supports(providers: Mapping[str, OtpProvider], activation: Activation, feature: str) -> bool:
    """Does the activation's provider offer `feature` ("another_sms", "finish")?"""
    provider = providers.get(activation.provider or "")
    return bool(provider is not None and getattr(provider, f"supports_{feature}", False))


def _new_code(activation: Activation, status: OtpStatus) -> bool:
    return bool(status.code) and status.code != activation.code


def _cost(upstream: str | None, rate: str | None) -> int:
    """The upstream price in store micro-units (rounded up), for reports."""
    if not upstream or not rate:
        return 0
    return ceil_micro(Decimal(upstream) * Decimal(rate))


def new_token() -> str:
    """A confirmation's idempotency token (in the Buy button's callback data)."""
    return secrets.token_urlsafe(6)
