"""How OTP screens look: texts, keyboards and callback data, shared by the handlers and by the
presenter the scheduler uses to push codes and refresh activation cards."""

from __future__ import annotations

import hashlib
import math
import re
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiogram import Bot
from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram_i18n.cores import FluentRuntimeCore
from cachetools import LRUCache

from db.models import Activation
from handlers.menu import MenuAction, MenuCb, topup_missing_button
from handlers.render import Keyboard
from services import otp as act
from services.catalog import CountryItem, OtpCatalog, Page, ServiceItem
from services.money import format_money
from services.outbox import Edit
from services.text import countdown, escape

Translate = Callable[..., str]
View = tuple[str, InlineKeyboardMarkup]
PER_PAGE = 10
PAGES_KEPT = 256  # rendered browsing pages kept (a page is ~12 buttons)
_SAFE_KEY = re.compile(r"[A-Za-z0-9_.-]{1,24}")


class OtpNav(CallbackData, prefix="on"):
    """Browsing: v = view (c countries, s services of a country, a all services,
    k countries for a service, q confirm), c/s = encoded country/service keys, p = page."""

    v: str
    c: str = ""
    s: str = ""
    p: int = 0


class OtpBuy(CallbackData, prefix="ob"):
    c: str
    s: str
    price: int
    t: str  # the confirmation's idempotency token


class OtpAction(CallbackData, prefix="oa"):
    a: str  # cancel, finish, again, sms, refresh
    i: int


class HistoryCb(CallbackData, prefix="oh"):
    p: int = 0


def encode_key(key: str) -> str:
    """Catalog keys may hold ':' or be long (`smsactivate:204`): such keys travel hashed."""
    if _SAFE_KEY.fullmatch(key):
        return key
    return "~" + hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:12]


def decode_country(catalog: OtpCatalog, value: str) -> str | None:
    if not value.startswith("~"):
        return value
    return next((c.iso for c in catalog.countries() if encode_key(c.iso) == value), None)


def decode_service(catalog: OtpCatalog, value: str, country: str | None = None) -> str | None:
    if not value.startswith("~"):
        return value
    slugs = (s.slug for s in catalog.services(country)) if country else catalog.all_services()
    return next((slug for slug in slugs if encode_key(slug) == value), None)


def money(micro: int, currency: str) -> str:
    return format_money(micro, currency)


def flag(catalog: OtpCatalog, iso: str) -> str:
    item = catalog.country(iso)
    return item.flag if item else "🏳"


def _nav_row(kb: Keyboard, page: Page, make: Callable[[int], CallbackData], t: Translate) -> int:
    if page.pages <= 1:
        return 0
    buttons = 0
    if page.has_prev:
        kb.button(text=t("button-prev"), callback_data=make(page.page - 1))
        buttons += 1
    kb.button(
        text=t("page-counter", page=str(page.page + 1), pages=str(page.pages)),
        callback_data=make(page.page),
    )
    buttons += 1
    if page.has_next:
        kb.button(text=t("button-next"), callback_data=make(page.page + 1))
        buttons += 1
    return buttons


@dataclass(frozen=True, slots=True)
class _Rendered:
    sources: tuple[Any, ...]  # what the page was rendered from
    view: View


# Browsing pages as rendered, per (catalog, page, language...): a page is rendered again only
# when what it shows changed. The catalog's readers return immutable tuples that each rebuild
# replaces, so comparing the sources costs an identity check while the catalog is unchanged.
_pages: LRUCache[Hashable, _Rendered] = LRUCache(maxsize=PAGES_KEPT)


def _rendered(key: Hashable, sources: tuple[Any, ...], render: Callable[[], View]) -> View:
    kept = _pages.get(key)
    if kept is not None and kept.sources == sources:
        if kept.sources is not sources:  # equal, not the same objects: compare cheaply next time
            _pages[key] = _Rendered(sources, kept.view)
        return kept.view
    view = render()
    _pages[key] = _Rendered(sources, view)
    return view


