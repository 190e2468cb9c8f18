"""PROVIDERS entries -> adapter instances. Adding an account of a known protocol is config."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from services.providers.base import OtpProvider, SmmProvider
from services.providers.config import ProviderConfig
from services.providers.demo import DemoOtpProvider, DemoSmmProvider
from services.providers.fivesim import FiveSimProvider
from services.providers.smmpanel import SmmPanelProvider
from services.providers.smmpanel_json import SmmPanelJsonProvider
from services.providers.smsactivate import SmsActivateProvider
from services.providers.toolvico import ToolvicoOtpProvider, ToolvicoSmmProvider

OTP_ADAPTERS: dict[str, Callable[[ProviderConfig], OtpProvider]] = {
    "fivesim": FiveSimProvider,
    "smsactivate": SmsActivateProvider,
    "toolvico": ToolvicoOtpProvider,
}
SMM_ADAPTERS: dict[str, Callable[[ProviderConfig], SmmProvider]] = {
    "smmpanel": SmmPanelProvider,
    "smmpanel_json": SmmPanelJsonProvider,
    "toolvico": ToolvicoSmmProvider,
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


def build_smm_providers(
    configs: Iterable[ProviderConfig], *, demo_step_s: float = 5.0
) -> dict[str, SmmProvider]:
    providers: dict[str, SmmProvider] = {}
    for config in configs:
        if config.kind == "demo":
            providers[config.name] = DemoSmmProvider(config, step_s=demo_step_s)
        elif config.kind in SMM_ADAPTERS:
            providers[config.name] = SMM_ADAPTERS[config.kind](config)
    return providers
