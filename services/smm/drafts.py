"""SMM orders: what the customer types, checked step by step (link, quantity, comments, drip-feed)
and the price they confirm. Plain functions: the form handlers and the service share them."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from services import pricing
from services.orders.errors import OrderError
from services.smm_catalog import SmmItem

MAX_LINK = 2000
MAX_COMMENT = 500
MAX_ANSWER = 100
RUNS_RANGE = (2, 100)
# smm_orders.quantity is an INTEGER column: PostgreSQL refuses more than this (SQLite would not).
MAX_QUANTITY = 2**31 - 1
INTERVAL_RANGE = (1, 1440)  # minutes
_HOST = re.compile(r"[\w-]+(\.[\w-]+)+", re.UNICODE)
_USERNAME = re.compile(r"@?[A-Za-z0-9_.]{1,64}")


class BadInput(OrderError):
    """What the user typed cannot be ordered; `code` names the problem, `params` fill the text."""

    def __init__(self, code: str, **params: int) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


# --- input ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SmmDraft:
    """What the user typed, step by step (kept in the FSM between messages)."""

    service: str  # catalog key
    link: str = ""
    quantity: int | None = None
    runs: int | None = None
    interval: int | None = None
    comments: tuple[str, ...] = ()
    answer_number: int | None = None
    usernames: tuple[str, ...] = ()

    def to_data(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "link": self.link,
            "quantity": self.quantity,
            "runs": self.runs,
            "interval": self.interval,
            "comments": list(self.comments),
            "answer_number": self.answer_number,
            "usernames": list(self.usernames),
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> SmmDraft:
        return cls(
            service=str(data.get("service") or ""),
            link=str(data.get("link") or ""),
            quantity=data.get("quantity"),
            runs=data.get("runs"),
            interval=data.get("interval"),
            comments=tuple(data.get("comments") or ()),
            answer_number=data.get("answer_number"),
            usernames=tuple(data.get("usernames") or ()),
        )


@dataclass(frozen=True, slots=True)
class SmmQuote:
    item: SmmItem
    draft: SmmDraft
    quantity: int
    runs: int
    total: int  # micro


def is_http_url(text: str) -> bool:
    if any(char.isspace() for char in text):
        return False
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    host = parts.hostname or ""
    return parts.scheme.lower() in ("http", "https") and bool(_HOST.fullmatch(host))


def check_link(text: str) -> str:
    link = text.strip()
    if not link:
        raise BadInput("link_empty")
    if len(link) > MAX_LINK:
        raise BadInput("link_too_long", max=MAX_LINK)
    if not is_http_url(link):
        raise BadInput("link_not_url")
    return link


def parse_int(text: str, code: str) -> int:
    digits = "".join(text.split())
    if not digits.isascii() or not digits.isdigit() or len(digits) > 12:
        raise BadInput(code)
    return int(digits)


def check_quantity(quantity: int | None, item: SmmItem) -> int:
    high = min(item.max, MAX_QUANTITY)  # a panel may announce any maximum
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise BadInput("quantity_not_number", min=item.min, max=high)
    if not item.min <= quantity <= high:
        raise BadInput("quantity_range", min=item.min, max=high)
    return quantity


def parse_quantity(text: str, item: SmmItem) -> int:
    try:
        value: int | None = parse_int(text, "quantity_not_number")
    except BadInput:
        value = None  # check_quantity() says "not a number", with the range
    return check_quantity(value, item)


def check_comments(comments: Sequence[str], item: SmmItem) -> tuple[str, ...]:
    lines = tuple(line.strip() for line in comments if line.strip())
    if not lines:
        raise BadInput("comments_empty", min=item.min, max=item.max)
    if any(len(line) > MAX_COMMENT for line in lines):
        raise BadInput("comment_too_long", max=MAX_COMMENT)
    if not item.min <= len(lines) <= item.max:
        raise BadInput("comments_count", min=item.min, max=item.max, count=len(lines))
    return lines


def parse_comments(text: str, item: SmmItem) -> tuple[str, ...]:
    return check_comments(text.splitlines(), item)


def check_answer(value: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ANSWER:
        raise BadInput("answer_range", max=MAX_ANSWER)
    return value


def parse_answer(text: str) -> int:
    try:
        return check_answer(parse_int(text, "answer_range"))
    except BadInput:
        raise BadInput("answer_range", max=MAX_ANSWER) from None


def check_usernames(names: Sequence[str]) -> tuple[str, ...]:
    cleaned = tuple(name.strip() for name in names if name.strip())
    if not cleaned or len(cleaned) > 1000:
        raise BadInput("usernames_empty")
    if not all(_USERNAME.fullmatch(name) for name in cleaned):
        raise BadInput("usernames_bad")
    return cleaned


def parse_usernames(text: str) -> tuple[str, ...]:
    return check_usernames(text.replace(",", " ").split())


def check_runs(runs: int | None) -> int:
    low, high = RUNS_RANGE
    if isinstance(runs, bool) or not isinstance(runs, int) or not low <= runs <= high:
        raise BadInput("runs_range", min=low, max=high)
    return runs


def parse_runs(text: str) -> int:
    try:
        return check_runs(parse_int(text, "runs_range"))
    except BadInput:
        raise BadInput("runs_range", min=RUNS_RANGE[0], max=RUNS_RANGE[1]) from None


def check_interval(minutes: int | None) -> int:
    low, high = INTERVAL_RANGE
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not low <= minutes <= high:
        raise BadInput("interval_range", min=low, max=high)
    return minutes


def parse_interval(text: str) -> int:
    try:
        return check_interval(parse_int(text, "interval_range"))
    except BadInput:
        raise BadInput("interval_range", min=INTERVAL_RANGE[0], max=INTERVAL_RANGE[1]) from None


def price_of(item: SmmItem, quantity: int, runs: int = 1) -> int:
    """A Package costs its rate once (panels charge the package's rate, not rate x 1/1000);
    everything else ceil(rate per 1000 x quantity x runs / 1000). With an admin's minimum
    profit, never less than the order's upstream cost + it (pricing.smm_floor())."""
    if item.per_package:
        total, units = item.rate_per_1000, 1000
    else:
        total, units = pricing.smm_total(item.rate_per_1000, quantity, runs), quantity * runs
    if item.min_profit is None:
        return total
    return max(total, pricing.smm_floor(item.upstream_rate, item.rate, units, item.min_profit))


def new_token() -> str:
    """A confirmation's idempotency token (in the Confirm button's callback data)."""
    return secrets.token_urlsafe(6)