def countries_view(
    catalog: OtpCatalog,
    popular: dict[str, int],
    page: int,
    lang: str,
    t: Translate,
    currency: str,
    demo: bool,
) -> View:
    """The countries, most bought first; rendered again only when the catalog, the popularity
    counts or the page's settings changed."""
    countries = catalog.countries("name", lang)
    sources = (countries, tuple(popular.items()), currency, demo)
    return _rendered(
        (id(catalog), "countries", page, lang),
        sources,
        lambda: _countries_view(catalog, countries, popular, page, lang, t, currency, demo),
    )


def _countries_view(
    catalog: OtpCatalog,
    countries: Sequence[CountryItem],
    popular: dict[str, int],
    page: int,
    lang: str,
    t: Translate,
    currency: str,
    demo: bool,
) -> View:
    items = sorted(countries, key=lambda c: -popular.get(c.iso, 0))
    text = t("otp-countries-title") if items else t("otp-countries-empty")
    if demo:
        text = t("demo-label") + "\n\n" + text
    current = catalog.page(items, page, PER_PAGE)
    kb = Keyboard()
    for item in current.items:
        kb.button(
            text=t(
                "otp-country-button",
                flag=item.flag,
                name=item.name(lang),
                price=money(item.min_price_micro, currency),
            ),
            callback_data=OtpNav(v="s", c=encode_key(item.iso)),
        )
    sizes = [2] * math.ceil(len(current.items) / 2)
    nav = _nav_row(kb, current, lambda p: OtpNav(v="c", p=p), t)
    kb.button(text=t("otp-search"), callback_data=OtpNav(v="f"))
    kb.button(text=t("otp-by-service"), callback_data=OtpNav(v="a"))
    kb.button(text=t("button-menu"), callback_data=MenuCb(action=MenuAction.MAIN))
    kb.adjust(*sizes, *([nav] if nav else []), 2, 1)
    return text, kb.as_markup()


def search_results_view(
    catalog: OtpCatalog, query: str, lang: str, t: Translate, currency: str
) -> tuple[str, InlineKeyboardMarkup]:
    found = catalog.search_countries(query, lang)[:20]
    kb = Keyboard()
    for item in found:
        kb.button(
            text=t(
                "otp-country-button",
                flag=item.flag,
                name=item.name(lang),
                price=money(item.min_price_micro, currency),
            ),
            callback_data=OtpNav(v="s", c=encode_key(item.iso)),
        )
    kb.button(text=t("button-back"), callback_data=OtpNav(v="c"))
    kb.adjust(*([2] * math.ceil(len(found) / 2)), 1)
    key = "otp-search-results" if found else "otp-search-empty"
    return t(key, query=escape(query[:64])), kb.as_markup()


def services_view(
    catalog: OtpCatalog, country: str, page: int, lang: str, t: Translate, currency: str
) -> View:
    """A country's services by name; rendered again only when they (or the country) changed."""
    services = catalog.services(country, "name")
    return _rendered(
        (id(catalog), "services", country, page, lang),
        (services, catalog.country(country), currency),
        lambda: _services_view(catalog, services, country, page, lang, t, currency),
    )


def _services_view(
    catalog: OtpCatalog,
    items: Sequence[ServiceItem],
    country: str,
    page: int,
    lang: str,
    t: Translate,
    currency: str,
) -> View:
    current = catalog.page(items, page, PER_PAGE)
    text = t(
        "otp-services-title",
        flag=flag(catalog, country),
        country=escape(catalog.country_name(country, lang)),
    )
    kb = Keyboard()
    ckey = encode_key(country)
    for item in current.items:
        kb.button(
            text=t(
                "otp-service-button",
                service=item.name,
                price=money(item.min_price_micro, currency),
                stock=str(item.stock),
            ),
            callback_data=OtpNav(v="q", c=ckey, s=encode_key(item.slug)),
        )
    nav = _nav_row(kb, current, lambda p: OtpNav(v="s", c=ckey, p=p), t)
    kb.button(text=t("button-back"), callback_data=OtpNav(v="c"))
    kb.adjust(*([1] * len(current.items)), *([nav] if nav else []), 1)
    return text, kb.as_markup()


