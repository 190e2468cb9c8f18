"""The OTP browsing pages are kept as rendered (handlers/otp_views.py) and rendered again as soon
as what they show changes: the catalog (a refresh, a re-price) or the popularity order. And
`Keyboard` lays buttons out exactly as aiogram's InlineKeyboardBuilder does."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest
from aiogram.utils.keyboard import InlineKeyboardBuilder
from aiogram_i18n.cores import FluentRuntimeCore

from bot.i18n import make_core
from handlers.otp_views import countries_view, services_view
from handlers.render import Keyboard
from services.catalog import OtpCatalog
from tests.unit.test_catalog import FakeOtp, catalog_of, offer


@pytest.fixture
async def core() -> AsyncIterator[FluentRuntimeCore]:
    core = make_core("en")
    await core.startup()
    yield core
    await core.shutdown()


def texts(view: tuple[str, object]) -> list[str]:
    _, markup = view
    return [button.text for row in markup.inline_keyboard for button in row]  # type: ignore[attr-defined]


async def shop() -> tuple[FakeOtp, OtpCatalog]:
    upstream = FakeOtp(
        "tv",
        "USD",
        [offer("US", "telegram", "0.10"), offer("GB", "telegram", "0.20")],
    )
    catalog = catalog_of(upstream, build_in_thread=False)
    await catalog.refresh()
    return upstream, catalog


def countries(catalog: OtpCatalog, popular: dict[str, int], core: FluentRuntimeCore) -> list[str]:
    def t(key: str, **kwargs: object) -> str:
        return core.get(key, "en", **kwargs)

    return texts(countries_view(catalog, popular, 0, "en", t, "USD", False))


async def test_the_country_page_follows_a_catalog_refresh(core: FluentRuntimeCore) -> None:
    upstream, catalog = await shop()
    popular: dict[str, int] = {}
    first = countries(catalog, popular, core)
    assert any("$0.12" in text for text in first)  # 0.10 + 20 %
    assert countries(catalog, popular, core) == first
    upstream.items = [offer("US", "telegram", "0.50"), offer("GB", "telegram", "0.20")]
    await catalog.refresh()
    after = countries(catalog, popular, core)
    assert any("$0.60" in text for text in after)
    assert not any("$0.12" in text for text in after)
    upstream.items = [offer("GB", "telegram", "0.20")]  # the US sold out
    await catalog.refresh()
    assert not any("🇺🇸" in text for text in countries(catalog, popular, core))


async def test_the_country_page_follows_the_popularity_order(core: FluentRuntimeCore) -> None:
    _, catalog = await shop()
    popular: dict[str, int] = {}
    assert "🇬🇧" in countries(catalog, popular, core)[0]  # by name
    popular["US"] = 1  # what a purchase does (in place)
    assert "🇺🇸" in countries(catalog, popular, core)[0]
    popular["GB"] = 2
    assert "🇬🇧" in countries(catalog, popular, core)[0]


async def test_a_rendered_page_is_reused_while_nothing_changed(core: FluentRuntimeCore) -> None:
    _, catalog = await shop()

    def t(key: str, **kwargs: object) -> str:
        return core.get(key, "en", **kwargs)

    first = countries_view(catalog, {}, 0, "en", t, "USD", False)
    assert countries_view(catalog, {}, 0, "en", t, "USD", False) is first
    assert countries_view(catalog, {}, 0, "en", t, "USD", True) is not first  # the demo label
    assert countries_view(catalog, {}, 0, "en", t, "EUR", False) is not first


async def test_the_service_page_follows_a_catalog_refresh(core: FluentRuntimeCore) -> None:
    upstream, catalog = await shop()

    def t(key: str, **kwargs: object) -> str:
        return core.get(key, "en", **kwargs)

    first = services_view(catalog, "US", 0, "en", t, "USD")
    assert services_view(catalog, "US", 0, "en", t, "USD") is first
    assert any("$0.12" in text for text in texts(first))
    upstream.items = [offer("US", "telegram", "0.50"), offer("US", "whatsapp", "0.30")]
    await catalog.refresh()
    after = texts(services_view(catalog, "US", 0, "en", t, "USD"))
    assert any("$0.60" in text for text in after)
    assert any("WhatsApp" in text for text in after)


def test_keyboard_lays_buttons_out_as_inline_keyboard_builder() -> None:
    rng = random.Random(4)
    for _ in range(500):
        count = rng.randrange(0, 25)
        sizes = [rng.randint(1, 8) for _ in range(rng.randrange(0, 5))]
        builder, keyboard = InlineKeyboardBuilder(), Keyboard()
        for n in range(count):
            builder.button(text=str(n), callback_data=f"d{n}")
            keyboard.button(text=str(n), callback_data=f"d{n}")
        if sizes or rng.random() < 0.5:
            builder.adjust(*sizes)
            keyboard.adjust(*sizes)
        assert keyboard.as_markup() == builder.as_markup(), (count, sizes)


def test_keyboard_refuses_rows_telegram_would() -> None:
    with pytest.raises(ValueError, match="row sizes"):
        Keyboard().adjust(9)
