"""PROVIDERS entries -> adapter instances. Adding an account of a known protocol is config."""

from __future__ import annotations

from collections.abc import Iterable

from bot.settings import ProviderConfig
from services.providers.base import OtpProvider
from services.providers.demo import DemoOtpProvider
from services.providers.fivesim import FiveSimProvider
from services.providers.smsactivate import SmsActivateProvider
from services.providers.toolvico import ToolvicoOtpProvider

OTP_ADAPTERS = {
    "fivesim": FiveSimProvider,
    "smsactivate": SmsActivateProvider,
    "toolvico": ToolvicoOtpProvider,
}


def build_otp_providers(
    configs: Iterable[ProviderConfig], *, demo_code_delay_s: float = 10.0
) -> dict[str, OtpProvider]:
    providers: dict[str, OtpProvider] = {}
    for config in configs:
        if config.kind == "demo":
            providers[config.name] = DemoOtpProvider(config, code_delay_s=demo_code_delay_s)
        elif config.kind in OTP_ADAPTERS:
            providers[config.name] = OTP_ADAPTERS[config.kind](config)
    return providers
