"""SMM screens without a bot: drip-feed amounts in both languages, and texts that stay within
Telegram's limits whatever the panel sends."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.i18n import make_core
from handlers import smm_views as view
from services.providers.base import SmmServiceType
from services.smm import BadInput, SmmDraft, SmmQuote, price_of
from services.smm_catalog import SmmItem
from tests.fakes.telegram import MAX_TEXT, check_html, visible_text

CORE = make_core("en")
CORE.locales.update(CORE.find_locales())  # what the core's startup does


def translate(language: str):
    return lambda key, **values: CORE.get(key, language, **values)


def item(name: str = "Followers", **more) -> SmmItem:
    values = {
        "key": "k1",
        "provider": "panel",
        "service_id": "1",
        "name": name,
        "category": "Instagram",
        "category_key": "c1",
        "type": SmmServiceType.DEFAULT,
        "upstream_rate": Decimal("0.917"),
        "currency": "USD",
        "rate": Decimal(1),
        "markup_percent": Decimal(20),
        "rate_per_1000": 1_100_400,
        "min": 10,
        "max": 5000,
        "refill": True,
        "cancel": True,
        "dripfeed": True,
        "description": None,
        "demo": False,
        **more,
    }
    return SmmItem(**values)


def confirm_text(language: str, runs: int, link: str = "https://instagram.com/p/abc") -> str:
    service = item()
    draft = SmmDraft(service="k1", link=link, quantity=100, runs=runs, interval=15)
    quote = SmmQuote(service, draft, 100, runs, price_of(service, 100, runs))
    return view.confirm_view(quote, 10**9, translate(language), "USD", "tok", "form", topup=False)[
        0
    ]


@pytest.mark.parametrize(
    ("runs", "english", "russian"),
    [
        (2, "100 per run × 2 runs = 200", "100 за заход × 2 захода = 200"),
        (5, "100 per run × 5 runs = 500", "100 за заход × 5 заходов = 500"),
        (21, "100 per run × 21 runs = 2100", "100 за заход × 21 заход = 2100"),
        (22, "100 per run × 22 runs = 2200", "100 за заход × 22 захода = 2200"),
    ],
)
def test_drip_feed_amounts_read_right_in_both_languages(runs, english, russian) -> None:
    assert f"Quantity: {english}" in confirm_text("en", runs)
    assert f"Количество: {russian}" in confirm_text("ru", runs)


def test_the_comment_count_error_agrees_with_its_number() -> None:
    for count, english, russian in [
        (1, "You sent 1 comment;", "Вы прислали 1 комментарий;"),
        (3, "You sent 3 comments;", "Вы прислали 3 комментария;"),
        (5, "You sent 5 comments;", "Вы прислали 5 комментариев;"),
    ]:
        exc = BadInput("comments_count", min=10, max=1500, count=count)
        assert english in view.input_error(exc, translate("en"))
        assert russian in view.input_error(exc, translate("ru"))


def test_hostile_names_and_links_never_break_a_screen() -> None:
    """Names full of characters HTML must escape (each becomes up to 6 characters) still fit in
    a Fluent placeable, and every screen stays valid HTML within 4,096 characters."""
    nasty = "\"'<&>" * 2000
    service = item(nasty, category=nasty, description=nasty)
    link = "https://x.com/?" + "&a=\"'<>" * 280
    assert len(link) < 2000
    for language in ("en", "ru"):
        t = translate(language)
        draft = SmmDraft(service="k1", link=link, quantity=100)
        texts = [
            view.service_card(service, t, "USD")[0],
            view.prompt_view("runs", service, t, "USD", "form", draft)[0],
            view.confirm_view(
                SmmQuote(service, draft, 100, 1, 110_040), 0, t, "USD", "tok", "form", topup=True
            )[0],
        ]
        for text in texts:
            check_html(text)
            assert len(visible_text(text, "HTML")) <= MAX_TEXT
        assert "&lt;&amp;&gt;" in texts[0] and "…" in texts[0]


def test_the_safety_net_cuts_between_tags_and_closes_them() -> None:
    text = "<b>" + "a&amp;" * 3000 + "</b>\n" + "<i>tail</i>"
    cut = view.fit(text)
    check_html(cut)
    shown = visible_text(cut, "HTML")
    assert len(shown) <= MAX_TEXT and shown.endswith("…")
    assert cut.endswith("…</b>") and "&amp…" not in cut
    assert view.fit("<b>short</b>") == "<b>short</b>"