def all_services_view(
    catalog: OtpCatalog, page: int, t: Translate
) -> tuple[str, InlineKeyboardMarkup]:
    current = catalog.page(catalog.all_services(), page, PER_PAGE)
    kb = Keyboard()
    for slug in current.items:
        kb.button(
            text=t("otp-service-name-button", service=catalog.service_name(slug)),
            callback_data=OtpNav(v="k", s=encode_key(slug)),
        )
    nav = _nav_row(kb, current, lambda p: OtpNav(v="a", p=p), t)
    kb.button(text=t("button-back"), callback_data=OtpNav(v="c"))
    kb.adjust(*([2] * math.ceil(len(current.items) / 2)), *([nav] if nav else []), 1)
    return t("otp-by-service-title"), kb.as_markup()


def service_countries_view(
    catalog: OtpCatalog, service: str, page: int, lang: str, t: Translate, currency: str
) -> tuple[str, InlineKeyboardMarkup]:
    current = catalog.page(catalog.countries_for_service(service, "price", lang), page, PER_PAGE)
    skey = encode_key(service)
    kb = Keyboard()
    for item in current.items:
        kb.button(
            text=t(
                "otp-service-country-button",
                flag=item.flag,
                name=item.name(lang),
                price=money(item.min_price_micro, currency),
                stock=str(item.stock),
            ),
            callback_data=OtpNav(v="q", c=encode_key(item.iso), s=skey),
        )
    nav = _nav_row(kb, current, lambda p: OtpNav(v="k", s=skey, p=p), t)
    kb.button(text=t("button-back"), callback_data=OtpNav(v="a"))
    kb.adjust(*([1] * len(current.items)), *([nav] if nav else []), 1)
    text = t("otp-service-countries-title", service=escape(catalog.service_name(service)))
    return text, kb.as_markup()


def confirm_view(
    catalog: OtpCatalog,
    quote: act.Quote,
    balance: int,
    lang: str,
    t: Translate,
    currency: str,
    token: str,
    *,
    topup: bool,
) -> tuple[str, InlineKeyboardMarkup]:
    names = {
        "service": escape(catalog.service_name(quote.service)),
        "flag": flag(catalog, quote.country),
        "country": escape(catalog.country_name(quote.country, lang)),
        "price": money(quote.price, currency),
    }
    kb = Keyboard()
    ckey, skey = encode_key(quote.country), encode_key(quote.service)
    if balance >= quote.price:
        text = t(
            "otp-confirm",
            **names,
            balance=money(balance, currency),
            after=money(balance - quote.price, currency),
        )
        kb.button(
            text=t("otp-confirm-button", price=names["price"]),
            callback_data=OtpBuy(c=ckey, s=skey, price=quote.price, t=token),
        )
    else:
        text = t(
            "otp-not-enough",
            **names,
            balance=money(balance, currency),
            missing=money(quote.price - balance, currency),
        )
        if topup:
            topup_missing_button(kb, t, quote.price - balance, currency)
    kb.button(text=t("button-back"), callback_data=OtpNav(v="s", c=ckey))
    kb.adjust(1)
    return text, kb.as_markup()


def card_view(
    activation: Activation,
    catalog: OtpCatalog,
    lang: str,
    t: Translate,
    currency: str,
    now: datetime,
    *,
    can_another: bool,
    can_finish: bool = True,
) -> tuple[str, InlineKeyboardMarkup]:
    price = money(activation.price, currency)
    lines = []
    if activation.phone:
        lines.append(t("otp-card-number", phone=escape(activation.phone)))
    lines.append(
        t(
            "otp-card-what",
            service=escape(catalog.service_name(activation.service)),
            flag=flag(catalog, activation.country),
            country=escape(catalog.country_name(activation.country, lang)),
            price=price,
        )
    )
    if activation.code:
        lines.append(t("otp-card-code", code=escape(activation.code)))
    kb = Keyboard()
    lines += _card_state(activation, kb, t, now, price, can_another, can_finish)
    if activation.code and activation.sms_text:
        kb.button(text=t("otp-button-full-sms"), callback_data=OtpAction(a="sms", i=activation.id))
    kb.button(text=t("button-menu"), callback_data=MenuCb(action=MenuAction.MAIN))
    kb.adjust(2, 1, 1)
    return "\n".join(lines), kb.as_markup()


