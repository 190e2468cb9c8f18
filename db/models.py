"""Tables. Amounts are BigInteger micro-units; timestamps are timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """SQLite drops tzinfo; give every value read back its UTC zone again."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("balance >= 0", name="ck_users_balance_nonnegative"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    username: Mapped[str | None] = mapped_column(String(64), index=True)
    first_name: Mapped[str | None] = mapped_column(String(128))
    language: Mapped[str] = mapped_column(String(8))
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    banned: Mapped[bool] = mapped_column(Boolean, default=False)
    blocked_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    api_allowed: Mapped[bool] = mapped_column(Boolean, default=True)  # admin /api <user> on|off


class LedgerEntry(Base):
    __tablename__ = "ledger"
    __table_args__ = (Index("ix_ledger_user_id_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    delta: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(32))
    ref: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    admin_id: Mapped[int | None] = mapped_column(BigInteger)
    comment: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class OutboxMessage(Base):
    """A message that must reach a chat after its transaction committed (sent by a worker)."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "sent_at", "id"),
        Index("ix_outbox_message", "chat_id", "message_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    failed: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # A worker's claim while it sends the row (db/claims.py): until then, no other process
    # takes it; a claim that ran out (its process died) is taken over.
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    # An edit (kind "edit"): the message whose text becomes `text`, with this reply markup
    # (Bot API JSON); None for a message to send.
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    markup: Mapped[str | None] = mapped_column(Text)


class Activation(Base):
    """One OTP purchase. `price` is what the user paid (micro); the snapshot columns keep what
    it was based on, so refunds and reports never use today's prices."""

    __tablename__ = "activations"
    __table_args__ = (
        Index("ix_activations_status", "status", "provider"),
        Index("ix_activations_user", "user_id", "id"),
        Index("ix_activations_provider_order", "provider", "provider_order_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    confirm_key: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    country: Mapped[str] = mapped_column(String(48))
    service: Mapped[str] = mapped_column(String(64))
    price: Mapped[int] = mapped_column(BigInteger)
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_order_id: Mapped[str | None] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(32))
    upstream_price: Mapped[str | None] = mapped_column(String(32))  # Decimal text
    upstream_currency: Mapped[str | None] = mapped_column(String(3))
    rate: Mapped[str | None] = mapped_column(String(32))
    markup_percent: Mapped[str | None] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(Text)  # 5sim may give a whole SMS as the code
    sms_text: Mapped[str | None] = mapped_column(Text)
    codes: Mapped[int] = mapped_column(Integer, default=0)
    fail_reason: Mapped[str | None] = mapped_column(String(64))
    card_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    card_message_id: Mapped[int | None] = mapped_column(BigInteger)
    card_updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    cancel_after: Mapped[datetime | None] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    alerted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # admins told: unknown
    # A buy in flight: until then (or until released) no reconciliation touches it.
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Placed through the reseller API by a key that does not push codes: no Telegram message.
    quiet: Mapped[bool] = mapped_column(Boolean, default=False)
    # the number, SMS text and code were erased (RETENTION_DAYS or /forget); money stays
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # when the first code arrived (PROOFS_CHAT_ID's "code in 14 s")
    code_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)


class OtpQuote(Base):
    """The price a confirmation screen showed, under its Buy button's token: a press is charged
    this price, never the one in the callback data (which anyone can forge). Kept in the database
    so that any bot process can take the press; rows older than a day are deleted."""

    __tablename__ = "otp_quotes"
    __table_args__ = (Index("ix_otp_quotes_created_at", "created_at"),)

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    token: Mapped[str] = mapped_column(String(32), primary_key=True)
    country: Mapped[str] = mapped_column(String(48))
    service: Mapped[str] = mapped_column(String(64))
    price: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class CatalogSnapshot(Base):
    """The last catalog, so a restarted bot can sell before its first refresh finishes."""

    __tablename__ = "catalog_snapshots"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    data: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SmmOrder(Base):
    """One SMM order. `price` is what the user paid (micro) and `refunded` what came back; the
    snapshot columns (the user's rate per 1000, the upstream rate, currency, rate and markup) keep
    what the price was based on, so refunds and reports never use today's prices."""

    __tablename__ = "smm_orders"
    __table_args__ = (
        CheckConstraint("refunded >= 0 AND refunded <= price", name="ck_smm_orders_refund"),
        Index("ix_smm_orders_status", "status", "provider"),
        Index("ix_smm_orders_user", "user_id", "id"),
        Index("ix_smm_orders_provider_order", "provider", "provider_order_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    confirm_key: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    provider_order_id: Mapped[str | None] = mapped_column(String(64))
    service_id: Mapped[str] = mapped_column(String(64))
    service_name: Mapped[str] = mapped_column(String(256))
    category: Mapped[str] = mapped_column(String(256))
    type: Mapped[str] = mapped_column(String(24))
    link: Mapped[str] = mapped_column(Text)
    quantity: Mapped[int] = mapped_column(Integer)
    runs: Mapped[int | None] = mapped_column(Integer)  # drip-feed
    interval: Mapped[int | None] = mapped_column(Integer)  # drip-feed, minutes
    extra: Mapped[str | None] = mapped_column(Text)  # comments / usernames (lines), answer number
    rate_per_1000: Mapped[int] = mapped_column(BigInteger)  # the user's, micro
    upstream_rate: Mapped[str] = mapped_column(String(32))  # Decimal text, per 1000
    upstream_currency: Mapped[str] = mapped_column(String(3))
    rate: Mapped[str] = mapped_column(String(32))
    markup_percent: Mapped[str] = mapped_column(String(16))
    price: Mapped[int] = mapped_column(BigInteger)
    refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    can_refill: Mapped[bool] = mapped_column(Boolean, default=False)
    can_cancel: Mapped[bool] = mapped_column(Boolean, default=False)
    start_count: Mapped[int | None] = mapped_column(BigInteger)
    remains: Mapped[int | None] = mapped_column(BigInteger)
    refill_id: Mapped[str | None] = mapped_column(String(64))
    refill_status: Mapped[str | None] = mapped_column(String(32))
    fail_reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # `add` about to be sent
    checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # last status poll
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # First poll that could not read the order (missing, unknown status word, Partial without
    # remains); cleared by a readable answer. Past the grace period the order is 'unknown'.
    trouble_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    trouble: Mapped[str | None] = mapped_column(String(128))
    alerted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # admins told: unknown
    # An `add` in flight, and a refill/cancel request on its way: claims with an expiry.
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acting_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Placed through the reseller API by a key that does not push codes: no Telegram message.
    quiet: Mapped[bool] = mapped_column(Boolean, default=False)


class MarkupSetting(Base):
    """An admin's markup (/markup): scope global, provider, otp (ISO|slug) or smm (name|id)."""

    __tablename__ = "markup_settings"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    percent: Mapped[str] = mapped_column(String(16))  # Decimal text
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class CatalogRule(Base):
    """An admin's catalog rule (services/catalog_rules.py): `rule` hide | price | minprofit |
    rename, `scope` country | service | otp | smm | category, `key` what it is for (an ISO code,
    a slug, "ISO|slug", "provider|service id", a category's name), `value` its micro-units or
    new name."""

    __tablename__ = "catalog_rules"

    rule: Mapped[str] = mapped_column(String(16), primary_key=True)
    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
    admin_id: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ShopFlag(Base):
    """A shop-wide switch an admin sets at run time (services/shop_state.py): `maintenance`
    holds the text customers get instead of new purchases while it is on."""

    __tablename__ = "shop_flags"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)
    admin_id: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ProviderSetting(Base):
    """An admin's switch for one provider (/provider <name> on|off), and the last balance
    alert, so a low balance is reported once per crossing."""

    __tablename__ = "provider_settings"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    balance_low: Mapped[bool] = mapped_column(Boolean, default=False)
    rate: Mapped[str | None] = mapped_column(String(32))  # /rate: Decimal text over PROVIDERS
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Switched off automatically (services/auto_switch.py): why ("no-balance", "failures"),
    # since when, the last error. It sells only when `enabled` (the admin's) and this is empty.
    auto_off_reason: Mapped[str | None] = mapped_column(String(16))
    auto_off_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    auto_off_detail: Mapped[str | None] = mapped_column(String(200))


class Notification(Base):
    """A line for the notification group, written in the transaction of the event it reports."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_pending", "sent_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The worker's claim while it sends the line, as on the outbox (db/claims.py).
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    # An alert that needs a decision (services/group_actions.py): sent alone, with buttons.
    action: Mapped[str | None] = mapped_column(String(16))  # "order", "provider", "balance"
    target: Mapped[str | None] = mapped_column(String(64))  # "otp:12", a provider's name


class GroupAction(Base):
    """What an admin did with an alert's button, once per alert: the first press claims the
    row (`outcome` empty while it acts), the others read who did what."""

    __tablename__ = "group_actions"

    notification_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    verb: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(64))
    done_by: Mapped[int] = mapped_column(BigInteger)
    done_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    outcome: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(String(200))


class Lease(Base):
    """A job only one process may run at a time (services/leases.py): `holder` runs it until
    `expires_at`, renewing it as it goes; a lease that ran out (its process died) is taken over."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Broadcast(Base):
    """An admin's message to every user who has not blocked the bot. Its recipients are fixed
    when it starts (one `pending` delivery row each); counters follow the delivery rows."""

    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_status", "status", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)  # HTML, as sent
    admin_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # running, cancelled, done
    total: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    blocked: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    progress_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    progress_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class BroadcastDelivery(Base):
    """One recipient of a broadcast. The row becomes `sending` (committed) before the message
    is sent, so nobody is sent a second copy: at most once, also after a crash."""

    __tablename__ = "broadcast_deliveries"
    __table_args__ = (
        Index("ix_broadcast_deliveries_status", "broadcast_id", "status", "user_id"),
    )

    broadcast_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("broadcasts.id"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"), primary_key=True)
    # pending, sending, sent, blocked, failed, unknown (was `sending` when the bot died)
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(String(256))


class Payment(Base):
    """A customer's own top-up (services/payments/): an invoice sent, then paid and credited
    once. `external_id` is the payment system's id of the paid charge (Telegram's
    `telegram_payment_charge_id`, Crypto Pay's invoice id), the ledger key's last part."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("method", "external_id", name="uq_payments_method_external_id"),
        Index("ix_payments_status", "status", "method", "id"),
        Index("ix_payments_user_id_id", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    method: Mapped[str] = mapped_column(String(16))  # stars, cryptopay
    external_id: Mapped[str | None] = mapped_column(String(128))
    amount: Mapped[int] = mapped_column(BigInteger)  # asked, micro-units of the store currency
    credited: Mapped[int | None] = mapped_column(BigInteger)  # micro-units, once paid
    price: Mapped[str] = mapped_column(String(32))  # what the customer pays, in `currency`
    currency: Mapped[str] = mapped_column(String(8))  # XTR for Stars
    rate: Mapped[str] = mapped_column(String(32))  # store-currency value of one `currency` unit
    # pending, paid, expired, refunding (debited, Telegram not yet told), refunded
    status: Mapped[str] = mapped_column(String(16))
    refund_attempts: Mapped[int] = mapped_column(Integer, default=0)  # Stars refunds tried
    pay_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    refunded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ApiKey(Base):
    """A customer's reseller API key (services/api/keys.py): only its SHA-256 is kept, the key
    itself is shown once. One per user; rolling it replaces the hash and keeps the id (the
    ledger keys `api:<key id>:<client ref>` of its orders stay its own)."""

    __tablename__ = "api_keys"
    __table_args__ = (
        UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
        UniqueConstraint("user_id", name="uq_api_keys_user_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    key_hash: Mapped[str] = mapped_column(String(64))  # SHA-256, hex
    push_codes: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
