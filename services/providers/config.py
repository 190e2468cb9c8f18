"""One upstream account as PROVIDERS describes it: what the adapters in this package are built
from. `bot.settings` reads PROVIDERS from the environment into these; nothing here reads it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

ProviderKind = Literal["fivesim", "smsactivate", "toolvico", "smmpanel", "smmpanel_json", "demo"]
OTP_KINDS = frozenset({"fivesim", "smsactivate", "toolvico", "demo"})
SMM_KINDS = frozenset({"smmpanel", "smmpanel_json", "toolvico", "demo"})


class ProviderConfig(BaseModel):
    """One entry of PROVIDERS: an upstream account."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: ProviderKind
    base_url: str = ""
    api_key: SecretStr = SecretStr("")
    currency: str = "USD"
    rate: Decimal = Decimal(1)
    markup_percent: Decimal | None = None
    enabled: bool = True
    rate_limit_per_min: int | None = Field(default=None, ge=1)
    min_cancel_delay_s: int | None = Field(default=None, ge=0)
    timeout_s: float = Field(default=15.0, gt=0, le=120)
    server_type: int | None = Field(default=None, ge=1, le=5)  # toolvico
    country_overrides: dict[str, str] = Field(default_factory=dict)  # handler_api id -> ISO

    @field_validator("rate", "markup_percent", mode="before")
    @classmethod
    def _no_float(cls, value: Any) -> Any:
        if isinstance(value, float):
            # PROVIDERS is parsed with parse_float=Decimal, so this only happens in code.
            raise ValueError("must be a string or an integer, not a float")
        return value

    @field_validator("rate")
    @classmethod
    def _rate_positive(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or value <= 0:
            raise ValueError("must be a positive number")
        return value

    @field_validator("markup_percent")
    @classmethod
    def _markup_range(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and (not value.is_finite() or value < -100 or value > 10000):
            raise ValueError("must be between -100 and 10000")
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not value.isalpha() or len(value) != 3:
            raise ValueError("must be a 3-letter currency code")
        return value.upper()