def _card_state(
    activation: Activation,
    kb: Keyboard,
    t: Translate,
    now: datetime,
    price: str,
    can_another: bool,
    can_finish: bool,
) -> list[str]:
    """The card's lines for where the activation stands, its buttons for that added to `kb`."""
    lines: list[str] = []
    status = activation.status
    if status == act.WAITING:
        left = (activation.expires_at - now).total_seconds() if activation.expires_at else 0
        lines.append(t("otp-card-waiting", minutes=str(max(0, math.ceil(left / 60)))))
        if activation.cancel_after and now < activation.cancel_after:
            wait = (activation.cancel_after - now).total_seconds()
            lines.append(t("otp-card-cancel-hint", time=countdown(wait)))
        kb.button(
            text=t("otp-button-cancel"), callback_data=OtpAction(a="cancel", i=activation.id)
        )
        kb.button(
            text=t("otp-button-refresh"), callback_data=OtpAction(a="refresh", i=activation.id)
        )
    elif status == act.RECEIVED:
        if can_another:
            kb.button(
                text=t("otp-button-another"), callback_data=OtpAction(a="again", i=activation.id)
            )
        if can_finish:
            kb.button(
                text=t("otp-button-finish"), callback_data=OtpAction(a="finish", i=activation.id)
            )
    elif (closed := _closed_line(activation, t, price)) is not None:
        lines.append(closed)
    elif status == act.UNKNOWN:
        lines.append(t("otp-card-unknown"))
        kb.button(
            text=t("otp-button-refresh"), callback_data=OtpAction(a="refresh", i=activation.id)
        )
    else:
        lines.append(t("otp-card-buying"))
    return lines


def _closed_line(activation: Activation, t: Translate, price: str) -> str | None:
    """The card's line for an activation that has ended; None while it has not."""
    match activation.status:
        case act.FINISHED:
            return t("otp-card-finished")
        case act.CANCELLED:
            return t("otp-card-cancelled", price=price)
        case act.EXPIRED:
            return t("otp-card-expired", price=price)
        case act.FAILED:
            reason = activation.fail_reason or "other"
            key = f"otp-reason-{reason}" if reason in _REASONS else "otp-reason-other"
            return t("otp-card-failed", reason=t(key), price=price)
    return None


_REASONS = {act.REASON_NO_NUMBERS, act.REASON_PROVIDER_ERROR, act.REASON_NO_UPSTREAM_ORDER}


def history_view(
    rows: Sequence[Activation],
    total: int,
    page: int,
    per_page: int,
    catalog: OtpCatalog,
    t: Translate,
    currency: str,
) -> tuple[str, InlineKeyboardMarkup]:
    kb = Keyboard()
    if not rows:
        kb.button(text=t("button-menu"), callback_data=MenuCb(action=MenuAction.MAIN))
        return t("history-empty"), kb.as_markup()
    pages = max(1, math.ceil(total / per_page))
    lines = [t("history-title", page=str(page + 1), pages=str(pages))]
    for row in rows:
        code = t("history-code", code=escape(row.code)) if row.code else ""
        lines.append(
            t(
                "history-row",
                id=str(row.id),
                date=row.created_at.strftime("%Y-%m-%d %H:%M"),
                service=escape(catalog.service_name(row.service)),
                flag=flag(catalog, row.country),
                phone=t("history-erased") if row.erased_at else escape(row.phone or "—"),
                price=money(row.price, currency),
                status=t(f"status-{row.status}"),
                code=code,
            )
        )
    opens = [r for r in rows if r.status in act.OPEN]
    for row in opens:
        kb.button(
            text=t("history-open", id=str(row.id)), callback_data=OtpAction(a="refresh", i=row.id)
        )
    nav = _nav_row(kb, Page(rows, page, pages, total), lambda p: HistoryCb(p=p), t)
    kb.button(text=t("button-menu"), callback_data=MenuCb(action=MenuAction.MAIN))
    kb.adjust(*([2] * math.ceil(len(opens) / 2)), *([nav] if nav else []), 1)
    return "\n".join(lines), kb.as_markup()


