"""What every upstream looks like to the rest of the bot: normalized models and interfaces.

Country keys are ISO 3166 alpha-2 codes (upper case), service keys lowercase slugs. An id a
protocol's tables cannot map is kept as-is (prefixed with the provider kind) rather than dropped.
Prices are Decimal in the provider's own currency; the pricing layer converts them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from types import TracebackType
from typing import Self

from pydantic import BaseModel, ConfigDict

from services.providers.errors import NotSupported


class Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class OtpOffer(Model):
    """One (country, service) that a provider sells, with its price and stock."""

    country: str  # ISO alpha-2 (or "<kind>:<native id>" when unknown)
    service: str  # slug (or the native code when unknown)
    price: Decimal  # provider currency
    stock: int
    native_country: str
    native_service: str
    country_name: str | None = None  # as the provider calls it, for unknown codes
    service_name: str | None = None


class OtpPurchase(Model):
    order_id: str
    phone: str  # digits with a leading "+"
    price: Decimal | None = None  # what the upstream charged, when it says
    expires_at: datetime | None = None  # upstream expiry, timezone-aware UTC, when known


class OtpState(StrEnum):
    WAITING = "waiting"
    CODE = "code"  # a code is in; more may follow after "another SMS"
    CANCELLED = "cancelled"  # cancelled/banned upstream, money returned to us
    EXPIRED = "expired"  # ended with no code, money returned to us
    FINISHED = "finished"  # closed after a code (no refund)


class OtpStatus(Model):
    state: OtpState
    code: str | None = None
    text: str | None = None  # the full SMS text when the protocol gives it


class OtpActiveOrder(Model):
    """An order from the upstream's own list (for reconciling unknown buys)."""

    order_id: str
    phone: str
    country: str | None = None
    service: str | None = None
    client_ref: str | None = None
    created_at: datetime | None = None
    status: OtpStatus | None = None


class ProviderBase(ABC):
    """Lifecycle shared by all adapters: `async with Adapter(...) as p:` closes its HTTP client."""

    name: str
    kind: str
    currency: str

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:  # noqa: B027 - adapters without a client have nothing to close
        pass


class OtpProvider(ProviderBase):
    """An OTP (virtual number) upstream. Features a protocol lacks raise NotSupported."""

    supports_finish: bool = True
    supports_another_sms: bool = False
    supports_ban: bool = False
    supports_order_list: bool = False
    is_demo: bool = False

    @abstractmethod
    async def balance(self) -> Decimal: ...

    @abstractmethod
    async def offers(self, country: str | None = None) -> list[OtpOffer]:
        """Everything for sale (or for one ISO country), with price and stock."""

    @abstractmethod
    async def buy(
        self, country: str, service: str, *, max_price: Decimal | None = None, client_ref: str
    ) -> OtpPurchase:
        """Never retried. A lost answer raises OutcomeUnknown; `client_ref` is our order id."""

    @abstractmethod
    async def status(self, order_id: str) -> OtpStatus: ...

    @abstractmethod
    async def cancel(self, order_id: str) -> None:
        """Cancel before a code; an order that already ended raises InvalidState."""

    async def finish(self, order_id: str) -> None:
        raise NotSupported("finish", provider=self.name)

    async def request_another_sms(self, order_id: str) -> None:
        raise NotSupported("another SMS", provider=self.name)

    async def ban(self, order_id: str) -> None:
        raise NotSupported("ban", provider=self.name)

    async def active_orders(self) -> list[OtpActiveOrder]:
        """The upstream's list of our open orders (reconciliation)."""
        raise NotSupported("order list", provider=self.name)
