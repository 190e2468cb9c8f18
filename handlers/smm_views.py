"""How SMM screens look: texts, keyboards and callback data, shared by the handlers and by the
presenter the scheduler uses to tell a user that an order ended."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder
from aiogram_i18n.cores import FluentRuntimeCore

from db.models import SmmOrder
from handlers.common import number as as_number  # `number` names page numbers here
from handlers.menu import MenuAction, MenuCb, topup_missing_button
from services import smm
from services.catalog import Page
from services.money import format_money
from services.providers.base import SmmServiceType
from services.smm_catalog import SmmCatalog, SmmItem
from services.text import escape

Translate = Callable[..., str]
PER_PAGE = 10
NAME_MAX = 48  # a name in a button
# Panel texts inside a message are cut so that no screen can pass Telegram's 4,096 characters
# (and Fluent's 1,000 per placeable): the longest screen, the service card, stays under 2,500.
TEXT_NAME_MAX = 200
TEXT_CATEGORY_MAX = 100
TEXT_DESCRIPTION_MAX = 1500
TEXT_LINK_MAX = 300
TEXT_MAX = 4096
PLACEABLE_MAX = 1000  # Fluent refuses a longer value for one { $variable }


class SmmNav(CallbackData, prefix="sn"):
    """v = view: c categories, s services of category k, i service card k, o order service k
    (starts the form), x close the form whose id is k (only while it is the open one); p = page.
    """

    v: str
    k: str = ""
    p: int = 0


class SmmConfirm(CallbackData, prefix="sc"):
    t: str  # the confirmation's idempotency token


class SmmSkip(CallbackData, prefix="sd"):
    """Skip drip-feed: order the quantity once; f = the form's id."""

    f: str = ""


class SmmOrders(CallbackData, prefix="so"):
    p: int = 0


class SmmAct(CallbackData, prefix="sa"):
    a: str  # r refill, c cancel
    i: int
    p: int = 0


STATUS_KEYS: dict[str, str] = {
    smm.PLACING: "smm-status-placing",
    smm.PENDING: "smm-status-pending",
    smm.IN_PROGRESS: "smm-status-in-progress",
    smm.COMPLETED: "smm-status-completed",
    smm.PARTIAL: "smm-status-partial",
    smm.CANCELLED: "smm-status-cancelled",
    smm.FAILED: "smm-status-failed",
    smm.UNKNOWN: "smm-status-unknown",
}
REASON_KEYS = {
    smm.REASON_PROVIDER_ERROR: "smm-reason-provider-error",
    smm.REASON_BAD_LINK: "smm-reason-bad-link",
    smm.REASON_BAD_QUANTITY: "smm-reason-bad-quantity",
    smm.REASON_LINK_BUSY: "smm-reason-link-busy",
    smm.REASON_UNAVAILABLE: "smm-reason-unavailable",
    smm.REASON_NOT_SENT: "smm-reason-not-sent",
    smm.REASON_LOST: "smm-reason-lost",
}
REFILL_KEYS = {
    "pending": "smm-refill-status-pending",
    "running": "smm-refill-status-in-progress",
    "completed": "smm-refill-status-completed",
    "partial": "smm-refill-status-partial",
    "rejected": "smm-refill-status-rejected",
    "failed": "smm-refill-status-failed",
    "not_found": "smm-refill-status-not-found",
}
INPUT_KEYS = {
    "link_empty": "smm-link-empty-error",
    "link_too_long": "smm-link-too-long-error",
    "link_not_url": "smm-link-not-url-error",
    "quantity_not_number": "smm-quantity-not-number-error",
    "quantity_range": "smm-quantity-range-error",
    "comments_empty": "smm-comments-empty-error",
    "comments_count": "smm-comments-count-error",
    "comment_too_long": "smm-comment-too-long-error",
    "answer_range": "smm-answer-range-error",
    "usernames_empty": "smm-usernames-error",
    "usernames_bad": "smm-usernames-error",
    "runs_range": "smm-runs-range-error",
    "interval_range": "smm-interval-range-error",
    "dripfeed_off": "smm-dripfeed-off-error",
}


def money(micro: int, currency: str) -> str:
    return format_money(micro, currency)


def _short(name: str, limit: int = NAME_MAX) -> str:
    name = " ".join(name.split())
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _escape_upto(chars: Iterable[str], limit: int, budget: int) -> tuple[list[str], bool]:
    """`chars` escaped one by one while `limit` of them and `budget` characters of HTML fit;
    True when all of them did."""
    pieces: list[str] = []
    size = 0
    for char in chars:
        piece = escape(char)
        if len(pieces) == limit or size + len(piece) > budget:
            return pieces, False
        pieces.append(piece)
        size += len(piece)
    return pieces, True