class ShownCards:
    """What this process last put on each activation card, by (chat, message): a card whose
    text and buttons would not change is not edited (Telegram would refuse the edit as "not
    modified", a wasted call). The scheduler's refreshes count from when they are put in the
    outbox (which sends only a card's latest state), the handlers' renders from when they are
    shown. What a card shows only ever moves forward (time left goes down, states advance), so
    an entry another process has since made stale costs at most one such edit (counted as
    done), never a change left unshown. Bounded: the least recently shown are forgotten."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._shown: OrderedDict[tuple[int, int], int] = OrderedDict()

    @staticmethod
    def _fingerprint(text: str, markup: InlineKeyboardMarkup | str | None) -> int:
        if isinstance(markup, InlineKeyboardMarkup):
            markup = markup_json(markup)
        return hash((text, markup))

    def same(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        markup: InlineKeyboardMarkup | str | None,
    ) -> bool:
        return self._shown.get((chat_id, message_id)) == self._fingerprint(text, markup)

    def remember(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        markup: InlineKeyboardMarkup | str | None,
    ) -> None:
        key = (chat_id, message_id)
        self._shown[key] = self._fingerprint(text, markup)
        self._shown.move_to_end(key)
        if len(self._shown) > self.size:
            self._shown.popitem(last=False)


def markup_json(markup: InlineKeyboardMarkup) -> str:
    """A reply markup as the Bot API takes it (an outbox edit's `markup`)."""
    return markup.model_dump_json(exclude_none=True)


class TelegramPresenter:
    """What the activation service needs from Telegram, rendered in the user's language."""

    def __init__(
        self,
        bot: Bot,
        core: FluentRuntimeCore,
        catalog: OtpCatalog,
        currency: str,
        supports: Callable[[Activation, str], bool],
        clock: Callable[[], datetime],
    ) -> None:
        self.bot = bot
        self.core = core
        self.catalog = catalog
        self.currency = currency
        self.supports = supports
        self.clock = clock
        self.shown = ShownCards()  # the handlers' card renders are remembered here too

    def _t(self, language: str) -> Translate:
        return lambda key, **kwargs: self.core.get(key, language, **kwargs)

    def code_text(self, activation: Activation, language: str) -> str:
        return self._t(language)(
            "otp-code-message",
            service=escape(self.catalog.service_name(activation.service)),
            phone=escape(activation.phone or ""),
            code=escape(activation.code or ""),
        )

    def closed_text(self, activation: Activation, language: str) -> str:
        keys: dict[str, str] = {
            act.CANCELLED: "otp-closed-cancelled",
            act.EXPIRED: "otp-closed-expired",
        }
        key = keys.get(activation.status, "otp-closed-failed")
        return self._t(language)(
            key,
            service=escape(self.catalog.service_name(activation.service)),
            phone=escape(activation.phone or ""),
            price=money(activation.price, self.currency),
        )

    def card(self, activation: Activation, language: str) -> Edit | None:
        """The card's edit to what it should show now; None without a card, or when this
        process last put exactly that on it."""
        if activation.card_chat_id is None or activation.card_message_id is None:
            return None
        text, markup = card_view(
            activation,
            self.catalog,
            language,
            self._t(language),
            self.currency,
            self.clock(),
            can_another=self.supports(activation, "another_sms"),
            can_finish=self.supports(activation, "finish"),
        )
        chat_id, message_id = activation.card_chat_id, activation.card_message_id
        markup_text = markup_json(markup)
        if self.shown.same(chat_id, message_id, text, markup_text):
            return None  # nothing it shows changed
        return Edit(chat_id, message_id, text, markup_text)

    def card_queued(self, edit: Edit) -> None:
        """The edit is in the outbox (committed): the card will show this."""
        self.shown.remember(edit.chat_id, edit.message_id, edit.text, edit.markup)