def _clip(text: str, limit: int) -> str:
    """Panel text inside a message: escaped, cut with "…" at `limit` characters, and never more
    HTML than one Fluent placeable takes."""
    pieces, whole = _escape_upto(text, limit - 1, PLACEABLE_MAX - 1)
    return "".join(pieces) + ("" if whole else "…")


def _name(name: str) -> str:
    """A service name inside a text: one line, cut, escaped."""
    return _clip(" ".join(name.split()), TEXT_NAME_MAX)


def _category_name(name: str, t: Translate) -> str:
    return name or t("smm-category-other")


def _category_text(name: str, t: Translate) -> str:
    """A category name inside a text: one line, cut, escaped."""
    return _clip(" ".join(_category_name(name, t).split()), TEXT_CATEGORY_MAX)


def _link(link: str) -> str:
    """A link inside a text, escaped; a long one keeps its start and its end (what tells two
    posts apart). Only the text is cut: the order keeps the whole link."""
    pieces, whole = _escape_upto(link, TEXT_LINK_MAX, PLACEABLE_MAX - 1)
    if whole:
        return "".join(pieces)
    head, _ = _escape_upto(link, TEXT_LINK_MAX * 2 // 3, PLACEABLE_MAX // 2)
    room = min(TEXT_LINK_MAX // 3 - 1, len(link) - len(head))
    tail, _ = _escape_upto(reversed(link), room, PLACEABLE_MAX // 2 - 1)
    return "".join(head) + "…" + "".join(reversed(tail))


def _description(text: str) -> str:
    """Not a placeable (added to the card as it is), so only the length counts."""
    pieces, whole = _escape_upto(text.strip(), TEXT_DESCRIPTION_MAX - 1, 6 * TEXT_DESCRIPTION_MAX)
    return "".join(pieces) + ("" if whole else "…")


# A tag (closing?, name), an entity, or one character.
_TOKEN = re.compile(r"<(/?)([a-zA-Z][\w-]*)[^>]*>|(&#?\w+;)|.", re.S)


def _units(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def fit(text: str, limit: int = TEXT_MAX) -> str:
    """The last safety net under every SMM screen: a text Telegram would refuse as too long is
    cut at `limit` visible characters with "…", never inside a tag or an entity, and the tags
    still open are closed. The parts are cut first, so this normally changes nothing."""
    if _units(text) <= limit:  # HTML is never shorter than what it shows
        return text
    visible, cut = 0, 0
    open_tags: list[str] = []
    for token in _TOKEN.finditer(text):
        closing, tag = token.group(1), token.group(2)
        if tag is not None:
            if closing:
                if open_tags and open_tags[-1] == tag.lower():
                    open_tags.pop()
            else:
                open_tags.append(tag.lower())
            continue
        size = 2 if token.group(3) else _units(token.group())  # an entity: maybe an emoji
        if visible + size > limit - 1:  # room for the "…"
            cut = token.start()
            break
        visible += size
    else:
        return text
    return text[:cut] + "…" + "".join(f"</{tag}>" for tag in reversed(open_tags))


def _screen(text: str, markup: InlineKeyboardMarkup) -> tuple[str, InlineKeyboardMarkup]:
    return fit(text), markup


def _with_demo(text: str, demo: bool, t: Translate) -> str:
    return t("smm-demo-label") + "\n\n" + text if demo else text


def rate_text(item: SmmItem, t: Translate, currency: str) -> str:
    key = "smm-rate-per-package" if item.per_package else "smm-rate-per-1000"
    return t(key, price=money(item.rate_per_1000, currency))


def _nav_row(
    kb: InlineKeyboardBuilder, page: Page, make: Callable[[int], CallbackData], t: Translate
) -> int:
    """◀ n/m ▶ under a paged list; returns how many buttons it added (0 for one page)."""
    if page.pages <= 1:
        return 0
    buttons = [page.page - 1] if page.has_prev else []
    buttons.append(page.page)
    if page.has_next:
        buttons.append(page.page + 1)
    for number in buttons:
        if number == page.page:
            label = t("page-counter", page=str(page.page + 1), pages=str(page.pages))
        else:
            label = t("button-prev" if number < page.page else "button-next")
        kb.button(text=label, callback_data=make(number))
    return len(buttons)


# --- browsing ------------------------------------------------------------------------------------


def categories_view(
    catalog: SmmCatalog, page: int, t: Translate, currency: str
) -> tuple[str, InlineKeyboardMarkup]:
    items = catalog.categories()
    current = catalog.page(items, page, PER_PAGE)
    text = t("smm-categories-title") if items else t("smm-categories-empty")
    kb = InlineKeyboardBuilder()
    for category in current.items:
        kb.button(
            text=t(
                "smm-category-button",
                name=_short(_category_name(category.name, t)),
                count=str(category.services),
            ),
            callback_data=SmmNav(v="s", k=category.key),
        )
    nav = _nav_row(kb, current, lambda p: SmmNav(v="c", p=p), t)
    kb.button(text=t("smm-my-orders"), callback_data=SmmOrders(p=0))
    kb.button(text=t("button-menu"), callback_data=MenuCb(action=MenuAction.MAIN))
    kb.adjust(*([1] * len(current.items)), *([nav] if nav else []), 1, 1)
    return _screen(_with_demo(text, catalog.is_demo, t), kb.as_markup())


def services_view(
    catalog: SmmCatalog, category_key: str, page: int, t: Translate, currency: str
) -> tuple[str, InlineKeyboardMarkup] | None:
    category = catalog.category(category_key)
    items = catalog.services(category_key)
    if category is None or not items:
        return None
    current = catalog.page(items, page, PER_PAGE)
    kb = InlineKeyboardBuilder()
    for item in current.items:
        kb.button(
            text=t(
                "smm-service-button", name=_short(item.name), price=rate_text(item, t, currency)
            ),
            callback_data=SmmNav(v="i", k=item.key),
        )
    nav = _nav_row(kb, current, lambda p: SmmNav(v="s", k=category_key, p=p), t)
    kb.button(text=t("button-back"), callback_data=SmmNav(v="c"))
    kb.adjust(*([1] * len(current.items)), *([nav] if nav else []), 1)
    text = t("smm-services-title", category=_category_text(category.name, t))
    return _screen(_with_demo(text, category.demo, t), kb.as_markup())


def service_card(item: SmmItem, t: Translate, currency: str) -> tuple[str, InlineKeyboardMarkup]:
    lines = [
        t("smm-card-title", name=_name(item.name), category=_category_text(item.category, t)),
        t("smm-card-price", price=rate_text(item, t, currency)),
    ]
    if not item.per_package:
        lines.append(t("smm-card-range", min=str(item.min), max=str(item.max)))
    lines.append(t("smm-card-refill-yes" if item.refill else "smm-card-refill-no"))
    lines.append(t("smm-card-cancel-yes" if item.cancel else "smm-card-cancel-no"))
    if item.dripfeed:
        lines.append(t("smm-card-dripfeed"))
    if item.description:
        lines += ["", _description(item.description)]
    kb = InlineKeyboardBuilder()
    kb.button(text=t("smm-button-order"), callback_data=SmmNav(v="o", k=item.key))
    kb.button(text=t("button-back"), callback_data=SmmNav(v="s", k=item.category_key))
    kb.button(text=t("button-menu"), callback_data=MenuCb(action=MenuAction.MAIN))
    kb.adjust(1)
    return _screen(_with_demo("\n".join(lines), item.demo, t), kb.as_markup())


def gone_view(t: Translate) -> tuple[str, InlineKeyboardMarkup]:
    """The service went away (mid-form too): say so and offer the way on."""
    kb = InlineKeyboardBuilder()
    kb.button(text=t("menu-smm"), callback_data=SmmNav(v="c"))
    kb.button(text=t("button-menu"), callback_data=MenuCb(action=MenuAction.MAIN))
    kb.adjust(1)
    return t("smm-service-gone"), kb.as_markup()


# --- the order form ------------------------------------------------------------------------------


def quantity_text(quantity: int, runs: int | None, t: Translate) -> str:
    """The quantity as ordered: drip-feed delivers it in every run, so it shows the total too."""
    if runs is None:
        return str(quantity)
    return t(
        "smm-dripfeed-quantity", quantity=str(quantity), runs=runs, total=str(quantity * runs)
    )


def prompt_text(
    step: str, item: SmmItem, t: Translate, currency: str, draft: smm.SmmDraft | None = None
) -> str:
    name = _name(item.name)
    match step:
        case "link":
            return t("smm-ask-link", name=name)
        case "quantity":
            return t(
                "smm-ask-quantity",
                name=name,
                min=str(item.min),
                max=str(item.max),
                price=rate_text(item, t, currency),
            )
        case "comments":
            return t(
                "smm-ask-comments", name=name, min=as_number(item.min), max=as_number(item.max)
            )
        case "answer":
            return t("smm-ask-answer", name=name)
        case "usernames":
            return t("smm-ask-usernames", name=name)
        case "runs":
            low, high = smm.RUNS_RANGE
            quantity = (draft.quantity if draft else None) or item.min
            return t(
                "smm-ask-runs",
                name=name,
                min=str(low),
                max=str(high),
                quantity=str(quantity),
                example=quantity_text(quantity, low, t),
                price=money(smm.price_of(item, quantity, low), currency),
            )
        case _:
            low, high = smm.INTERVAL_RANGE
            return t("smm-ask-interval", name=name, min=str(low), max=str(high))


def close_form_button(kb: InlineKeyboardBuilder, t: Translate, form_id: str) -> None:
    """The form's own way out; it closes only the form it was shown in (and only while open)."""
    kb.button(text=t("smm-button-close-form"), callback_data=SmmNav(v="x", k=form_id))


def prompt_view(
    step: str,
    item: SmmItem,
    t: Translate,
    currency: str,
    form_id: str,
    draft: smm.SmmDraft | None = None,
    error: str | None = None,
) -> tuple[str, InlineKeyboardMarkup]:
    text = prompt_text(step, item, t, currency, draft)
    if error:
        text = error + "\n\n" + text
    kb = InlineKeyboardBuilder()
    if step == "runs":
        kb.button(text=t("smm-button-no-dripfeed"), callback_data=SmmSkip(f=form_id))
    close_form_button(kb, t, form_id)
    kb.adjust(1)
    return _screen(_with_demo(text, item.demo, t), kb.as_markup())


def input_error(exc: smm.BadInput, t: Translate) -> str:
    key = INPUT_KEYS.get(exc.code, "smm-input-error")
    # Numbers stay numbers: the texts choose a noun's plural form by them ("21 символа").
    values = {name: as_number(v) for name, v in exc.params.items()}
    return t(key, **values)


def confirm_view(
    quote: smm.SmmQuote,
    balance: int,
    t: Translate,
    currency: str,
    token: str,
    form_id: str,
    *,
    topup: bool,
) -> tuple[str, InlineKeyboardMarkup]:
    item, draft = quote.item, quote.draft
    runs = quote.runs if draft.runs is not None else None
    lines = [
        t("smm-confirm-title", name=_name(item.name)),
        t("smm-confirm-link", link=_link(draft.link)),
    ]
    if item.type is SmmServiceType.CUSTOM_COMMENTS:
        lines.append(t("smm-confirm-comments", count=str(quote.quantity)))
    elif not item.per_package:
        lines.append(t("smm-confirm-quantity", quantity=quantity_text(quote.quantity, runs, t)))
    if runs is not None:
        lines.append(t("smm-confirm-dripfeed", runs=runs, interval=str(draft.interval or 0)))
    if draft.answer_number is not None:
        lines.append(t("smm-confirm-answer", answer=str(draft.answer_number)))
    if draft.usernames:
        lines.append(t("smm-confirm-usernames", count=str(len(draft.usernames))))
    price = money(quote.total, currency)
    lines.append(t("smm-confirm-price", price=price, rate=rate_text(item, t, currency)))
    kb = InlineKeyboardBuilder()
    if balance >= quote.total:
        lines.append(
            t(
                "smm-confirm-balance",
                balance=money(balance, currency),
                after=money(balance - quote.total, currency),
            )
        )
        kb.button(text=t("smm-button-confirm", price=price), callback_data=SmmConfirm(t=token))
    else:
        lines.append(
            t(
                "smm-not-enough",
                balance=money(balance, currency),
                missing=money(quote.total - balance, currency),
            )
        )
        if topup:
            topup_missing_button(kb, t, quote.total - balance, currency)
    close_form_button(kb, t, form_id)
    kb.adjust(1)
    return _screen(_with_demo("\n".join(lines), item.demo, t), kb.as_markup())


def placed_view(
    order: SmmOrder, t: Translate, currency: str, demo: bool
) -> tuple[str, InlineKeyboardMarkup]:
    names = {
        "id": str(order.id),
        "name": _name(order.service_name),
        "price": money(order.price, currency),
    }
    if order.status == smm.FAILED:
        reason = t(REASON_KEYS.get(order.fail_reason or "", "smm-reason-provider-error"))
        text = t("smm-placed-failed", reason=reason, **names)
    elif order.status == smm.UNKNOWN:
        text = t("smm-placed-unknown", **names)
    elif order.status == smm.PLACING:
        text = t("smm-placing")
    else:
        text = t(
            "smm-placed",
            status=t(STATUS_KEYS[order.status]),
            quantity=quantity_text(order.quantity, order.runs, t),
            **names,
        )
    kb = InlineKeyboardBuilder()
    kb.button(text=t("smm-my-orders"), callback_data=SmmOrders(p=0))
    kb.button(text=t("button-menu"), callback_data=MenuCb(action=MenuAction.MAIN))
    kb.adjust(1)
    return _screen(_with_demo(text, demo, t), kb.as_markup())


# --- my orders -----------------------------------------------------------------------------------


def order_lines(order: SmmOrder, t: Translate, currency: str) -> list[str]:
    lines = [
        t(
            "smm-orders-row",
            id=str(order.id),
            name=escape(_short(order.service_name)),
            quantity=quantity_text(order.quantity, order.runs, t),
            price=money(order.price, currency),
            status=t(STATUS_KEYS.get(order.status, "smm-status-unknown")),
        )
    ]
    if order.start_count is not None or order.remains is not None:
        lines.append(
            t(
                "smm-orders-progress",
                start=str(order.start_count if order.start_count is not None else "—"),
                remains=str(order.remains if order.remains is not None else "—"),
            )
        )
    if order.refunded:
        lines.append(t("smm-orders-refunded", amount=money(order.refunded, currency)))
    if order.cancel_requested_at is not None and order.status in smm.LIVE:
        lines.append(t("smm-orders-cancel-requested"))
    if order.refill_id is not None:
        state = smm.refill_state(order.refill_status)
        key = REFILL_KEYS.get(state)
        word = escape(order.refill_status or "")
        status = t(key) if key else t("smm-refill-status-other", word=word)
        lines.append(t("smm-orders-refill", status=status))
    return lines


def orders_view(
    rows: Sequence[SmmOrder],
    total: int,
    page: int,
    per_page: int,
    t: Translate,
    currency: str,
    *,
    can_refill: Callable[[SmmOrder], bool],
    can_cancel: Callable[[SmmOrder], bool],
    is_demo: Callable[[SmmOrder], bool],
) -> tuple[str, InlineKeyboardMarkup]:
    kb = InlineKeyboardBuilder()
    if not rows:
        kb.button(text=t("button-back"), callback_data=SmmNav(v="c"))
        kb.button(text=t("button-menu"), callback_data=MenuCb(action=MenuAction.MAIN))
        kb.adjust(1)
        return _screen(t("smm-orders-empty"), kb.as_markup())
    pages = max(1, math.ceil(total / per_page))
    lines = [t("smm-orders-title", page=str(page + 1), pages=str(pages))]
    actions = 0
    for order in rows:
        lines += ["", *order_lines(order, t, currency)]
        if can_refill(order):
            kb.button(
                text=t("smm-button-refill", id=str(order.id)),
                callback_data=SmmAct(a="r", i=order.id, p=page),
            )
            actions += 1
        if can_cancel(order):
            kb.button(
                text=t("smm-button-cancel-order", id=str(order.id)),
                callback_data=SmmAct(a="c", i=order.id, p=page),
            )
            actions += 1
    nav = _nav_row(kb, Page(rows, page, pages, total), lambda p: SmmOrders(p=p), t)
    kb.button(text=t("smm-button-refresh"), callback_data=SmmOrders(p=page))
    kb.button(text=t("button-back"), callback_data=SmmNav(v="c"))
    kb.button(text=t("button-menu"), callback_data=MenuCb(action=MenuAction.MAIN))
    kb.adjust(*([2] * math.ceil(actions / 2)), *([nav] if nav else []), 2, 1)
    demo = any(is_demo(order) for order in rows)
    return _screen(_with_demo("\n".join(lines), demo, t), kb.as_markup())


# --- what the scheduler pushes -------------------------------------------------------------------


class SmmPresenter:
    """Texts the order service writes to the outbox, in the user's language."""

    def __init__(self, core: FluentRuntimeCore, currency: str) -> None:
        self.core = core
        self.currency = currency

    def closed_text(self, order: SmmOrder, language: str) -> str:
        names = {
            "id": str(order.id),
            "name": _name(order.service_name),
            "refund": money(order.refunded, self.currency),
        }
        keys: dict[str, str] = {
            smm.COMPLETED: "smm-closed-completed",
            smm.PARTIAL: "smm-closed-partial",
            smm.CANCELLED: "smm-closed-cancelled",
        }
        key = keys.get(order.status, "smm-closed-failed")
        extra = {}
        if order.status == smm.PARTIAL:
            remains, quantity = order.remains or 0, smm.units(order)
            extra = {"remains": as_number(remains), "quantity": as_number(quantity)}
        return fit(self.core.get(key, language, **names, **extra))
